"""Knowledge base and Japanese question matcher.

Public API: load the knowledge base, rank entries for a question, and turn the
ranking into one outcome (answered / clarify / no_match / smalltalk / dialog).
"""

from faq.loader import KBError, KnowledgeBase, Problem, load_jsonl_kb, load_kb
from faq.matcher import Candidate, Matcher
from faq.models import Contact, Entry
from faq.policy import Choice, Outcome, Policy, PolicyConfig
from faq.render import answer_text, contact_block
from faq.text import Analyzer, normalize

__all__ = [
    "Analyzer",
    "Candidate",
    "Choice",
    "Contact",
    "Entry",
    "KBError",
    "KnowledgeBase",
    "Matcher",
    "Outcome",
    "Policy",
    "PolicyConfig",
    "Problem",
    "answer_text",
    "contact_block",
    "load_jsonl_kb",
    "load_kb",
    "normalize",
]

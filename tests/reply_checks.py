"""What every reply a person reads must satisfy, whatever produced it.

Shared by the render tests of the FAQ, the flows and each channel, so that one
list of forbidden tokens and one length budget hold everywhere.
"""

from __future__ import annotations

import re

# The first message of any answer fits a phone screen.
FIRST_MESSAGE_MAX = 400
HEADLINE_MAX_LINES = 3

# Internal names a user must never see: field and step ids, program ids, Python and data-format
# words.  Official terms (gBizID, ID, Excel, CAGR) are not here.
FORBIDDEN = (
    "growth_rate",
    "one_year_date",
    "period_end",
    "value_added",
    "Decimal",
    "JSON",
    "json",
    "it2020",
    "it2023",
    "it2023-multi",
    "None",
    "True",
    "False",
    "null",
    "Traceback",
    "{{contact",
    "faq:",
    "prog:",
    "flow:",
    "cmd:",
    "hand:",
    "go:",
    "more:",
)
_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # snake_case identifiers


def internal_tokens(text: str) -> list[str]:
    """The internal identifiers in `text` (empty when it is clean)."""
    found = [token for token in FORBIDDEN if token in text]
    found += _SNAKE.findall(text)
    return found

"""The one error a rule raises for inputs it cannot accept.

A parser error means "I could not read that"; a DomainError means "I read it, but
the rule cannot apply to it" (no employees, a cancellation before the delivery).
Both carry a Japanese message a dialog can show as is, and `field` says which
input to ask for again.
"""

from __future__ import annotations

from faq.models import SourceRef


class DomainError(ValueError):
    def __init__(self, field: str, message: str, sources: tuple[SourceRef, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.sources = sources

"""The previous decision layer (kept only for `make bench`, beside tests/bench/previous_matcher.py).

One place that turns ranked candidates into what the bot does.

The matcher only scores; this module decides between answering, asking back,
admitting "not found", small talk and starting a guided calculation, so the
trade-off between a confident wrong answer and an honest "not found" is made
here, with thresholds from one data file.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from faq.loader import KBError, KnowledgeBase, Problem
from faq.models import Entry, FlowId
from faq.programs import programs_in_question
from faq.text import normalize
from tests.bench.previous_matcher import Candidate, Matcher

PREVIOUS_TOML = Path(__file__).with_name("previous_policy.toml")

Status = Literal["answered", "clarify", "no_match", "smalltalk", "dialog"]


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    a: float
    b: float
    c: float

    def confidence(self, score: float, margin: float) -> float:
        return 1.0 / (1.0 + math.exp(-(self.a * score + self.b * margin + self.c)))


class PolicyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    clarify_min: float
    answer_min: float
    margin: float
    clarify_window: float
    clarify_max: int
    program_window: float
    unknown_share_max: float
    unknown_strong: float
    calibration: Calibration

    @classmethod
    def load(cls, path: Path = PREVIOUS_TOML) -> PolicyConfig:
        try:
            with path.open("rb") as fh:
                return cls.model_validate(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise KBError([Problem(str(path), None, None, str(exc))]) from None
        except ValidationError as exc:
            raise KBError(
                [Problem(str(path), None, ".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            ) from None


@dataclass(frozen=True)
class Choice:
    """Something the user can pick when asked back: an entry, or a program."""

    label: str
    entry_id: str | None = None
    program: str | None = None


@dataclass(frozen=True)
class Outcome:
    query: str
    status: Status
    candidates: tuple[Candidate, ...]
    entry: Entry | None = None
    choices: tuple[Choice, ...] = ()
    dialog: FlowId | None = None
    program: str | None = None
    smalltalk: str | None = None
    confidence: float = 0.0
    reason: str = ""


def _has_meaning(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class Policy:
    """Decides the outcome for one question over one knowledge base."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher | None = None, config: PolicyConfig | None = None):
        self.kb = kb
        self.matcher = matcher or Matcher(kb)
        self.config = config or PolicyConfig.load()
        # Programs and frames this knowledge base does not cover are out of scope like other subsidies.
        other_cues = [c for other in kb.other_programs for c in other.cues]
        self._foreign = tuple(normalize(c) for c in (*kb.foreign_cues, *other_cues))
        self._entry_text = {
            e.id: normalize(" ".join((e.question, *e.paraphrases, e.answer))) for e in kb.entries
        }
        intents = kb.intents
        self._smalltalk = (
            [(s.id, tuple(normalize(p) for p in s.patterns)) for s in intents.smalltalk] if intents else []
        )
        self._actions = tuple(normalize(a) for a in intents.dialog_actions) if intents else ()
        self._object_actions = tuple(normalize(a) for a in intents.dialog_object_actions) if intents else ()
        self._flows = (
            [(d.flow, tuple(normalize(t) for t in d.topics)) for d in intents.dialog] if intents else []
        )

    # -- recognisers -------------------------------------------------------
    def detect_program(self, norm: str) -> str | None:
        return programs_in_question(self.kb, norm).program

    def detect_smalltalk(self, norm: str) -> str | None:
        bare = "".join(ch for ch in norm if ch.isalnum() or ch == " ").strip()
        for intent_id, patterns in self._smalltalk:
            for pattern in patterns:
                if bare == pattern or (bare.startswith(pattern) and len(bare) - len(pattern) <= 4):
                    return intent_id
        return None

    def detect_dialog(self, norm: str) -> FlowId | None:
        asked = any(a in norm for a in self._actions)
        best: tuple[int, FlowId] | None = None
        for flow, topics in self._flows:
            direct = any(t + p + a in norm for t in topics for p in ("", "を") for a in self._object_actions)
            if not (asked or direct):
                continue
            hits = sum(1 for t in topics if t in norm)
            if hits and (best is None or hits > best[0]):
                best = (hits, flow)
        return best[1] if best else None

    def _foreign_cues(self, norm: str) -> list[str]:
        return [c for c in self._foreign if c in norm]

    # -- decision ------------------------------------------------------------
    def decide(self, query: str, program: str | None = None, k: int = 10) -> Outcome:
        norm = normalize(query)
        if not _has_meaning(norm):
            return Outcome(query, "no_match", (), program=program, reason="empty")
        small = self.detect_smalltalk(norm)
        if small is not None:
            return Outcome(query, "smalltalk", (), program=program, smalltalk=small, reason="smalltalk")
        program = program or self.detect_program(norm)
        allowed = {program, "common"} if program else None
        analysis = self.matcher.analyzer.analyze(query)
        candidates = self.matcher.rank(query, programs=allowed, k=k, analysis=analysis)
        flow = self.detect_dialog(norm)
        if flow is not None:
            return Outcome(
                query, "dialog", tuple(candidates), dialog=flow, program=program, reason="dialog request"
            )
        foreign = self._foreign_cues(norm)
        if foreign:
            # A question naming another subsidy is answered only by an entry that names it too.
            candidates = [c for c in candidates if all(f in self._entry_text[c.entry.id] for f in foreign)]
            if not candidates:
                return Outcome(query, "no_match", (), program=program, reason=f"out of scope: {foreign[0]}")
        unknown = self.matcher.unknown_share(analysis)
        top_score = candidates[0].score if candidates else 0.0
        if unknown >= self.config.unknown_share_max and top_score < self.config.unknown_strong:
            return Outcome(query, "no_match", tuple(candidates), program=program, reason="unknown words")
        return self._from_candidates(query, tuple(candidates), program)

    def _from_candidates(self, query: str, candidates: tuple[Candidate, ...], program: str | None) -> Outcome:
        cfg = self.config
        if not candidates or candidates[0].score < cfg.clarify_min:
            return Outcome(query, "no_match", candidates, program=program, reason="low score")
        top = candidates[0]
        second = candidates[1].score if len(candidates) > 1 else 0.0
        margin = top.score - second
        confidence = cfg.calibration.confidence(top.score, margin)
        if program is None and top.entry.topic and top.score >= cfg.answer_min:
            rivals = [
                c
                for c in candidates[1:]
                if c.entry.topic == top.entry.topic
                and c.entry.program != top.entry.program
                and (c.score >= cfg.answer_min or top.score - c.score <= cfg.program_window)
            ]
            if rivals:
                # One choice per program, its best entry; picking it asks again within that program.
                best = {c.entry.program: c for c in reversed((top, *rivals))}
                choices = tuple(
                    Choice(self.kb.programs[pid].short, c.entry.id, pid)
                    for pid, c in sorted(best.items(), key=lambda item: -item[1].score)
                )
                return Outcome(
                    query,
                    "clarify",
                    candidates,
                    choices=choices,
                    confidence=confidence,
                    reason="answer differs by program",
                )
        close = [c for c in candidates if top.score - c.score <= cfg.clarify_window][: cfg.clarify_max]
        if top.score >= cfg.answer_min and (margin >= cfg.margin or len(close) == 1):
            return Outcome(
                query,
                "answered",
                candidates,
                entry=top.entry,
                program=program,
                confidence=confidence,
                reason="clear winner",
            )
        choices = tuple(Choice(c.entry.question, c.entry.id, c.entry.program) for c in close)
        return Outcome(
            query,
            "clarify",
            candidates,
            choices=choices,
            program=program,
            confidence=confidence,
            reason="close candidates" if len(close) > 1 else "low confidence",
        )


def top_ids(candidates: Sequence[Candidate], k: int) -> list[str]:
    return [c.entry.id for c in candidates[:k]]

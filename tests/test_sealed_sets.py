"""A sealed set is written once, before tuning, and never edited (BENCHMARKS.md, each round's gate).

tests/data/sealed_sha256.json holds each sealed file's SHA-256 as committed unopened.  A new set
adds its line in the commit that adds the set; an edit to a set, for any reason, fails here, so it
can never ride along with a matcher change unnoticed.  A near-copy of a KB wording is mended on the
KB side (`kounen kb check` names both).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
MANIFEST = json.loads((DATA / "sealed_sha256.json").read_text(encoding="utf-8"))


def test_every_sealed_file_is_in_the_manifest() -> None:
    on_disk = {p.name for p in DATA.glob("sealed*_queries.jsonl")}
    assert on_disk == set(MANIFEST), (
        f"sealed files without a recorded hash: {sorted(on_disk - set(MANIFEST))}; "
        f"recorded but missing: {sorted(set(MANIFEST) - on_disk)}"
    )


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_a_sealed_file_is_as_committed_unopened(name: str) -> None:
    digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
    assert digest == MANIFEST[name], f"{name} was edited after it was sealed"

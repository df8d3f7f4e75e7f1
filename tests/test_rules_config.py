"""rules.toml: every constant has a source or a stated assumption, and a broken file names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from faq import KnowledgeBase
from rules.config import RULES_PATH, RulesConfigError, Sourced, load_rules, load_rules_file


def _sourced(model: BaseModel, path: str = "") -> list[tuple[str, Sourced[object]]]:
    found: list[tuple[str, Sourced[object]]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        where = f"{path}.{name}" if path else name
        if isinstance(value, Sourced):
            found.append((where, value))
        elif isinstance(value, BaseModel):
            found += _sourced(value, where)
    return found


def test_shipped_rules_load() -> None:
    rules = load_rules()
    assert rules.fiscal_year.start_month.value == 4
    assert str(rules.productivity.threshold.value) == "0.05"
    assert str(rules.productivity.threshold_group_2022.value) == "0.06"
    assert rules.withdrawal.it2020.one_year.value == 1
    assert rules.withdrawal.it2020.window_years.value == 5
    assert load_rules() is rules  # cached


def test_every_constant_names_a_known_source_or_an_assumption(kb: KnowledgeBase) -> None:
    constants = _sourced(load_rules())
    assert len(constants) >= 20
    for where, item in constants:
        assert item.source is not None or item.assumption, where
        if item.source is not None:
            assert item.source.document in kb.documents, where


def test_source_ids_stay_within_their_program(kb: KnowledgeBase) -> None:
    rules = load_rules()
    it2020 = [s for _, s in _sourced(rules.withdrawal.it2020)]
    it2023 = [s for _, s in _sourced(rules.withdrawal.it2023_multi)]
    assert {s.source.document for s in it2020 if s.source} == {"it2020-faq"}
    assert {s.source.document for s in it2023 if s.source} == {"it2023-tebiki"}
    assert kb.contacts[rules.withdrawal.it2020.contact].program == "it2020"
    assert kb.contacts[rules.withdrawal.it2023_multi.contact].program == "it2023-multi"


def test_assumptions_are_marked() -> None:
    rules = load_rules()
    assert rules.withdrawal.it2020.boundary.assumption
    assert rules.productivity.group_method.assumption
    assert rules.rounding.assumption
    assert "仮定" in rules.year_end_closure.assumption


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = RULES_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "rules.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('value = "0.05"', 'value = "1.5"', "productivity.threshold"),
        ('value = "0.05"', 'value = "five"', "productivity.threshold.value"),
        (
            "[fiscal_year.start_month]\nvalue = 4",
            "[fiscal_year.start_month]\nvalue = 13",
            "fiscal_year.start_month",
        ),
        ('start = "12-29"', 'start = "12-32"', "year_end_closure.start"),
        ('mode = "ROUND_HALF_UP"', 'mode = "ROUND_UPWARDS"', "rounding.mode"),
        ('contact = "it2020-kounen"', 'contact = "It 2020"', "withdrawal.it2020.contact"),
    ],
)
def test_broken_value_names_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(RulesConfigError) as info:
        load_rules_file(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert info.value.file == str(path)


def test_constant_without_source_or_assumption_is_refused(tmp_path: Path) -> None:
    path = _broken(
        tmp_path,
        '[withdrawal.it2020.window_years]\nvalue = 5\nsource = { document = "it2020-faq", ref = "質問7" }',
        "[withdrawal.it2020.window_years]\nvalue = 5",
    )
    with pytest.raises(RulesConfigError, match=r"withdrawal\.it2020\.window_years.*source"):
        load_rules_file(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, "[rounding]\n", "[rounding]\ntypo = 1\n")
    with pytest.raises(RulesConfigError, match=r"rounding\.typo"):
        load_rules_file(path)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(RulesConfigError, match="file not found"):
        load_rules_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[rounding\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="not valid TOML"):
        load_rules_file(bad)

"""A broken knowledge base stops loading with the file, the entry and the field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faq import KBError, Problem, load_jsonl_kb, load_kb

DATA_DIR = Path(__file__).parents[1] / "faq" / "data"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A private copy of faq/data to break."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def entry_block(
    entry_id: str,
    *,
    program: str = "it2020",
    category: str = "login",
    answer: str | None = "テスト用の回答です。",
    related: tuple[str, ...] = (),
) -> str:
    """One [[entry]] table in TOML, valid unless told otherwise."""
    lines = [
        "",
        "[[entry]]",
        f"id = {json.dumps(entry_id)}",
        f"program = {json.dumps(program)}",
        f"category = {json.dumps(category)}",
        'question = "テスト用の質問ですか。"',
        'paraphrases = ["テストの言い換え一", "テストの言い換え二", "テストの言い換え三"]',
    ]
    if answer is not None:
        lines.append(f"answer = {json.dumps(answer, ensure_ascii=False)}")
    lines.append('source = { document = "it2020-faq", ref = "質問1" }')
    if related:
        lines.append(f"related = {json.dumps(list(related))}")
    return "\n".join(lines) + "\n"


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def problems_of(data_dir: Path) -> list[Problem]:
    with pytest.raises(KBError) as info:
        load_kb(data_dir)
    problems = info.value.problems
    assert problems, "KBError without problems"
    return problems


def assert_named(problems: list[Problem], file: Path, entry: str, field: str) -> Problem:
    """Exactly the file, entry id and field of the mistake are reported."""
    for problem in problems:
        if (
            problem.entry == entry
            and problem.field == field
            and Path(problem.file).resolve() == file.resolve()
        ):
            assert problem.severity == "error"
            assert problem.message
            text = str(problem)
            assert str(file) in text and entry in text and field in text
            return problem
    pytest.fail(f"no problem names {file} / {entry!r} / {field!r}; got: {[str(p) for p in problems]}")


def test_pristine_copy_loads(data: Path) -> None:
    assert load_kb(data).entries


def test_toml_syntax_error_names_file_and_line(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    bad_line = len(lines) + 2
    append(path, '\n[[entry]\nid = "broken-syntax"\n')
    problems = problems_of(data)
    syntax = [p for p in problems if Path(p.file).resolve() == path.resolve() and "TOML" in p.message]
    assert syntax, [str(p) for p in problems]
    assert f"line {bad_line}" in syntax[0].message, syntax[0].message


def test_entry_without_answer(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-no-answer", answer=None))
    assert_named(problems_of(data), path, "broken-no-answer", "answer")


def test_duplicate_entry_id_names_the_file(data: Path) -> None:
    # it2020-login-failed is defined in it2020.toml; a second definition goes elsewhere.
    path = data / "kb" / "it2023-multi.toml"
    append(path, entry_block("it2020-login-failed"))
    assert_named(problems_of(data), path, "it2020-login-failed", "id")


def test_dangling_related_id(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-related", related=("no-such-entry",)))
    problem = assert_named(problems_of(data), path, "broken-related", "related")
    assert "no-such-entry" in problem.message


def test_unknown_category(data: Path) -> None:
    path = data / "kb" / "it2023-multi.toml"
    append(path, entry_block("broken-category", program="it2023-multi", category="no-such-category"))
    problem = assert_named(problems_of(data), path, "broken-category", "category")
    assert "no-such-category" in problem.message


def test_it2020_entry_with_2023_contact(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-cross-contact", answer="お問い合わせは\n{{contact:it2023-callcenter}}"))
    problem = assert_named(problems_of(data), path, "broken-cross-contact", "answer")
    assert "it2023-callcenter" in problem.message


def test_it2023_entry_with_2020_contact(data: Path) -> None:
    path = data / "kb" / "it2023-multi.toml"
    append(
        path,
        entry_block(
            "broken-cross-contact-2023",
            program="it2023-multi",
            answer="お問い合わせは\n{{contact:it2020-kounen}}",
        ),
    )
    assert_named(problems_of(data), path, "broken-cross-contact-2023", "answer")


@pytest.mark.parametrize(
    "number",
    ["03-1234-5678", "0570-666-376", "０３－１２３４－５６７８"],
    ids=["ascii", "real-callcenter", "full-width"],
)
def test_literal_phone_number_in_answer(data: Path, number: str) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-phone", answer=f"お電話は {number} までお願いします。"))
    assert_named(problems_of(data), path, "broken-phone", "answer")


def test_unknown_contact_placeholder(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-placeholder", answer="窓口は\n{{contact:no-such-contact}}"))
    problem = assert_named(problems_of(data), path, "broken-placeholder", "answer")
    assert "no-such-contact" in problem.message


def test_every_problem_is_reported_in_one_run(data: Path) -> None:
    it2020 = data / "kb" / "it2020.toml"
    it2023 = data / "kb" / "it2023-multi.toml"
    append(it2020, entry_block("broken-a", answer=None))
    append(it2020, entry_block("broken-b", related=("no-such-entry",)))
    append(it2023, entry_block("broken-c", program="it2023-multi", category="nope"))
    append(it2023, entry_block("broken-d", program="it2023-multi", answer="{{contact:nope}}"))
    problems = problems_of(data)
    assert_named(problems, it2020, "broken-a", "answer")
    assert_named(problems, it2020, "broken-b", "related")
    assert_named(problems, it2023, "broken-c", "category")
    assert_named(problems, it2023, "broken-d", "answer")


# -- plain JSONL knowledge bases (--kb) ---------------------------------------------


def jsonl_problems(path: Path) -> list[Problem]:
    with pytest.raises(KBError) as info:
        load_jsonl_kb(path)
    assert info.value.problems
    assert str(path) in str(info.value)
    return info.value.problems


def test_jsonl_loads(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    rows = [{"id": "a", "question": "ログインできない", "answer": "A"}, {"id": 2, "question": "解約したい"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    kb = load_jsonl_kb(path)
    assert [e.id for e in kb.entries] == ["a", "2"]


def test_jsonl_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    (problem,) = jsonl_problems(path)
    assert problem.file == str(path)
    assert "not found" in problem.message


def test_jsonl_directory(tmp_path: Path) -> None:
    (problem,) = jsonl_problems(tmp_path)
    assert problem.file == str(tmp_path)
    assert "directory" in problem.message


def test_jsonl_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "a", "question": "caf\u00e9"}\n'.encode("latin-1"))
    (problem,) = jsonl_problems(path)
    assert problem.file == str(path)
    assert "UTF-8" in problem.message


def test_jsonl_bad_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "question": "質問一"}\n\n{"id": "b", "question": \n{"id": "c", "question": "質問三"}\n',
        encoding="utf-8",
    )
    (problem,) = jsonl_problems(path)
    assert problem.file == f"{path}:3"
    assert "JSON" in problem.message


def test_jsonl_line_without_question(tmp_path: Path) -> None:
    path = tmp_path / "noq.jsonl"
    path.write_text('{"id": "a", "question": "質問一"}\n{"id": "b", "answer": "回答"}\n', encoding="utf-8")
    (problem,) = jsonl_problems(path)
    assert problem.file == f"{path}:2"
    assert problem.entry == "b"
    assert problem.field == "question"


def test_jsonl_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text(
        '{"id": "a", "question": "質問一"}\n{"id": "b", "question": "質問二"}\n{"id": "a", "question": "質問三"}\n',
        encoding="utf-8",
    )
    (problem,) = jsonl_problems(path)
    assert problem.entry == "a"
    assert problem.field == "id"
    assert "duplicate" in problem.message


def test_jsonl_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    (problem,) = jsonl_problems(path)
    assert problem.file == str(path)

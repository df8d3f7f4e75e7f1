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
    short: str | None = "テスト用の短い回答です。",
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
    if short is not None:
        lines.append(f"short = {json.dumps(short, ensure_ascii=False)}")
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


def test_told_apart_in_an_entry_that_does_not_exist(data: Path) -> None:
    path = data / "catalog.toml"
    text = path.read_text(encoding="utf-8")
    broken = text.replace('told_apart_in = ["it2020-login-failed"]', 'told_apart_in = ["no-such-entry"]')
    assert broken != text
    path.write_text(broken, encoding="utf-8")
    problem = assert_named(problems_of(data), path, "it-other-year", "told_apart_in")
    assert "no-such-entry" in problem.message


def test_beside_a_topic_no_entry_has(data: Path) -> None:
    # `beside` names the topic whose other-program answers are shown beside the entry: a topic
    # nobody has would silently show nothing.
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-beside") + 'beside = "no-such-topic"\n')
    problem = assert_named(problems_of(data), path, "broken-beside", "beside")
    assert "no-such-topic" in problem.message


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


def test_valid_appended_entry_loads(data: Path) -> None:
    # The block the tests below break is valid as written: each test finds only its own mistake.
    append(data / "kb" / "it2020.toml", entry_block("valid-extra"))
    assert load_kb(data).by_id["valid-extra"].short == "テスト用の短い回答です。"


# -- short answers: the headline read first, checked like the answer -------------------


def test_entry_without_short(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-no-short", short=None))
    problem = assert_named(problems_of(data), path, "broken-no-short", "short")
    assert "missing" in problem.message


def test_short_too_long(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-long-short", short="とても長い回答です。" * 11))
    problem = assert_named(problems_of(data), path, "broken-long-short", "short")
    assert "110 characters" in problem.message


def test_short_of_exactly_the_limit_loads(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("long-short", short="回答です。" * 20))  # 100 characters
    assert len(load_kb(data).by_id["long-short"].short) == 100


def test_short_with_too_many_lines(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(
        path,
        entry_block("broken-lines-short", short="一行目です。\n二行目です。\n三行目です。\n四行目です。"),
    )
    problem = assert_named(problems_of(data), path, "broken-lines-short", "short")
    assert "4 lines" in problem.message


@pytest.mark.parametrize(
    "literal",
    ["03-1234-5678", "0570-666-376", "０３－１２３４－５６７８", "https://example.com/"],
    ids=["ascii", "real-callcenter", "full-width", "url"],
)
def test_literal_contact_in_short(data: Path, literal: str) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-phone-short", short=f"{literal} までお問い合わせください。"))
    problem = assert_named(problems_of(data), path, "broken-phone-short", "short")
    assert "beside" in problem.message


def test_contact_reference_in_short(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(
        path,
        entry_block(
            "broken-ref-short",
            answer="後年窓口にお問い合わせください。\n{{contact:it2020-kounen}}",
            short="{{contact:it2020-kounen}} にお問い合わせください。",
        ),
    )
    problem = assert_named(problems_of(data), path, "broken-ref-short", "short")
    assert "{{contact:it2020-kounen}}" in problem.message


@pytest.mark.parametrize("article", ["第25条", "第２５条", "第 28 条"])
def test_article_number_in_short(data: Path, article: str) -> None:
    path = data / "kb" / "it2023-multi.toml"
    append(
        path,
        entry_block(
            "broken-article-short",
            program="it2023-multi",
            answer="交付規程第25条、第28条に基づき、返還が発生することがあります。",
            short=f"交付規程{article}により返還が発生することがあります。",
        ),
    )
    problem = assert_named(problems_of(data), path, "broken-article-short", "short")
    assert "article" in problem.message


def test_short_may_not_invent_a_figure(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    answer = "導入から１年未満で解約すると、全額返還となります。"
    append(path, entry_block("broken-figure-short", answer=answer, short="5年未満で解約すると全額返還です。"))
    problem = assert_named(problems_of(data), path, "broken-figure-short", "short")
    assert problem.message.startswith("number(s) 5 are not in the answer"), problem.message


def test_short_may_repeat_a_figure_of_its_answer(data: Path) -> None:
    # Full-width in the answer, ASCII in the short: the same figure after NFKC.
    path = data / "kb" / "it2023-multi.toml"
    answer = "２年以内に年率平均５％以上に達しなかった場合、公表します。"
    append(
        path,
        entry_block(
            "figure-short",
            program="it2023-multi",
            answer=answer,
            short="2年以内に年率平均5%以上でないと公表されます。",
        ),
    )
    assert load_kb(data).by_id["figure-short"].short.startswith("2年以内")


def test_short_repeating_the_question(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-echo-short", short="テスト用の質問ですか？"))
    problem = assert_named(problems_of(data), path, "broken-echo-short", "short")
    assert "question" in problem.message


@pytest.mark.parametrize("prefix", ["【IT導入補助金2020】", "IT導入補助金2020：", "【共通】"])
def test_short_starting_with_the_program_name(data: Path, prefix: str) -> None:
    path = data / "kb" / "it2020.toml"
    answer = "IT導入補助金2020 では辞退届の提出が必要です。"
    append(path, entry_block("broken-prefix-short", answer=answer, short=f"{prefix}辞退届の提出が必要です。"))
    problem = assert_named(problems_of(data), path, "broken-prefix-short", "short")
    assert "program" in problem.message


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
    # A plain knowledge base has no short answers: the reply's first sentence stands in.
    assert [e.short for e in kb.entries] == ["", ""]


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


@pytest.mark.parametrize(
    ("written", "field"),
    [('framing = "お客様から"', "framing"), ('framming = ["お客様から"]', "framming")],
    ids=["not-a-list", "misspelt"],
)
def test_matching_phrases_are_checked(data: Path, written: str, field: str) -> None:
    """A [matching] list written as a string would be split into characters, and a misspelt key
    dropped: both are refused with the table and key named."""
    path = data / "catalog.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("framing = [")
    end = text.index("]", start) + 1
    path.write_text(text[:start] + written + text[end:], encoding="utf-8")
    problem = next(p for p in problems_of(data) if p.file == str(path))
    assert problem.entry == "#1" and problem.field == field, problem


def test_a_suggestion_bar_above_the_answering_bar_is_refused_with_its_name(data: Path) -> None:
    from faq.policy import PolicyConfig

    path = data / "policy.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("suggest_min = 0.47", "suggest_min = 0.9"), encoding="utf-8")
    with pytest.raises(KBError) as err:
        PolicyConfig.load(path)
    (problem,) = err.value.problems
    assert problem.file == str(path)
    assert "suggest_min" in problem.message


@pytest.mark.parametrize(
    ("months", "said"),
    [('{ min = 12, below = 12, says = "1年" }', "less than"), ('{ says = "1年未満" }', "min, below")],
)
def test_a_months_condition_that_holds_no_span_is_refused(data: Path, months: str, said: str) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-months") + f"months = {months}\n")
    problems = problems_of(data)
    assert_named(problems, path, "broken-months", "months")
    assert any(said in p.message for p in problems), [str(p) for p in problems]


def test_a_months_condition_must_say_what_the_wordings_say(data: Path) -> None:
    path = data / "kb" / "it2020.toml"
    append(path, entry_block("broken-says") + 'months = { below = 12, says = "半年以内" }\n')
    assert_named(problems_of(data), path, "broken-says", "months.says")

"""`kounen` command line: ask, chat, kb check, eval, bench, calc, check, bot (Telegram polling), serve
(webhook), console (the console alone), cases (cases handed to staff).

Every user mistake (a missing file, a broken line, a bad option) ends in one
line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bot.chat import chat_command
from bot.cli_rules import OneLineCommand, OneLineGroup, calc_app, check_app
from faq import KBError, KnowledgeBase, Outcome, Policy, answer_text, load_jsonl_kb, load_kb
from faq.replies import outcome_text
from rules import TOKYO

app = typer.Typer(
    cls=OneLineGroup,
    add_completion=False,
    no_args_is_help=True,
    help="kounen: IT導入補助金 後年手続きサポート（FAQ 検索・評価）",
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(cls=OneLineGroup, add_completion=False, no_args_is_help=True, help="知識ベースの検査")
app.add_typer(kb_app, name="kb")
app.add_typer(calc_app, name="calc")
app.add_typer(check_app, name="check")
app.command("chat", cls=OneLineCommand)(chat_command)


class ProgramOption(StrEnum):
    it2020 = "it2020"
    it2023_multi = "it2023-multi"


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"kounen: {message}", err=True)
    raise typer.Exit(code)


def _load(kb_path: Path | None) -> KnowledgeBase:
    try:
        return load_jsonl_kb(kb_path) if kb_path is not None else load_kb()
    except KBError as exc:
        fail(f"invalid knowledge base: {exc}")


def _answer_json(kb: KnowledgeBase, entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "question": entry.question,
        "text": answer_text(kb, entry),
        "program": entry.program,
        "source": f"{entry.source.document} {entry.source.ref}",
    }


def outcome_json(kb: KnowledgeBase, outcome: Outcome) -> dict[str, Any]:
    """`answer` is the first entry shown (its text as shown); `answers` lists every entry shown."""
    answer = None
    answers: list[dict[str, Any]] = []
    if outcome.status == "answered" and outcome.entry is not None:
        answers = [_answer_json(kb, e) for e in outcome.answers or (outcome.entry,)]
        answer = (
            {**answers[0], "text": outcome_text(kb, outcome, datetime.now(TOKYO))}
            if len(answers) == 1
            else answers[0]
        )
    return {
        "query": outcome.query,
        "status": outcome.status,
        "answer": answer,
        "answers": answers,
        "text": outcome_text(kb, outcome, datetime.now(TOKYO)),
        "candidates": [
            {
                "id": c.entry.id,
                "question": c.entry.question,
                "score": round(c.score, 4),
                "relevance": round(c.relevance, 4),
            }
            for c in outcome.candidates
        ],
        "choices": [{"label": c.label, "id": c.entry_id, "program": c.program} for c in outcome.choices],
        # Offered under a "not found" (status no_match): the entries to pick.
        "suggestions": [
            {"label": c.label, "id": c.entry_id, "program": c.program} for c in outcome.suggestions
        ],
        "dialog": outcome.dialog,
        "program": outcome.program,
        "confidence": round(outcome.confidence, 4),
    }


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as text; bytes that are not UTF-8 become U+FFFD, never an error."""
    for raw in sys.stdin.buffer:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


@app.command(cls=OneLineCommand)
def ask(
    question: Annotated[
        str | None, typer.Argument(help="質問。省略すると標準入力から1行1問で読みます。")
    ] = None,
    program: Annotated[ProgramOption | None, typer.Option(help="制度を指定する")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="1問につき1行の JSON で出力する")] = False,
    kb_path: Annotated[
        Path | None, typer.Option("--kb", help="JSONL {id, question, answer} の知識ベース")
    ] = None,
) -> None:
    """質問に回答する。"""
    kb = _load(kb_path)
    policy = _make_policy(kb)
    questions = [question] if question is not None else _stdin_lines()
    prog = program.value if program else None
    for text in questions:
        outcome = policy.decide(text, program=prog)
        if as_json:
            sys.stdout.write(json.dumps(outcome_json(kb, outcome), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(outcome_text(kb, outcome, datetime.now(TOKYO)) + "\n")
            if question is None:
                sys.stdout.write("\n")
        sys.stdout.flush()


def _make_policy(kb: KnowledgeBase) -> Policy:
    try:
        return Policy(kb)
    except KBError as exc:
        fail(f"invalid policy settings: {exc}")


EVAL_DIR = Path("tests/data")


def eval_files(folder: Path = EVAL_DIR) -> list[Path]:
    """Every labelled question set (dev and the sealed sets): each file named `*_queries.jsonl`.

    Found, not listed: a sealed set added later is checked for copies without anyone having to
    remember to register it.
    """
    return sorted(folder.glob("*_queries.jsonl"))


@kb_app.command("check", cls=OneLineCommand)
def kb_check(
    kb_path: Annotated[
        Path | None, typer.Option("--kb", help="JSONL の知識ベース（省略時は同梱のもの）")
    ] = None,
    queries: Annotated[
        list[Path] | None,
        typer.Option(
            "--queries",
            help="評価用の質問 (JSONL)。これと同じ・ほぼ同じ言い回しを知識ベースに入れると誤り"
            "（省略時は tests/data の dev と sealed、あれば）",
        ),
    ] = None,
) -> None:
    """知識ベースを検証し、各言い換えが自分のエントリに届くか、評価用の質問の写しがないかを調べる。"""
    from faq.checks import check_kb
    from faq.evaluate import load_queries

    try:
        kb = load_jsonl_kb(kb_path) if kb_path else load_kb()
    except KBError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        fail(f"{len(exc.problems)} problem(s) in the knowledge base", 1)
    files = queries if queries is not None else eval_files()
    questions: list[tuple[str, str]] = []
    for path in files:
        try:
            questions += [(str(path), q.query) for q in load_queries(path)]
        except KBError as exc:
            fail(f"invalid queries file: {exc}")
    report = check_kb(kb, questions)
    for line in report.lines():
        typer.echo(line)
    if report.problems:
        raise typer.Exit(1)


@app.command("eval", cls=OneLineCommand)
def eval_cmd(
    queries: Annotated[Path, typer.Option("--queries", help="JSONL {query, gold_ids, gold?}")],
    kb_path: Annotated[
        Path | None, typer.Option("--kb", help="JSONL {id, question, answer} の知識ベース")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="指標を1つの JSON で出力する")] = False,
    show_misses: Annotated[bool, typer.Option("--misses", help="外れた質問を表示する")] = False,
    no_foreign_list: Annotated[
        bool, typer.Option("--no-foreign-list", help="他の補助金の名前のリスト (catalog.toml) を使わずに測る")
    ] = False,
) -> None:
    """ラベル付き質問で、利用者に見える結果（正答・誤答・聞き返し・該当なし）と検索精度・速度を測る。"""
    from faq.evaluate import evaluate, load_queries

    try:
        labelled = load_queries(queries)
    except KBError as exc:
        fail(f"invalid queries file: {exc}")
    kb = _load(kb_path)
    policy = _make_policy(kb)
    policy.use_foreign_list = not no_foreign_list
    report = evaluate(policy, labelled)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for line in report_lines(report):
            typer.echo(line)
    if show_misses:
        for query, gold, status, top in report.misses:
            typer.echo(f"MISS {status:9} {query!r} gold={list(gold)} top={list(top)}", err=True)


def report_lines(report: Any) -> list[str]:
    """The headline (what users see) first, the ranking figures beside it."""
    pct = "{:.1%}".format
    lines = [
        f"{report.n} questions: {report.n_in_scope} in scope, {report.n_out_of_scope} out of scope",
        f"in scope:     answered correctly {pct(report.in_correct)}, answered wrongly {pct(report.in_wrong)}"
        f" (of which one program missing {pct(report.in_partial)}), asked back {pct(report.in_clarify)},"
        f" not found {pct(report.in_no_match)} (with the right entry offered to pick {pct(report.in_no_match_offered)})",
        f"out of scope: refused (not found) {pct(report.out_refused)} (with entries offered"
        f" {pct(report.out_refused_offered)}), answered wrongly {pct(report.out_wrong)},"
        f" asked back {pct(report.out_clarify)}",
        f"wrong answers over all questions {pct(report.wrong_answer_rate)}",
        f"ranking: SR@1 {pct(report.sr1)}, SR@5 {pct(report.sr5)}, MRR@10 {report.mrr10:.3f}",
    ]
    if report.ndcg10 is not None:
        lines.append(f"graded: nDCG@10 {report.ndcg10:.3f}, Recall@10 {report.recall10:.3f}")
    lines.append(f"latency per question: p50 {report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms")
    return lines


@app.command(cls=OneLineCommand)
def bench(
    size: Annotated[int, typer.Option(help="合成知識ベースのエントリ数")] = 2000,
    repeat: Annotated[int, typer.Option(help="各質問の計測回数")] = 3,
) -> None:
    """本マッチャー・以前のマッチャー・ベースライン（rapidfuzz、bm25s）を同じ実行で比べる（ソースから実行）。"""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # the benchmark is tooling in tests/bench, run from a checkout
    try:
        from tests.bench.bench import run_bench
    except ModuleNotFoundError:
        fail("kounen bench runs from the root of a source checkout (make bench)")
    if size < 100:
        fail("--size must be at least 100")
    if repeat < 1:
        fail("--repeat must be at least 1")
    run_bench(size=size, repeat=repeat)


@app.command("bot", cls=OneLineCommand)
def bot_cmd(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="SQLAlchemy の URL（省略時は KOUNEN_DATABASE_URL、なければ既定の SQLite）"
        ),
    ] = None,
    poll_timeout: Annotated[
        int, typer.Option("--poll-timeout", min=0, max=50, help="ロングポーリングの待ち時間（秒）")
    ] = 10,
) -> None:
    """Telegram ボットをロングポーリングで動かす（必要なのは KOUNEN_TELEGRAM_TOKEN だけ）。"""
    from bot.telegram import BotStartError, run_polling

    try:
        run_polling(database_url, poll_timeout)
    except BotStartError as exc:
        fail(" ".join(str(exc).split()))


HostOption = Annotated[str | None, typer.Option("--host", help="待ち受けるアドレス（既定 127.0.0.1）")]
PortOption = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="ポート（既定 8080）")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, max=64, help="ワーカープロセス数（既定 1）")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy の URL（複数ワーカーでは PostgreSQL）"),
]


def _serve(
    host: str | None, port: int | None, workers: int | None, database_url: str | None, *, console_only: bool
) -> None:
    """`kounen serve` and `kounen console`: settings checked once here, so a mistake is one line, not one per worker."""
    from bot.console import ConsoleSettingsError
    from bot.settings import SettingsError, configure_logging, load_settings
    from bot.telegram import BotStartError
    from bot.web import console_settings, serve, serve_console

    try:
        settings = load_settings(
            listen_host=host, listen_port=port, workers=workers, database_url=database_url
        )
        configure_logging(settings)
        console_settings(settings)
        (serve_console if console_only else serve)(settings)
    except (SettingsError, BotStartError, ConsoleSettingsError) as exc:
        fail(" ".join(str(exc).split()))


@app.command("serve", cls=OneLineCommand)
def serve_cmd(
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Telegram の Webhook を受ける ASGI サーバー（uvicorn、複数ワーカー可）を起動する。"""
    _serve(host, port, workers, database_url, console_only=False)


@app.command("console", cls=OneLineCommand)
def console_cmd(
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """コールセンター用コンソールだけを起動する（Telegram のトークンは不要）。"""
    _serve(host, port, workers, database_url, console_only=True)


class CaseView(StrEnum):
    open = "open"
    mine = "mine"
    closed = "closed"


@app.command("cases", cls=OneLineCommand)
def cases_cmd(
    view: Annotated[
        CaseView, typer.Option("--view", help="open（対応待ち・対応中）/ mine / closed")
    ] = CaseView.open,
    staff: Annotated[str | None, typer.Option("--staff", help="--view mine の担当者名")] = None,
    number: Annotated[str | None, typer.Option("--number", help="受付番号（詳細を表示）")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="SQLAlchemy の URL（省略時は KOUNEN_DATABASE_URL）")
    ] = None,
) -> None:
    """担当者への引き継ぎ（お問い合わせ）を一覧する。"""
    from bot.cases import Cases
    from bot.console.case_pages import STATUS, age
    from bot.handoff import REASONS, normal_case_number
    from bot.settings import SettingsError, load_settings
    from bot.store import Store, StoreError

    if view is CaseView.mine and not staff:
        fail("--view mine needs --staff NAME")
    programs = {pid: p.short for pid, p in _load(None).programs.items()}

    def program(pid: str | None) -> str:
        return programs.get(pid or "", "制度未指定")

    try:
        settings = load_settings(database_url=database_url)
        with Store.open(settings.database_url, salt=settings.hash_salt.get_secret_value()) as store:
            cases = Cases(store)
            cases.housekeeping()
            if number:
                case = cases.get(normal_case_number(number))
                if case is None:
                    fail(f"no case {number!r} (check the number: e.g. KX4-7TA)", 1)
                typer.echo(
                    f"{case.number}  {STATUS.get(case.status, case.status)}  {case.program or '制度未指定'}"
                )
                typer.echo(f"理由：{REASONS.get(case.reason, case.reason)}  担当：{case.assignee or '—'}")
                for turn in case.summary.get("turns", []):
                    typer.echo(f"  質問：{turn['text']} → {turn.get('title') or turn['status']}")
                for event in case.events:
                    if event.kind in ("user", "bot", "staff", "notice"):
                        first = (event.text or "").splitlines()[0] if event.text else ""
                        typer.echo(f"  [{event.kind}] {first}")
                return
            found = cases.list(view.value, staff)
    except (SettingsError, StoreError) as exc:
        fail(" ".join(str(exc).split()))
    if not found:
        typer.echo("該当するお問い合わせはありません。")
    for case in found:
        typer.echo(
            "\t".join(
                [
                    case.number,
                    age(case.opened_at),
                    program(case.program),
                    REASONS.get(case.reason, case.reason),
                    case.assignee or "—",
                    STATUS.get(case.status, case.status),
                    (case.first_question or "")[:40],
                ]
            )
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


# Keep a name for the rendered answer of one entry (used by scripts and tests).
render_answer = answer_text

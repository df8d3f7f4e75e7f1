"""`kounen calc productivity` and `kounen check withdrawal`: the rules from the command line.

bot/cli.py mounts the two apps as `app.add_typer(calc_app, name="calc")` and
`app.add_typer(check_app, name="check")`.  Options take the same human formats as
the guided dialogs (`--operating-profit 3000万`, `--delivered 令和3年4月1日`), read by
rules.parsing, so a figure typed here means what it means in a chat.  Every user
mistake — a value that cannot be read, an impossible combination, a missing or
unknown option — ends in one line on stderr saying what is wrong and what is
expected, with exit code 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer._click.core import Context as ClickContext  # typer vendors click
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from faq import KBError, KnowledgeBase, load_kb
from faq.models import Contact, SourceRef
from faq.render import contact_block
from rules import (
    EVENTS,
    PROGRAMS,
    REFUND_LABELS,
    TOKYO,
    DomainError,
    ParseError,
    ProductivityInputs,
    WithdrawalInputs,
    calculate_productivity,
    check_withdrawal,
    format_date,
    line_status,
    parse_amount,
    parse_count,
    parse_date,
    parse_hours,
    parse_productivity,
    parse_report_year,
)

T = TypeVar("T")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo("kounen: " + " ".join(message.split()), err=True)
    raise typer.Exit(code)


def _usage(exc: UsageError) -> NoReturn:
    _fail(f"{exc.format_message()}（使い方は --help で表示します）")


class _OneLineUsage:
    """Click's usage errors (unknown option, missing value) as one line instead of a box."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc, no-any-return]
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _usage(exc)


class OneLineCommand(_OneLineUsage, TyperCommand):
    pass


class OneLineGroup(_OneLineUsage, TyperGroup):
    def resolve_command(self, ctx: ClickContext, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            _usage(exc)


calc_app = typer.Typer(
    cls=OneLineGroup,
    add_completion=False,
    no_args_is_help=True,
    help="計算：労働生産性と伸び率（IT導入補助金2023 複数社連携の効果報告）",
    pretty_exceptions_enable=False,
)
check_app = typer.Typer(
    cls=OneLineGroup,
    add_completion=False,
    no_args_is_help=True,
    help="判定：ITツールの解約・廃業等で辞退届と返還が必要か",
    pretty_exceptions_enable=False,
)


def _read(option: str, text: str, parser: Callable[[str], T]) -> T:
    try:
        return parser(text)
    except ParseError as exc:
        _fail(f"{option}: {exc.message}")


def _require(values: dict[str, str | None], examples: dict[str, str]) -> dict[str, str]:
    missing = [name for name, value in values.items() if value is None]
    if missing:
        shown = "、".join(f"{name} {examples[name]}" for name in missing)
        _fail(f"次のオプションを指定してください：{shown}")
    return {name: value for name, value in values.items() if value is not None}


def _kb() -> KnowledgeBase:
    try:
        return load_kb()
    except KBError as exc:
        _fail(f"invalid knowledge base: {exc}", 1)


def _source_lines(kb: KnowledgeBase | None, sources: tuple[SourceRef, ...]) -> list[str]:
    lines = []
    for ref in sources:
        doc = kb.documents.get(ref.document) if kb else None
        lines.append(f"出典：{doc.title if doc else ref.document}　{ref.ref}")
    return lines


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False))


# ---------------------------------------------------------------- calc productivity

_PRODUCTIVITY_OPTIONS = {
    "employees": "--employees",
    "annual_hours": "--hours",
    "labor_cost": "--labor-cost",
    "depreciation": "--depreciation",
    "baseline": "--baseline",
    "year": "--year",
}


@calc_app.command("productivity", cls=OneLineCommand)
def productivity_cmd(
    operating_profit: Annotated[
        str | None, typer.Option("--operating-profit", help="営業利益（例：3000万、▲500万）")
    ] = None,
    labor_cost: Annotated[
        str | None, typer.Option("--labor-cost", help="人件費＝給与手当＋旅費交通費＋賞与（例：2,000万円）")
    ] = None,
    depreciation: Annotated[
        str | None, typer.Option("--depreciation", help="減価償却費（例：500万）")
    ] = None,
    employees: Annotated[
        str | None,
        typer.Option("--employees", help="従業員数（いない場合は役員（代表者を含む）又は事業主の人数）"),
    ] = None,
    hours: Annotated[str | None, typer.Option("--hours", help="年間平均労働時間（例：1,800時間）")] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="申請時の実績値（労働生産性、例：2,800）")
    ] = None,
    year: Annotated[str | None, typer.Option("--year", help="効果報告年度：1 または 2")] = None,
    group_includes_2022: Annotated[
        bool,
        typer.Option(
            "--group-includes-2022",
            help="IT導入補助金2022 の通常枠・複数社連携で交付決定を受けた構成員がいる（基準6%）",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="結果を1行の JSON で出力する")] = False,
) -> None:
    """営業利益・人件費・減価償却費・従業員数・年間平均労働時間から労働生産性と伸び率を計算する。"""
    given = _require(
        {
            "--operating-profit": operating_profit,
            "--labor-cost": labor_cost,
            "--depreciation": depreciation,
            "--employees": employees,
            "--hours": hours,
        },
        {
            "--operating-profit": "3000万",
            "--labor-cost": "2000万",
            "--depreciation": "500万",
            "--employees": "10",
            "--hours": "1800",
        },
    )
    if baseline is not None and year is None:
        _fail("--baseline には --year（効果報告年度：1 または 2）も指定してください")
    if year is not None and baseline is None:
        _fail("--year には --baseline（申請時の実績値：労働生産性）も指定してください")
    inputs = ProductivityInputs(
        operating_profit=_read("--operating-profit", given["--operating-profit"], parse_amount),
        labor_cost=_read("--labor-cost", given["--labor-cost"], parse_amount),
        depreciation=_read("--depreciation", given["--depreciation"], parse_amount),
        employees=_read("--employees", given["--employees"], parse_count),
        annual_hours=_read("--hours", given["--hours"], parse_hours),
        baseline=None if baseline is None else _read("--baseline", baseline, parse_productivity),
        year=None if year is None else _read("--year", year, parse_report_year),
        group_includes_2022=group_includes_2022,
    )
    try:
        result = calculate_productivity(inputs)
    except DomainError as exc:
        _fail(f"{_PRODUCTIVITY_OPTIONS.get(exc.field, exc.field)}: {exc.message}")
    if as_json:
        _emit(result.as_dict())
        return
    kb = _kb()
    for line in (*result.explanation, *_source_lines(kb, result.sources)):
        typer.echo(line)


# ---------------------------------------------------------------- check withdrawal


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "phones": [{"label": p.label, "number": p.number} for p in contact.phones],
        "url": contact.url,
        "hours_text": contact.hours_text,
        "note": contact.note,
    }


@check_app.command("withdrawal", cls=OneLineCommand)
def withdrawal_cmd(
    program: Annotated[str | None, typer.Option("--program", help="制度：it2020 | it2023-multi")] = None,
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            help="cancel-part（一部の解約・利用停止）| cancel-all（すべて）| closure（廃業・倒産等）",
        ),
    ] = None,
    delivered: Annotated[
        list[str] | None,
        typer.Option("--delivered", help="ITツールの納品日（ツールごとに繰り返し指定、例：2021/4/1）"),
    ] = None,
    cancelled: Annotated[
        str | None, typer.Option("--cancelled", help="解約・利用停止（予定）日、廃業等の日")
    ] = None,
    completed: Annotated[str | None, typer.Option("--completed", help="補助事業の完了日")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="結果を1行の JSON で出力する")] = False,
) -> None:
    """ITツールの解約・利用停止や廃業等で、辞退届と補助金の返還が必要かを判定する。"""
    examples = {
        "--program": "it2020",
        "--event": "cancel-all",
        "--delivered": "2021/4/1",
        "--cancelled": "2022/3/31",
        "--completed": "2021/4/20",
    }
    given = _require({"--program": program, "--event": event}, examples)
    prog = _choice("--program", given["--program"], PROGRAMS)
    ev = _choice("--event", given["--event"], EVENTS)
    if prog == "it2020":  # the 2023 手引き sets no date rule: there the dates are optional
        _require(
            {
                "--delivered": delivered[0] if delivered else None,
                "--cancelled": cancelled,
                "--completed": completed,
            },
            examples,
        )
    inputs = WithdrawalInputs(
        program=prog,
        event=ev,
        delivered=tuple(_read("--delivered", d, parse_date) for d in delivered or ()),
        cancelled=_read("--cancelled", cancelled, parse_date) if cancelled is not None else None,
        completed=_read("--completed", completed, parse_date) if completed is not None else None,
    )
    try:
        result = check_withdrawal(inputs)
    except DomainError as exc:
        _fail(f"--{exc.field}: {exc.message}")
    kb = _kb()
    contact = kb.contacts.get(result.contact)
    if as_json:
        payload = result.as_dict()
        payload["contact_detail"] = _contact_json(contact) if contact else None
        _emit(payload)
        return
    required = {
        True: "必要です",
        False: "出典上、必要とされていません",
        None: "出典に定めがありません（窓口にご確認ください）",
    }
    lines = [
        f"【判定】{result.summary}",
        f"辞退届：{required[result.withdrawal_required]}",
        f"返還：{REFUND_LABELS[result.refund]}",
        f"基準日：{_day(result.base_date)}　1年未満として扱う期限：{_day(result.one_year_date)}"
        f"　期間の終わり：{_day(result.period_end)}",
        "",
        *result.explanation,
        *_source_lines(kb, result.sources),
    ]
    if contact is not None:
        status = line_status(contact, datetime.now(TOKYO))
        lines += ["", "お問い合わせ先：", contact_block(contact), f"現在：{status.text}"]
    for line in lines:
        typer.echo(line)


def _day(value: date | None) -> str:
    return format_date(value) if value else "なし（出典に定めなし）"


def _choice(option: str, value: str, allowed: tuple[T, ...]) -> T:
    for candidate in allowed:
        if value.strip().lower() == candidate:
            return candidate
    _fail(f"{option} は {' | '.join(str(a) for a in allowed)} のいずれかを指定してください（入力：{value}）")


__all__ = ["calc_app", "check_app"]

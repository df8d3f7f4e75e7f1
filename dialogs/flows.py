"""The guided calculations as data: labour productivity and the withdrawal (辞退) check.

Each step reads one figure with the parsers of rules/parsing.py, so the bot,
the command line and the console all accept the same way of writing numbers
and dates.  Values are stored as JSON (amounts as strings, dates as ISO), so a
conversation can be saved and resumed.  The closing summary comes from the
rules themselves: inputs, formula, figures, verdict, next steps and sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from dialogs.engine import Flow, Invalid, Step, Values
from dialogs.types import Reply, ReplyChoice
from faq import KnowledgeBase, contact_block, load_kb
from rules import (
    EVENT_LABELS,
    DomainError,
    ParseError,
    ProductivityInputs,
    WithdrawalInputs,
    calculate_productivity,
    check_withdrawal,
    format_date,
    format_yen,
    labor_cost,
    parse_amount,
    parse_count,
    parse_date,
    parse_hours,
    parse_productivity,
    parse_report_year,
    parse_yes_no,
)

YES_NO = (ReplyChoice("はい", "yes"), ReplyChoice("いいえ", "no"))
BREAKDOWN = "内訳"


@lru_cache(maxsize=1)
def _kb() -> KnowledgeBase:
    return load_kb()


def _reading(parse: Callable[[str], Any], store: Callable[[Any], Any] = str) -> Callable[[str, Values], Any]:
    """Wrap a rules parser: its ParseError becomes the engine's re-prompt."""

    def read(text: str, values: Values) -> Any:
        try:
            return store(parse(text))
        except ParseError as exc:
            raise Invalid(exc.message) from None

    return read


def _yes_no(text: str, values: Values) -> bool:
    if text in ("yes", "no"):
        return text == "yes"
    return bool(_reading(parse_yes_no, bool)(text, values))


def _show_yen(value: Any) -> str:
    return format_yen(Decimal(value))


def _show_yes_no(value: Any) -> str:
    return "はい" if value else "いいえ"


# ---------------------------------------------------------------- productivity


def _labor_cost(text: str, values: Values) -> str:
    if text in (BREAKDOWN, "内訳から計算", "breakdown", "うちわけ"):
        return BREAKDOWN
    return str(_reading(parse_amount)(text, values))


def _employees(text: str, values: Values) -> int:
    count = int(_reading(parse_count, int)(text, values))
    if count <= 0:
        raise Invalid(
            "従業員数は0にできません。従業員がいない場合は、役員（代表者を含む）又は事業主の人数を入力してください"
            "（例：1人）。"
        )
    return count


def _breakdown(values: Values) -> bool:
    return values.get("labor_cost") == BREAKDOWN


def _with_baseline(values: Values) -> bool:
    return bool(values.get("has_baseline"))


def _productivity_inputs(values: Values) -> ProductivityInputs:
    if _breakdown(values):
        labor = labor_cost(Decimal(values["salaries"]), Decimal(values["travel"]), Decimal(values["bonuses"]))
    else:
        labor = Decimal(values["labor_cost"])
    baseline = _with_baseline(values)
    return ProductivityInputs(
        operating_profit=Decimal(values["operating_profit"]),
        labor_cost=labor,
        depreciation=Decimal(values["depreciation"]),
        employees=int(values["employees"]),
        annual_hours=Decimal(values["hours"]),
        baseline=Decimal(values["baseline"]) if baseline else None,
        year=values["year"] if baseline else None,
        group_includes_2022=bool(values.get("group_2022")) if baseline else False,
    )


def _sources_text(sources: Any) -> str:
    kb = _kb()
    lines = []
    for ref in sources:
        doc = kb.documents.get(ref.document)
        lines.append(f"・{doc.title if doc else ref.document}　{ref.ref}")
    return "出典：\n" + "\n".join(lines)


def _finish_productivity(values: Values) -> list[Reply]:
    try:
        result = calculate_productivity(_productivity_inputs(values))
    except DomainError as exc:
        return [
            Reply(f"計算できませんでした：{exc.message}", result={"error": exc.message, "field": exc.field})
        ]
    lines = ["【労働生産性の計算結果】", *result.explanation]
    next_steps = (
        "次の手順：効果報告では、事務局から送付された様式（Excel）の水色セルに数値を入力し、"
        "算出された労働生産性と年率平均成長率を申請マイページに入力して、記入済みの様式を添付してください。"
        "この計算は目安で、公式の様式（Excel）の算出結果が正式なものです。"
    )
    related = (
        ReplyChoice("労働生産性の計算式", "faq:it2023-productivity-formula"),
        ReplyChoice("伸び率が5%に届かない場合", "faq:it2023-publication"),
        ReplyChoice("様式（Excel）の使い方", "faq:it2023-excel-sheets"),
    )
    return [
        Reply("\n".join(lines), result=result.as_dict()),
        Reply(f"{next_steps}\n\n{_sources_text(result.sources)}", choices=related),
    ]


PRODUCTIVITY = Flow(
    id="productivity",
    title="労働生産性・伸び率の計算",
    intro=(
        "労働生産性（付加価値額 ÷（従業員数 × 年間平均労働時間））と、交付申請時の実績値からの伸び率を計算します。"
        "各年度の決算期の損益計算書などの数値を順にお伺いします。途中で「戻る」「ヘルプ」「やめる」、"
        "「人件費を3000万に修正」のような修正もできます。"
    ),
    steps=(
        Step(
            "operating_profit",
            "営業利益（円）を入力してください。損益計算書の「営業利益」の数値です（赤字は ▲500万 のように）。",
            _reading(parse_amount),
            "営業利益は、各年度の決算期に作成された損益計算書の「営業利益」の数値です。",
            labels=("営業利益",),
            show=_show_yen,
        ),
        Step(
            "labor_cost",
            "人件費（円）を入力してください。損益計算書の「給与手当」「旅費交通費」「賞与」の合計です。"
            "内訳から合計する場合は「内訳」と入力してください。",
            _labor_cost,
            "人件費は、各年度の決算期に作成された損益計算書の「給与手当」「旅費交通費」「賞与」を合算した数値です。",
            choices=(ReplyChoice("内訳から計算", "breakdown"),),
            labels=("人件費",),
            show=lambda v: "内訳から計算" if v == BREAKDOWN else _show_yen(v),
        ),
        Step(
            "salaries",
            "給与手当（円）を入力してください。",
            _reading(parse_amount),
            "損益計算書の「給与手当」の数値です。",
            labels=("給与手当", "給与"),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "travel",
            "旅費交通費（円）を入力してください。",
            _reading(parse_amount),
            "損益計算書の「旅費交通費」の数値です。",
            labels=("旅費交通費", "旅費"),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "bonuses",
            "賞与（円）を入力してください（ない場合は 0）。",
            _reading(parse_amount),
            "損益計算書の「賞与」の数値です。",
            labels=("賞与",),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "depreciation",
            "減価償却費（円）を入力してください。損益計算書の「減価償却費」の数値です。",
            _reading(parse_amount),
            "減価償却費は、各年度の決算期に作成された損益計算書の「減価償却費」の数値です。",
            labels=("減価償却費",),
            show=_show_yen,
        ),
        Step(
            "employees",
            "従業員数（人）を入力してください。決算期の労働者名簿に記載のある従業員の合計人数です。",
            _employees,
            "従業員数は、各年度の決算期の労働者名簿に記載のある従業員の合計人数です。"
            "従業員がいない場合は、役員（代表者を含む）又は事業主の人数を入力します。",
            labels=("従業員数", "従業員"),
            show=lambda v: f"{v}人",
        ),
        Step(
            "hours",
            "年間平均労働時間（時間）を入力してください（例：1,800時間）。",
            _reading(parse_hours),
            "タイムカードや勤怠システムに記録された情報に基づき、従業員の年間の平均労働時間を算出した数値です。",
            labels=("年間平均労働時間", "労働時間", "時間"),
            show=lambda v: f"{Decimal(v):,}時間",
        ),
        Step(
            "has_baseline",
            "交付申請時の実績値（労働生産性）と比べて、年率平均成長率も計算しますか？",
            _yes_no,
            "実績値は申請マイページの「交付申請内容情報詳細」で確認できます。伸び率は CAGR（年平均成長率）で計算します。",
            choices=YES_NO,
            show=_show_yes_no,
        ),
        Step(
            "baseline",
            "交付申請時の実績値（労働生産性）を入力してください（例：4,500）。",
            _reading(parse_productivity),
            "申請マイページの「交付申請内容情報詳細」に表示される、交付申請時の労働生産性の実績値です。",
            labels=("実績値", "基準値"),
            when=_with_baseline,
            condition="伸び率も計算",
        ),
        Step(
            "year",
            "何年度目の効果報告ですか？（1 または 2）",
            _reading(parse_report_year, int),
            "効果報告は1年度目・2年度目に各1回です。1年度目なら1年、2年度目なら2年の年平均で伸び率を計算します。",
            choices=(ReplyChoice("1年度目", "1"), ReplyChoice("2年度目", "2")),
            labels=("年度",),
            when=_with_baseline,
            condition="伸び率も計算",
        ),
        Step(
            "group_2022",
            "補助事業グループの構成員に、IT導入補助金2022の通常枠（A・B類型）またはデジタル化基盤導入枠"
            "（複数社連携IT導入類型）で交付決定を受けた事業者が含まれますか？",
            _yes_no,
            "含まれる場合、公表の基準は年率平均6%、含まれない場合は5%です。",
            choices=YES_NO,
            when=_with_baseline,
            condition="伸び率も計算",
            show=_show_yes_no,
        ),
    ),
    finish=_finish_productivity,
)


# ---------------------------------------------------------------- withdrawal

_PROGRAM_WORDS: dict[str, tuple[str, ...]] = {
    "it2020": ("it2020", "2020", "令和元年度補正", "令和2年度補正"),
    "it2023-multi": ("it2023-multi", "2023", "複数社連携", "複数社"),
}
_EVENT_WORDS: dict[str, tuple[str, ...]] = {
    "cancel-part": ("cancel-part", "一部", "一部解約", "一部だけ", "片方"),
    "cancel-all": ("cancel-all", "全部", "すべて", "全て", "全部解約", "解約", "利用停止"),
    "closure": ("closure", "廃業", "倒産", "事業廃止", "事業譲渡", "吸収合併", "合併", "閉業"),
}


def _pick(words: dict[str, tuple[str, ...]], what: str, example: str) -> Callable[[str, Values], str]:
    def read(text: str, values: Values) -> str:
        low = text.lower()
        # The most specific word wins: 「一部解約」 is a partial cancellation, not any 解約.
        longest: dict[str, int] = {}
        for key, ws in words.items():
            found = [len(w) for w in ws if w in low]
            if found:
                longest[key] = max(found)
        best = sorted(longest.items(), key=lambda item: -item[1])
        if best and (len(best) == 1 or best[0][1] > best[1][1]):
            return best[0][0]
        raise Invalid(f"「{text}」からは{what}が読み取れませんでした。{example}")

    return read


def _dates(text: str, values: Values) -> list[str]:
    parts = [p for p in re.split(r"[、,，\s]+|と|及び|および", text) if p]
    if not parts:
        raise Invalid("納品日を入力してください（例：2021/4/1、複数あれば 2021/4/1、2021/6/1）。")
    out = []
    for part in parts:
        try:
            out.append(parse_date(part).isoformat())
        except ParseError as exc:
            raise Invalid(f"{exc.message}（複数の納品日は「、」で区切ってください）") from None
    return out


def _one_date(text: str, values: Values) -> str:
    try:
        return parse_date(text).isoformat()
    except ParseError as exc:
        raise Invalid(exc.message) from None


def _show_dates(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    return "、".join(format_date(date.fromisoformat(v)) for v in items)


def _finish_withdrawal(values: Values) -> list[Reply]:
    inputs = WithdrawalInputs(
        program=values["program"],
        event=values["event"],
        delivered=tuple(date.fromisoformat(d) for d in values["delivered"]),
        cancelled=date.fromisoformat(values["cancelled"]),
        completed=date.fromisoformat(values["completed"]),
    )
    try:
        result = check_withdrawal(inputs)
    except DomainError as exc:
        return [
            Reply(
                f"確認できませんでした：{exc.message}「戻る」で入力し直せます。",
                result={"error": exc.message},
            )
        ]
    kb = _kb()
    contact = kb.contacts.get(result.contact)
    lines = ["【辞退・返還の確認結果】", result.summary, *result.explanation]
    tail = []
    if result.submit_via:
        tail.append(f"提出先：{result.submit_via}")
    if contact is not None:
        tail.append(contact_block(contact))
    tail.append(_sources_text(result.sources))
    related = {
        "it2020": (
            ReplyChoice("1年未満で解約する場合", "faq:it2020-cancel-within-year"),
            ReplyChoice("1年以上経過後に解約する場合", "faq:it2020-cancel-after-year"),
            ReplyChoice("導入時期の基準", "faq:it2020-delivery-base-date"),
        ),
        "it2023-multi": (
            ReplyChoice("辞退届が必要な場合", "faq:it2023-withdrawal-triggers"),
            ReplyChoice("辞退届の提出方法", "faq:it2023-withdrawal-how"),
            ReplyChoice("加算金とは", "faq:it2023-kasankin"),
        ),
    }[inputs.program]
    return [Reply("\n".join(lines), result=result.as_dict()), Reply("\n\n".join(tail), choices=related)]


WITHDRAWAL = Flow(
    id="withdrawal",
    title="辞退・返還の確認",
    intro=(
        "ITツールの解約や廃業などで辞退届が必要か、補助金の返還がどうなるかを、公式資料に沿って確認します。"
        "途中で「戻る」「ヘルプ」「やめる」、「解約日を2024/5/1に修正」のような修正もできます。"
    ),
    steps=(
        Step(
            "program",
            "どちらの補助金ですか？",
            _pick(_PROGRAM_WORDS, "補助金", "「2020」または「2023 複数社連携」からお選びください。"),
            "IT導入補助金2020（令和元年度補正・令和2年度補正）と、IT導入補助金2023 複数社連携では、資料も窓口も異なります。",
            choices=(
                ReplyChoice("IT導入補助金2020", "it2020"),
                ReplyChoice("IT導入補助金2023 複数社連携", "it2023-multi"),
            ),
            labels=("補助金", "制度"),
        ),
        Step(
            "event",
            "どのようなことが起きましたか（予定を含む）？",
            _pick(_EVENT_WORDS, "事由", "「一部解約」「全部解約」「廃業など」からお選びください。"),
            "複数のITツールの一部だけを解約・利用停止する場合も、補助事業の辞退とみなされます。",
            choices=tuple(ReplyChoice(EVENT_LABELS[e], e) for e in ("cancel-part", "cancel-all", "closure")),
            labels=("事由",),
            show=lambda v: EVENT_LABELS.get(v, v),
        ),
        Step(
            "delivered",
            "ITツールの納品日を入力してください（実績報告の納品日。複数あれば「2021/4/1、2021/6/1」のように）。",
            _dates,
            "複数のITツールの納品日が異なる場合、実績報告の納品日が遅い方を基準として考えます（2020 FAQ 質問9）。",
            labels=("納品日",),
            show=_show_dates,
        ),
        Step(
            "cancelled",
            "解約・利用停止（廃業などの場合は事業をやめる）日を入力してください（予定日でも構いません）。",
            _one_date,
            "すでに解約した日、またはこれから解約する予定の日です。",
            labels=("解約日", "予定日"),
            show=_show_dates,
        ),
        Step(
            "completed",
            "補助事業の完了日を入力してください。",
            _one_date,
            "2020では、完了日の属する年度（4月〜翌3月）の終了後5年間が辞退届の対象期間です。",
            labels=("完了日",),
            show=_show_dates,
        ),
    ),
    finish=_finish_withdrawal,
)

FLOWS: dict[str, Flow] = {flow.id: flow for flow in (PRODUCTIVITY, WITHDRAWAL)}

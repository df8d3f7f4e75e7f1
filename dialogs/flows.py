"""The guided calculations as data: labour productivity and the withdrawal (辞退) check.

Each step reads one figure with the parsers of rules/parsing.py, so the bot,
the command line and the console all accept the same way of writing numbers
and dates.  Values are stored as JSON (amounts as strings, dates as ISO), so a
conversation can be saved and resumed.  Each value is checked against the
others when it is given.  The closing replies put a short verdict first, then
the figures that lead to it, then the next steps and the sources; the complete
structured result travels with them for channels that show more.

Which program a reply names is read by the function the caller injects in the
engine's Context (the service reads it with faq/programs.py), so these flows
hold no second program parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from dialogs.choices import OTHER, UNKNOWN, program_choices
from dialogs.engine import (
    Assume,
    Confirm,
    Flow,
    Invalid,
    Reask,
    Step,
    Values,
    context_of,
    remembered_of,
)
from dialogs.types import Reply, ReplyChoice
from faq import KnowledgeBase, contact_block, load_kb
from faq.render import sources_by_document
from rules import (
    EVENT_LABELS,
    DomainError,
    ParseError,
    ProductivityInputs,
    ProductivityResult,
    Program,
    WithdrawalInputs,
    WithdrawalResult,
    calculate_productivity,
    check_withdrawal,
    contact_brief,
    format_date,
    format_money,
    format_productivity,
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
IT2020: Final = "it2020"
IT2023: Final = "it2023-multi"
BOTH: Final = "both"
PROGRAM_SHORT = {IT2020: "IT導入補助金2020", IT2023: "IT導入補助金2023 複数社連携"}


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


_NEGATIVE_YES_NO = re.compile(
    r"(?:いない|いません|ない|ません|なし|無し|いいえ|違う|ちがう|しない|不要|いらない|結構)"
)
_POSITIVE_YES_NO = re.compile(
    r"(?:はい|います|いる|ある|あります|含む|含みます|含まれ|します|する|して|したい|ほしい|お願い)"
)


def _yes_no(text: str, values: Values) -> bool:
    if text in ("yes", "no"):
        return text == "yes"
    try:
        return parse_yes_no(text)
    except ParseError as exc:
        if any(w in text for w in ("わから", "分から", "不明", "覚えて", "かも", "たぶん", "多分")):
            raise Invalid(exc.message) from None
        # 「はい、実績値は4,100です」「2022の事業者は含まれてないです」: the answer inside a sentence.
        if _NEGATIVE_YES_NO.search(text):
            return False
        if _POSITIVE_YES_NO.search(text):
            return True
        raise Invalid(exc.message) from None


def _show_yen(value: Any) -> str:
    return format_money(Decimal(value))


def _show_yes_no(value: Any) -> str:
    return "はい" if value else "いいえ"


_NONE = re.compile(
    r"^(?:なし|無し|ない|ありません|ゼロ|計上なし|計上していない|計上してない)(?:です|でした)?$"
)


SMALL_AMOUNT = Decimal(100_000)


def _small(value: Decimal, what: str) -> None:
    """A 決算書 figure under 10万円 is most often typed without its unit (万円, 千円): ask before using it."""
    if 0 < abs(value) < SMALL_AMOUNT:
        raise Confirm(
            str(value),
            f"{what}を {_show_yen(value)} と読み取りました。この金額でよろしいですか？"
            f"（万円・千円の場合は「いいえ」と答えて、{value:,}万 や {value:,}千円 のように入力してください）",
        )


def _amount(
    *, zero_words: bool = False, what: str = "", confirm_small: bool = False
) -> Callable[[str, Values], str]:
    """An amount in yen; with `what`, negative amounts are refused at the step (経費は0以上)."""

    def read(text: str, values: Values) -> str:
        if zero_words and _NONE.match(text.strip()):
            return "0"
        value = _reading(parse_amount, Decimal)(text, values)
        if what and value < 0:
            raise Invalid(
                f"{what}がマイナス（{_show_yen(value)}）と読み取りました。{what}は0以上の金額です。"
            )
        if confirm_small:
            _small(value, what)
        return str(value)

    return read


# ---------------------------------------------------------------- productivity

_LOSS_WORDS = ("赤字", "損失", "マイナス", "欠損", "損")


def _operating_profit(text: str, values: Values) -> str:
    """An operating profit; a loss said in words is remembered, so that a bare 「500万」 next is not taken as profit."""
    try:
        value = parse_amount(text)
    except ParseError as exc:
        said_loss = any(w in text for w in _LOSS_WORDS) and not re.search(r"なし|ない|無し|ありません", text)
        if said_loss and not re.search(r"[0-9０-９一二三四五六七八九十百千万億]", text):
            raise Invalid(
                "赤字（マイナス）と読み取りました。金額も一緒に、▲500万 や 赤字500万 のように入力してください。",
                remember="loss",
            ) from None
        raise Invalid(exc.message) from None
    if value > 0 and remembered_of(values) == "loss":
        raise Confirm(
            str(-value),
            f"先ほど赤字とのことでした。営業利益を {_show_yen(-value)}（マイナス）として入力しますか？"
            "（黒字の場合は「いいえ」と答えて、もう一度入力してください）",
        )
    _small(value, "営業利益")
    return str(value)


def _labor_cost(text: str, values: Values) -> str:
    if text in (BREAKDOWN, "内訳から計算", "breakdown", "うちわけ", "内訳で", "内訳から"):
        return BREAKDOWN
    return _amount(what="人件費", confirm_small=True)(text, values)


_ALONE = re.compile(r"^(?:私|わたし|自分|社長|代表|代表者|事業主)(?:ひとり|一人|1人)?だけ(?:です)?$")


def _employees(text: str, values: Values) -> int:
    if _ALONE.match(text.replace(" ", "")):
        return 1
    count = int(_reading(parse_count, int)(text, values))
    if count <= 0:
        raise Invalid(
            "従業員数は0にできません。従業員がいない場合は、役員（代表者を含む）又は事業主の人数を入力してください"
            "（例：1人）。"
        )
    return count


MIN_PLAUSIBLE_HOURS = Decimal(200)
_PER_MONTH = re.compile(r"^(?:月|月間|毎月|ひと月|1か月|1ヶ月|一か月|一ヶ月)(?:に|あたり|で)?(?P<rest>.+)$")


def _hours(text: str, values: Values) -> str:
    per_month = _PER_MONTH.match(text.replace(" ", ""))
    if per_month:
        monthly = _reading(parse_hours, Decimal)(per_month.group("rest"), values)
        yearly = monthly * 12
        if monthly <= 0:
            raise Invalid("労働時間は0より大きい値を入力してください（例：1,800時間）。")
        raise Confirm(
            str(yearly),
            f"月{monthly:,}時間 × 12か月 ＝ 年間{yearly:,}時間 として入力しますか？"
            "（違う場合は「いいえ」と答えて、年間の平均労働時間を入力してください）",
        )
    hours = _reading(parse_hours, Decimal)(text, values)
    if hours <= 0:
        raise Invalid(
            "年間平均労働時間が0時間になっています。0より大きい値を入力してください（例：1,800時間）。"
        )
    if hours < MIN_PLAUSIBLE_HOURS:
        # 「1日8時間」「週40時間」: a day's or a week's hours read as a year's.
        raise Confirm(
            str(hours),
            f"年間平均労働時間を {hours:,}時間 と読み取りました。1年間の時間でよろしいですか？"
            "（1日や1週間の時間の場合は「いいえ」と答えて、年間の時間を入力してください）",
        )
    return str(hours)


def _breakdown(values: Values) -> bool:
    return values.get("labor_cost") == BREAKDOWN


def _labor_total(values: Values) -> str | None:
    """人件費 summed from its breakdown, once every item is given: 「3,000万円（給与手当＋旅費交通費＋賞与）」."""
    if not _breakdown(values) or any(k not in values for k in ("salaries", "travel", "bonuses")):
        return None
    total = labor_cost(Decimal(values["salaries"]), Decimal(values["travel"]), Decimal(values["bonuses"]))
    return f"{format_money(total)}（給与手当＋旅費交通費＋賞与）"


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
    """One line per document, its passages after it: no title twice."""
    return "出典：\n" + "\n".join(f"・{line}" for line in sources_by_document(_kb(), tuple(sources)))


_FIELD_STEP = {
    "labor_cost": "labor_cost",
    "depreciation": "depreciation",
    "employees": "employees",
    "annual_hours": "hours",
    "year": "year",
    "baseline": "baseline",
    "給与手当": "salaries",
    "旅費交通費": "travel",
    "賞与": "bonuses",
    "cancelled": "cancelled",
    "completed": "completed",
    "delivered": "delivered",
    "event": "event",
    "program": "program",
}


def _reask(exc: DomainError, fallback: str) -> Reask:
    return Reask(_FIELD_STEP.get(exc.field, fallback), exc.message)


def _threshold(result: ProductivityResult) -> str:
    return f"{(result.threshold * 100).normalize():f}%"


def _productivity_headline(result: ProductivityResult) -> str:
    """The verdict and its figure, in one sentence: what the person came for."""
    rnd = result.rounding
    threshold = _threshold(result)
    productivity = format_productivity(rnd.productivity(result.labor_productivity))
    if result.inputs.baseline is None:
        return f"労働生産性は {productivity} です。"
    standard = f"公表の基準（年率平均{threshold}以上）"
    if result.growth_rate is not None:
        reached = "に達しています" if result.meets_threshold else "に届いていません"
        return f"伸び率は年率{rnd.percent(result.growth_rate)}で、{standard}{reached}。"
    if result.meets_threshold is False:
        return f"労働生産性がマイナス（{productivity}）のため、{standard}に届いていません。"
    return "申請時の実績値が0以下のため、伸び率は計算できず、基準に達しているかは判断できません。"


_PUBLICATION = re.compile(r"事業終了後2年以内に.*?公表されます。(?:計画値未達のペナルティ等はありません。)?")
_SCOPE = (
    "この計算は1者分の目安です。公表の基準は補助事業グループ全体の値で判断されます。"
    "効果報告では、構成員ごとの労働生産性を事務局の様式（Excel）の【様式1】労働生産性計算表に入力すると、"
    "グループ全体の労働生産性と年率平均成長率が算出されます。その値を申請マイページに転記し、"
    "記入済みの様式を添付してください（様式の値が正式です）。"
)


def _productivity_facts(result: ProductivityResult, values: Values) -> list[str]:
    """The figure behind the verdict, what follows from it, and whom to ask."""
    rnd = result.rounding
    productivity = format_productivity(rnd.productivity(result.labor_productivity))
    facts = []
    if result.inputs.baseline is None:
        facts.append(f"付加価値額：{format_money(result.value_added)}")
    else:
        baseline = format_productivity(rnd.productivity(result.inputs.baseline))
        facts.append(f"労働生産性：{productivity}（申請時の実績値 {baseline}）")
    # Why a figure is negative: a loss larger than the labour cost and depreciation together.
    facts += [line for line in result.explanation if line.endswith("付加価値額がマイナスです。")]
    said = "\n".join(result.explanation)
    if result.meets_threshold is False and (found := _PUBLICATION.search(said)):
        facts.append(found.group(0))
    if any(line.startswith("表示上は") for line in result.explanation):
        facts.append("表示上は基準と同じ値ですが、端数処理前の値は基準をわずかに下回ります。")
    facts.append("この計算は1者分の目安です。報告する値は、事務局の様式（Excel）で算出した値です。")
    facts += _contact_facts(_program_contacts(IT2023), values)
    return facts


def _productivity_details(result: ProductivityResult, said: list[str]) -> str:
    """The formula with every figure, the standard, the rounding, the scope and the sources."""
    lines = [
        re.sub(r"^-?[\d.,]+%は基準の[\d.]+%(?:に達していません|以上です（基準に達しています）)。", "", line)
        for line in result.explanation
    ]
    # The scope below says how the reported figure is made, in full: its short form is left out.
    lines = _unsaid(said, [line for line in lines if line and not line.startswith("報告する数値は")])
    body = _unsaid(said + lines, [_SCOPE])
    return "\n\n".join(["\n".join(lines), *body, _sources_text(result.sources)])


def _finish_productivity(values: Values) -> list[Reply]:
    try:
        result = calculate_productivity(_productivity_inputs(values))
    except DomainError as exc:
        raise _reask(exc, "operating_profit") from None
    headline = _productivity_headline(result)
    facts = _productivity_facts(result, values)
    related = (
        ReplyChoice("労働生産性の計算式", "faq:it2023-productivity-formula"),
        ReplyChoice("伸び率が5%に届かない場合", "faq:it2023-publication"),
        ReplyChoice("様式（Excel）の使い方", "faq:it2023-excel-sheets"),
    )
    return [
        Reply(
            "\n\n".join([headline, "\n".join(facts)]),
            related,
            result=result.as_dict(),
            headline=headline,
            details=_productivity_details(result, [headline, *facts]),
        )
    ]


def _program_contacts(program: str) -> tuple[str, ...]:
    found = _kb().programs.get(program)
    return found.general_contacts if found is not None else ()


def _contact_facts(contact_ids: tuple[str, ...] | list[str], values: Values) -> list[str]:
    """「お問い合わせ：後年窓口 0570-002-551（受付中・17:30まで）」 for each line with a phone."""
    kb, now = _kb(), context_of(values).now
    found = [kb.contacts[c] for c in dict.fromkeys(contact_ids) if c in kb.contacts]
    return [f"お問い合わせ：{contact_brief(c, now)}" for c in found if c.phones]


_NOT_2020 = (
    "労働生産性と伸び率の計算は、IT導入補助金2023 複数社連携の「事業実施効果報告の手引き」に定められた計算です。"
    "IT導入補助金2020 のよくある質問（後年手続きについて）には、この計算はありません。"
    "2020 の手続きについては後年窓口にお問い合わせください。"
)

PRODUCTIVITY = Flow(
    id="productivity",
    title="労働生産性・伸び率の計算",
    intro=(
        "IT導入補助金2023 複数社連携の効果報告に使う労働生産性（付加価値額 ÷（従業員数 × 年間平均労働時間））と、"
        "交付申請時の実績値からの伸び率を計算します。決算書の数値を順にお伺いします"
        "（「営業利益2800万、減価償却300万」のようにまとめて入力しても構いません）。"
    ),
    programs=(IT2023,),
    not_covered={IT2020: _NOT_2020},
    steps=(
        Step(
            "operating_profit",
            "営業利益（円）を入力してください。損益計算書の「営業利益」の数値です（赤字は ▲500万 や 赤字500万 のように）。",
            _operating_profit,
            "営業利益は、各年度の決算期に作成された損益計算書の「営業利益」の数値です。赤字の場合は ▲500万 のように入力してください。",
            labels=("営業利益", "営業損益"),
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
            worked_out=_labor_total,
        ),
        Step(
            "salaries",
            "給与手当（円）を入力してください。",
            _amount(zero_words=True, what="給与手当", confirm_small=True),
            "損益計算書の「給与手当」の数値です。",
            labels=("給与手当", "給与", "給料"),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "travel",
            "旅費交通費（円）を入力してください（ない場合は 0）。",
            _amount(zero_words=True, what="旅費交通費"),
            "損益計算書の「旅費交通費」の数値です。ない場合は 0 と入力してください。",
            labels=("旅費交通費", "旅費", "交通費"),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "bonuses",
            "賞与（円）を入力してください（ない場合は 0）。",
            _amount(zero_words=True, what="賞与"),
            "損益計算書の「賞与」の数値です。ない場合は 0 と入力してください。",
            labels=("賞与", "ボーナス"),
            when=_breakdown,
            condition="内訳",
            show=_show_yen,
        ),
        Step(
            "depreciation",
            "減価償却費（円）を入力してください。損益計算書の「減価償却費」の数値です（ない場合は 0）。",
            _amount(zero_words=True, what="減価償却費", confirm_small=True),
            "減価償却費は、各年度の決算期に作成された損益計算書の「減価償却費」の数値です。ない場合は 0 と入力してください。",
            labels=("減価償却費", "減価償却", "償却費"),
            show=_show_yen,
        ),
        Step(
            "employees",
            "従業員数（人）を入力してください。決算期の労働者名簿に記載のある従業員の合計人数です。",
            _employees,
            "従業員数は、各年度の決算期の労働者名簿に記載のある従業員の合計人数です。"
            "従業員がいない場合は、役員（代表者を含む）又は事業主の人数を入力します。",
            labels=("従業員数", "従業員", "社員数", "社員"),
            units=("人", "名"),
            show=lambda v: f"{v}人",
        ),
        Step(
            "hours",
            "年間平均労働時間（時間）を入力してください（例：1,800時間）。",
            _hours,
            "タイムカードや勤怠システムに記録された情報に基づき、従業員の年間の平均労働時間を算出した数値です。",
            labels=("年間平均労働時間", "平均労働時間", "年間労働時間", "労働時間"),
            units=("時間", "h"),
            name="年間平均労働時間",
            show=lambda v: f"{Decimal(v):,}時間",
        ),
        Step(
            "has_baseline",
            "交付申請時の実績値（労働生産性）と比べて、伸び率（年率平均成長率）も計算しますか？",
            _yes_no,
            "伸び率は、交付申請時の実績値（労働生産性）に対する年平均の伸び（CAGR）です。"
            "実績値は申請マイページの「交付申請内容情報詳細」で確認できます。",
            choices=YES_NO,
            labels=("伸び率", "成長率"),
            name="伸び率の計算",
            show=_show_yes_no,
        ),
        Step(
            "baseline",
            "交付申請時の実績値（労働生産性）を入力してください（例：4,500）。",
            _reading(parse_productivity),
            "交付申請時に提出した労働生産性の実績値です。",
            labels=("実績値", "基準値", "申請時の労働生産性"),
            when=_with_baseline,
            condition="伸び率も計算",
            unsure="実績値は、申請マイページの「交付申請内容情報詳細」で確認できます（交付申請時に提出した「実績値」です）。"
            "確認できたら入力してください。伸び率を計算しない場合は「戻る」で前の質問に戻り「いいえ」を選んでください。",
            show=lambda v: format_productivity(Decimal(v)),
        ),
        Step(
            "year",
            "何年度目の効果報告ですか？（1 または 2）",
            _reading(parse_report_year, int),
            "効果報告は1年度目・2年度目に各1回です。1年度目なら1年、2年度目なら2年の年平均で伸び率を計算します。",
            choices=(ReplyChoice("1年度目", "1"), ReplyChoice("2年度目", "2")),
            labels=("報告年度",),
            name="報告年度",
            when=_with_baseline,
            condition="伸び率も計算",
            show=lambda v: f"{v}年度目",
        ),
        Step(
            "group_2022",
            "補助事業グループの構成員に、IT導入補助金2022の通常枠（A・B類型）またはデジタル化基盤導入枠"
            "（複数社連携IT導入類型）で交付決定を受けた事業者が含まれますか？",
            _yes_no,
            "含まれる場合、公表の基準は年率平均6%、含まれない場合は5%です。",
            choices=YES_NO,
            labels=("2022",),
            name="IT導入補助金2022の交付決定を受けた構成員",
            brief="2022の構成員",
            when=_with_baseline,
            condition="伸び率も計算",
            unsure="代表事業者か、グループの構成員にご確認ください。わからない場合は、コールセンターでも確認できます。",
            show=_show_yes_no,
        ),
    ),
    finish=_finish_productivity,
)


# ---------------------------------------------------------------- withdrawal

_EVENT_WORDS: dict[str, tuple[str, ...]] = {
    "cancel-part": (
        "cancel-part", "一部", "一部解約", "一部だけ", "片方", "1つだけ", "一つだけ", "ひとつだけ", "うち1つ", "うち一つ", "1つを解約", "一つを解約", "ひとつを解約", "うちの1つ",
        "うちの一つ", "うちひとつ", "いくつか", "どれか", "1本だけ", "一本だけ", "1個だけ",
    ),
    "cancel-all": (
        "cancel-all", "全部", "すべて", "全て", "全部解約", "解約", "利用停止", "使用しなくなる", "使用しなくなった",
        "使わなくなる", "使わなくなった", "使用をやめ", "利用をやめ", "使うのをやめ", "契約をやめ", "解除", "キャンセルし", "契約キャンセル",
    ),
    "closure": (
        "closure", "廃業", "倒産", "事業廃止", "事業譲渡", "吸収合併", "合併", "閉業", "閉店", "店じまい",
        "店をたたむ", "会社をたたむ", "たたむ", "事業をやめ", "商売をやめ", "会社をやめ", "解散", "清算", "破産",
    ),
}  # fmt: skip
_PROGRAM_UNSURE = (
    "どちらの補助金かは、申請マイページにログインしたとき左上に表示される制度名で確認できます"
    "（IT導入補助金2020 なら「IT導入補助金2020 令和元年度補正…」のように表示されます）。"
    "「わからない」のままでも、2つの制度の結果を並べてお見せします。"
)
# 「わからない」: both programs' results, and one line on how to tell them apart.
_PROGRAM_ASSUMED = (
    "2つの制度の結果を並べてお見せします（どちらかは、申請マイページ左上の制度名でわかります）。"
)


def _event(text: str, values: Values) -> str:
    low = text.lower()
    # The most specific word wins: 「一部解約」「1つだけ解約」 are a partial cancellation, not any 解約.
    longest: dict[str, int] = {}
    for key, words in _EVENT_WORDS.items():
        found = [len(w) for w in words if w in low]
        if found:
            longest[key] = max(found)
    if "closure" in longest:
        return "closure"  # the business ends: every tool with it, and a rule of its own
    best = sorted(longest.items(), key=lambda item: -item[1])
    if best and (len(best) == 1 or best[0][1] > best[1][1]):
        return best[0][0]
    raise Invalid(
        f"「{text}」からは、何が起きたかが読み取れませんでした。「一部解約」「全部解約」「廃業など」からお選びください。"
    )


_END = "「やめる」で終了できます。"
_ONLY_TWO = "この確認は IT導入補助金2020 と 2023 複数社連携だけを扱っています。" + _END


def _program(text: str, values: Values) -> str:
    if text in (IT2020, IT2023, BOTH):
        return text
    if text in (UNKNOWN, "unsure"):  # "unsure": the button's value before the shared buttons
        raise Assume(BOTH, _PROGRAM_ASSUMED)
    if text == OTHER:
        raise Invalid(_kb().program_replies.other_guide + _END)  # the guide says what is covered
    reader = context_of(values).read_program
    read = reader(text) if reader is not None else None
    if read in (IT2020, IT2023, BOTH):
        return read
    if read == "unknown":
        raise Assume(BOTH, _PROGRAM_ASSUMED)
    if read is None and re.search(r"(?<!\d)20(?:19|21|22|24|25|26)(?!\d)", text):
        other = next((o for o in _kb().other_programs if o.id == "it-other-year"), None)
        read = f"other:{other.guide}" if other is not None else None
    if read is not None and read.startswith("other:"):
        raise Invalid(read.removeprefix("other:") + _ONLY_TWO)
    raise Invalid(
        f"「{text}」からは補助金が読み取れませんでした。「2020」「2023複数社連携」（わからない場合は「わからない」で両方）からお選びください。"
    )


def _dates_for_2020(values: Values) -> bool:
    return values.get("program") in (IT2020, BOTH)


_DATE_TAIL = re.compile(
    r"(?:に|で|の|頃|ごろ|くらい|ぐらい)?(?:解約|納品|完了|廃業|利用停止|停止|終了|契約終了|導入)?"
    r"(?:しました|した|します|する|予定です|予定|されました|された|になりました|になります|の予定|です|でした|頃|ごろ)*$"
)


def _date(text: str, values: Values) -> date:
    today = context_of(values).today
    attempts = [text, _DATE_TAIL.sub("", text.replace(" ", "")).removeprefix("たしか").removeprefix("確か")]
    error: ParseError | None = None
    for attempt in attempts:
        if not attempt:
            continue
        try:
            return parse_date(attempt, today=today)
        except ParseError as exc:
            error = error or exc
            if attempt is not text:
                error = exc
    raise Invalid(error.message if error else "日付を入力してください（例：2021/4/1、令和3年4月1日）。")


_A_DATE = re.compile(
    r"(?:令和|平成|[RH])(?:元|\d{1,2})[年./-]\d{1,2}[月./-]\d{1,2}日?|\d{4}[年./-]\d{1,2}[月./-]\d{1,2}日?"
)


def _dates(text: str, values: Values) -> list[str]:
    parts = [p for p in re.split(r"[、,，\s]+|と|及び|および", text) if p]
    if not parts:
        raise Invalid("納品日を入力してください（例：2021/4/1、複数あれば 2021/4/1、2021/6/1）。")
    out = []
    for part in parts:
        try:
            out.append(_date(part, values).isoformat())
        except Invalid as exc:
            # 「納品は2021年4月1日と2021年6月1日です」: the dates written in full inside the sentence.
            found = _A_DATE.findall(text.replace(" ", ""))
            if found and len(found) >= len([p for p in parts if re.search(r"\d", p)]):
                return list(dict.fromkeys(_date(day, values).isoformat() for day in found))
            if len(parts) > 1:
                raise Invalid(f"{exc.message}（複数の納品日は「、」で区切ってください）") from None
            raise
    return list(dict.fromkeys(out))


def _one_date(text: str, values: Values) -> str:
    return _date(text, values).isoformat()


def _check_cancelled(value: Any, values: Values) -> None:
    delivered = values.get("delivered")
    if delivered and value < min(delivered):
        raise Invalid(
            f"解約日（{_show_dates(value)}）が納品日（{_show_dates(min(delivered))}）より前になっています。"
            "解約・利用停止の（予定）日は、納品日以降の日付を入力してください。"
        )


def _check_completed(value: Any, values: Values) -> None:
    delivered = values.get("delivered")
    if delivered and value < max(delivered):
        raise Invalid(
            f"補助事業の完了日（{_show_dates(value)}）が最も遅い納品日（{_show_dates(max(delivered))}）より前になっています。"
            "完了日は、すべてのITツールの納品日以降の日付です。"
        )


def _show_dates(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    return "、".join(format_date(date.fromisoformat(v)) for v in items)


def _show_program(value: Any) -> str:
    return "両方（2020 と 2023 複数社連携）" if value == BOTH else PROGRAM_SHORT.get(value, str(value))


def _unsaid(said: list[str], lines: list[str]) -> list[str]:
    """The lines without sentences already said (in `said` or an earlier line): nothing twice."""

    def key(sentence: str) -> str:
        return re.sub(r"（[^）]*）", "", sentence).strip(" 。")

    seen = {key(s) for text in said for s in text.split("。") if key(s)}
    summary = "".join(said)
    if "辞退届の提出が必要です" in summary:  # said in the verdict; a line giving the reason (〜ため) stays
        seen |= {
            key(s)
            for line in lines
            for s in line.split("。")
            if key(s).endswith("辞退届の提出が必要です") and "ため" not in s
        }
    if "事務局が判断します" in summary:
        seen.add("返還の有無と額は、事務局が判断します")
    out = []
    for line in lines:
        kept = []
        for sentence in line.split("。"):
            k = key(sentence)
            if not k:
                continue
            if k in seen:
                continue
            seen.add(k)
            kept.append(sentence.strip())
        if kept:
            out.append("。".join(kept) + ("。" if line.rstrip().endswith("。") else ""))
    return out


def _deadline(result: WithdrawalResult) -> str | None:
    """The date that decides the 2020 verdict, beside the date given (the 2023 手引き sets none)."""
    one_year, end = result.one_year_date, result.period_end
    cancelled = result.inputs.cancelled
    if one_year is None or end is None or cancelled is None:
        return None
    f, day = format_date, format_date(cancelled)
    return {
        "it2020-within-one-year": f"1年未満の期限：{f(one_year)}（{day}は納品から1年未満です）",
        "it2020-within-window": f"辞退届が必要な期間の終わり：{f(end)}（{day}はこの期間内です）",
        "it2020-after-window": f"辞退届が必要な期間の終わり：{f(end)}（{day}はその後です）",
    }.get(
        result.case,
        f"参考：1年未満の期限 {f(one_year)}、辞退届が必要な期間の終わり {f(end)}"
        "（当てはまるかどうかは事務局の判断です）",
    )


# Notes of a result that the person must see at once (a date that does not fit, a boundary day).
_WARNINGS = ("解約日が",)
_PARTIAL = "一部の解約でも、補助事業の辞退とみなされます。"
_IT2023_FACTS = (
    "返還が必要となる場合は、補助金受領の日から返還金納付の日までの日数に応じて加算金を納付します。",
)


def _withdrawal_facts(result: WithdrawalResult, brief: bool = False) -> list[str]:
    """The deadline, the warnings about the dates given and, where withdrawal is required, that a
    partial cancellation counts; unless `brief` (beside the other program, where the rest does
    not fit a phone screen and is in the details), what else the person must not miss."""
    deadline = _deadline(result)
    facts = [deadline] if deadline is not None else []
    warnings = [line for line in result.explanation if line.startswith(_WARNINGS)]
    if brief:  # the first sentence of each; why, in the details
        return [*facts, *(w.split("。", 1)[0] + "。" for w in warnings)]
    facts += warnings
    if result.inputs.event == "cancel-part" and result.withdrawal_required is not False:
        facts.append(_PARTIAL)
    if result.inputs.program == IT2023:
        facts += _IT2023_FACTS
    return facts


def _withdrawal_details(result: WithdrawalResult, said: list[str], with_title: bool) -> str:
    title = f"【{PROGRAM_SHORT[result.inputs.program]}】\n" if with_title else ""
    return title + "\n".join(_unsaid(said, list(result.explanation)))


def _related(program: str) -> tuple[ReplyChoice, ...]:
    return {
        IT2020: (
            ReplyChoice("1年未満で解約する場合", "faq:it2020-cancel-within-year"),
            ReplyChoice("1年以上経過後に解約する場合", "faq:it2020-cancel-after-year"),
            ReplyChoice("導入時期の基準", "faq:it2020-delivery-base-date"),
        ),
        IT2023: (
            ReplyChoice("辞退届が必要な場合", "faq:it2023-withdrawal-triggers"),
            ReplyChoice("辞退届の提出方法", "faq:it2023-withdrawal-how"),
            ReplyChoice("加算金とは", "faq:it2023-kasankin"),
        ),
    }[program]


def _finish_withdrawal(values: Values) -> list[Reply]:
    chosen = values["program"]
    programs: tuple[Program, ...] = (
        (IT2020, IT2023) if chosen == BOTH else (IT2020 if chosen == IT2020 else IT2023,)
    )
    results = []
    for program in programs:
        dated = program == IT2020
        inputs = WithdrawalInputs(
            program=program,
            event=values["event"],
            delivered=tuple(date.fromisoformat(d) for d in values.get("delivered", ())) if dated else (),
            cancelled=date.fromisoformat(values["cancelled"]) if dated else None,
            completed=date.fromisoformat(values["completed"]) if dated else None,
        )
        try:
            results.append(check_withdrawal(inputs))
        except DomainError as exc:
            raise _reask(exc, "event") from None
    kb = _kb()
    contacts = _contact_facts([r.contact for r in results], values)
    blocks = [contact_block(kb.contacts[r.contact]) for r in results if r.contact in kb.contacts]
    sources = _sources_text(tuple(ref for result in results for ref in result.sources))
    if len(results) == 1:
        result = results[0]
        headline = result.summary
        facts = [*_withdrawal_facts(result), *contacts]
        text = "\n\n".join([headline, "\n".join(facts)])
        details = [_withdrawal_details(result, [headline, *facts], False)]
        data = result.as_dict()
        related = _related(result.inputs.program)
    else:
        required = all(r.withdrawal_required for r in results)
        headline = (
            "どちらの制度でも、辞退届の提出が必要です。返還の扱いは制度によって異なります。"
            if required
            else "制度によって結果が異なります。"
        )
        # A partial cancellation counts as withdrawal: said once, beside the programs it applies to.
        partial = (
            [r.withdrawal_required is not False for r in results] if values["event"] == "cancel-part" else []
        )
        everywhere = bool(partial) and all(partial)
        parts = [_PARTIAL] if everywhere else []
        said = [headline, *parts]
        for result, counts in zip(results, partial or [False] * len(results), strict=True):
            facts = [
                result.summary,
                *_withdrawal_facts(result, brief=True),
                *([_PARTIAL] if counts and not everywhere else []),
                *_contact_facts([result.contact], values),
            ]
            said += facts
            parts.append(f"【{PROGRAM_SHORT[result.inputs.program]}】\n" + "\n".join(facts))
        tell = "どちらの制度かは、申請マイページ左上の制度名で確認できます。"
        text = "\n\n".join([headline, *parts, tell])
        details = [_withdrawal_details(r, said, True) for r in results]
        data = {
            "program": BOTH,
            "event": values["event"],
            "results": {r.inputs.program: r.as_dict() for r in results},
        }
        related = _related(IT2020)[:1] + _related(IT2023)[:1]
    return [
        Reply(
            text,
            related,
            result=data,
            headline=headline,
            details="\n\n".join([*details, *blocks, sources]),
        )
    ]


def _event_help(values: Values) -> str:
    program = values.get("program")
    if program == IT2020:
        return (
            "ITツールを解約した・使用しなくなった（予定を含む）、複数のツールのうち一部だけ解約した、"
            "廃業などで事業をやめた、のどれかをお選びください。一部の解約も補助事業の辞退とみなされます（2020 FAQ 質問8）。"
        )
    if program == IT2023:
        return (
            "ITツールを解約・利用停止した（予定を含む）、複数のツールのうち一部だけ解約した、"
            "廃業・倒産・事業譲渡などで補助事業を取りやめた、のどれかをお選びください。"
            "一部の解約も補助事業の辞退とみなされます（2023 手引き「後年手続きについて」）。"
        )
    return (
        "ITツールを解約した・使用しなくなった（予定を含む）、複数のツールのうち一部だけ解約した、"
        "廃業などで事業をやめた、のどれかをお選びください。"
    )


WITHDRAWAL = Flow(
    id="withdrawal",
    title="辞退・返還の確認",
    intro="ITツールの解約や廃業などで辞退届が必要か、補助金の返還がどうなるかを、公式資料に沿って確認します。",
    programs=(IT2020, IT2023),
    steps=(
        Step(
            "program",
            "どちらの補助金ですか？",
            _program,
            "IT導入補助金2020（令和元年度補正・令和2年度補正）と、IT導入補助金2023 複数社連携では、資料も窓口も異なります。"
            + _PROGRAM_UNSURE,
            choices=program_choices(),
            labels=("補助金", "制度"),
            name="補助金",
            unsure=_PROGRAM_UNSURE,
            sticky=True,
            show=_show_program,
        ),
        Step(
            "event",
            "どのようなことが起きましたか（予定を含む）？",
            _event,
            _event_help,
            choices=tuple(ReplyChoice(EVENT_LABELS[e], e) for e in ("cancel-part", "cancel-all", "closure")),
            labels=("事由",),
            name="起きたこと",
            read_from=("program",),
            show=lambda v: EVENT_LABELS.get(v, v),
        ),
        Step(
            "delivered",
            "ITツールの納品日を入力してください（実績報告の納品日。複数あれば「2021/4/1、2021/6/1」のように）。",
            _dates,
            "実績報告で事務局に提出した納品日です。複数のITツールの納品日が異なる場合は、遅い方が基準になります（2020 FAQ 質問9）。",
            labels=("納品日",),
            when=_dates_for_2020,
            condition="2020",
            show=_show_dates,
        ),
        Step(
            "cancelled",
            "解約・利用停止（廃業などの場合は事業をやめる）日を入力してください（予定日でも構いません）。",
            _one_date,
            "すでに解約した日、またはこれから解約する予定の日です。「今日」「先月末」のようにも入力できます。",
            unsure="解約日がまだ決まっていない場合は、予定しているおおよその日を入力してください。"
            "1年未満の期限や、辞退届が必要な期間の終わりより前か後かで結果が変わるため、日付が決まったら確かめ直してください。",
            labels=("解約日", "予定日", "利用停止日", "廃業日"),
            when=_dates_for_2020,
            condition="2020",
            name="解約日",
            read_from=("event",),
            check=_check_cancelled,
            show=_show_dates,
        ),
        Step(
            "completed",
            "補助事業の完了日を入力してください。",
            _one_date,
            "2020では、補助事業の完了日の属する年度（4月〜翌3月）の終了後5年間が辞退届の対象期間です（2020 FAQ 質問7）。",
            labels=("完了日",),
            when=_dates_for_2020,
            condition="2020",
            check=_check_completed,
            unsure="補助事業の完了日がわからない場合は、後年窓口にお問い合わせください。完了日は、辞退届が必要な期間（完了日の属する年度の終了後5年間）を決めるために使います。",
            show=_show_dates,
        ),
    ),
    finish=_finish_withdrawal,
)

FLOWS: dict[str, Flow] = {flow.id: flow for flow in (PRODUCTIVITY, WITHDRAWAL)}

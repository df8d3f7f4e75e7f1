"""`kounen calc productivity` and `kounen check withdrawal`, mounted the way bot/cli.py will mount them."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner, Result

from bot.cli_rules import calc_app, check_app

app = typer.Typer()
app.add_typer(calc_app, name="calc")
app.add_typer(check_app, name="check")

PRODUCTIVITY = [
    "calc",
    "productivity",
    "--operating-profit",
    "3000万",
    "--labor-cost",
    "2,000万円",
    "--depreciation",
    "500万",
    "--employees",
    "10人",
    "--hours",
    "1,800時間",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kounen: ")
    return lines[0]


# ---------------------------------------------------------------- calc productivity


def test_productivity_json_keys() -> None:
    result = run(*PRODUCTIVITY, "--baseline", "2,800", "--year", "2", "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["value_added"] == 55_000_000
    assert data["labor_productivity"] == 3055.56
    assert data["growth_rate"] == 0.044639
    assert data["threshold"] == 0.05
    assert data["meets_threshold"] is False
    assert data["explanation"]


def test_productivity_text_has_formula_and_sources() -> None:
    result = run(*PRODUCTIVITY, "--baseline", "2800", "--year", "1")
    assert result.exit_code == 0, result.stderr
    assert "付加価値額 = 営業利益 3,000万円" in result.stdout
    assert "年率平均成長率（CAGR、1年度目）" in result.stdout
    assert "出典：IT導入補助金2023" in result.stdout


def test_productivity_without_baseline_has_null_growth() -> None:
    data = json.loads(run(*PRODUCTIVITY, "--json").stdout)
    assert data["growth_rate"] is None and data["meets_threshold"] is None
    assert data["threshold"] == 0.05


def test_group_includes_2022_uses_six_percent() -> None:
    data = json.loads(
        run(*PRODUCTIVITY, "--baseline", "2800", "--year", "1", "--group-includes-2022", "--json").stdout
    )
    assert data["threshold"] == 0.06


def test_negative_amounts_as_option_values() -> None:
    for value in ("-200000", "▲500万", "△3百万円"):
        result = run(*[value if a == "3000万" else a for a in PRODUCTIVITY], "--json")
        assert result.exit_code == 0, (value, result.stderr)
        assert json.loads(result.stdout)["inputs"]["operating_profit"] < 0


def test_negative_value_added_explains_missing_rate() -> None:
    args = [a if a != "3000万" else "▲1億" for a in PRODUCTIVITY]
    data = json.loads(run(*args, "--baseline", "2800", "--year", "2", "--json").stdout)
    assert data["growth_rate"] is None
    assert "マイナス" in data["growth_unavailable_reason"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["calc", "productivity"], "次のオプションを指定してください：--operating-profit 3000万"),
        (
            [*PRODUCTIVITY[:3], "たくさん", *PRODUCTIVITY[4:]],
            "--operating-profit: 「たくさん」を金額として読み取れませんでした",
        ),
        ([*PRODUCTIVITY[:9], "0人", *PRODUCTIVITY[10:]], "--employees: 従業員数が0人"),
        ([*PRODUCTIVITY[:11], "9000"], "--hours: 9,000時間と読み取りましたが"),
        ([*PRODUCTIVITY, "--baseline", "2800"], "--year"),
        ([*PRODUCTIVITY, "--year", "1"], "--baseline"),
        ([*PRODUCTIVITY, "--baseline", "2800", "--year", "3"], "--year: 「3」を報告年度として"),
        ([*PRODUCTIVITY, "--foo"], "No such option: --foo"),
        (["calc", "productivity", "--employees"], "requires an argument"),
        (["calc", "nope"], "No such command"),
    ],
)
def test_productivity_bad_arguments_are_one_line(args: list[str], fragment: str) -> None:
    assert fragment in one_line_error(run(*args))


# ---------------------------------------------------------------- check withdrawal

WITHDRAWAL = [
    "check",
    "withdrawal",
    "--program",
    "it2020",
    "--event",
    "cancel-part",
    "--delivered",
    "2021/4/1",
    "--delivered",
    "R3.3.1",
    "--cancelled",
    "2022-04-01",
    "--completed",
    "令和3年4月20日",
]


def test_withdrawal_json_keys() -> None:
    result = run(*WITHDRAWAL, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["withdrawal_required"] is True
    assert data["refund"] == "full"
    assert data["base_date"] == "2021-04-01"
    assert data["one_year_date"] == "2022-04-01"
    assert data["period_end"] == "2027-03-31"
    assert data["contact"] == "it2020-kounen"
    assert data["contact_detail"]["hours_text"]
    assert data["explanation"]


def test_withdrawal_text_shows_contact_and_hours() -> None:
    result = run(*WITHDRAWAL)
    assert result.exit_code == 0, result.stderr
    assert "【判定】辞退届の提出が必要です" in result.stdout
    assert "後年窓口" in result.stdout
    assert "受付時間 9:30〜17:30" in result.stdout
    assert "現在：受付中" in result.stdout or "現在：受付時間外" in result.stdout


def test_withdrawal_2023_has_null_dates() -> None:
    args = [
        "check",
        "withdrawal",
        "--program",
        "it2023-multi",
        "--event",
        "closure",
        "--delivered",
        "2023-06-01",
    ]
    data = json.loads(run(*args, "--cancelled", "2024/1/1", "--completed", "2023/8/1", "--json").stdout)
    assert (data["withdrawal_required"], data["refund"]) == (True, "decided_by_office")
    assert data["base_date"] is None and data["one_year_date"] is None and data["period_end"] is None
    assert data["contact"] == "it2023-callcenter"


def test_withdrawal_2023_needs_no_dates() -> None:
    # The 2023 手引き sets no date rule, so its check asks for none; 2020 still needs all three.
    data = json.loads(
        run("check", "withdrawal", "--program", "it2023-multi", "--event", "cancel-part", "--json").stdout
    )
    assert (data["withdrawal_required"], data["refund"]) == (True, "decided_by_office")
    assert data["inputs"]["cancelled"] is None
    line = one_line_error(run("check", "withdrawal", "--program", "it2020", "--event", "cancel-all"))
    assert "--delivered" in line and "--cancelled" in line and "--completed" in line


def test_withdrawal_2020_closure_is_null() -> None:
    args = [a if a != "cancel-part" else "closure" for a in WITHDRAWAL]
    data = json.loads(run(*args, "--json").stdout)
    assert data["withdrawal_required"] is None
    assert data["refund"] == "unknown"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["check", "withdrawal"], "--program it2020"),
        ([*WITHDRAWAL[:3], "it2024", *WITHDRAWAL[4:]], "--program は it2020 | it2023-multi"),
        ([*WITHDRAWAL[:5], "sell", *WITHDRAWAL[6:]], "--event は cancel-part | cancel-all | closure"),
        ([*WITHDRAWAL[:7], "2021/2/30", *WITHDRAWAL[8:]], "--delivered: 2021年2月30日は存在しない日付です"),
        ([*WITHDRAWAL[:11], "2020/1/1", *WITHDRAWAL[12:]], "--cancelled: 解約日（2020年1月1日）が納品日"),
        ([*WITHDRAWAL[:13], "2021/1/1"], "--completed"),
        ([*WITHDRAWAL[:11], "21/4/1", *WITHDRAWAL[12:]], "年が2桁"),
    ],
)
def test_withdrawal_bad_arguments_are_one_line(args: list[str], fragment: str) -> None:
    assert fragment in one_line_error(run(*args))


def test_help_works() -> None:
    result = run("check", "withdrawal", "--help")
    assert result.exit_code == 0
    assert "--delivered" in result.stdout

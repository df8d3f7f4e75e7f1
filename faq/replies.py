"""The text a user is shown for each outcome, in one place for every channel."""

from __future__ import annotations

from faq.loader import KnowledgeBase
from faq.policy import Outcome
from faq.render import answer_text, contacts_text, program_answer_text

FLOW_NAMES = {"productivity": "労働生産性・伸び率の計算", "withdrawal": "辞退・返還の確認"}
NO_MATCH = (
    "申し訳ありません。ご質問に当てはまる回答が、IT導入補助金2020の後年手続き・"
    "IT導入補助金2023（複数社連携）の効果報告の資料に見つかりませんでした。"
)
EMPTY = "ご質問の内容を文章で入力してください（例：申請マイページのIDがわからない）。"


def smalltalk_reply(kb: KnowledgeBase, intent_id: str) -> str:
    if kb.intents:
        for intent in kb.intents.smalltalk:
            if intent.id == intent_id:
                return intent.reply
    return ""


BOTH_HEAD = "制度によって回答が異なります。それぞれの制度の回答をお示しします。"
DIVIDER = "\n\n―――――\n\n"


def _other_programs(kb: KnowledgeBase, program: str) -> list[str]:
    return [p.short for pid, p in kb.programs.items() if pid not in (program, "common")]


def outcome_text(kb: KnowledgeBase, outcome: Outcome) -> str:
    if outcome.status == "answered" and len(outcome.answers) > 1:
        return BOTH_HEAD + "\n\n" + DIVIDER.join(program_answer_text(kb, e) for e in outcome.answers)
    if outcome.status == "answered" and outcome.entry is not None:
        text = answer_text(kb, outcome.entry)
        program = kb.programs.get(outcome.entry.program)
        if outcome.other_silent and program is not None:
            others = "・".join(_other_programs(kb, outcome.entry.program))
            text += f"\n\n※この回答は{program.short}の資料によるものです。{others}の資料には、この件の記載はありません。"
        if outcome.entry.dialog:
            text += f"\n\n▶ 数字を入力して「{FLOW_NAMES[outcome.entry.dialog]}」をご案内することもできます。"
        return text
    if outcome.status == "smalltalk" and outcome.smalltalk:
        return smalltalk_reply(kb, outcome.smalltalk)
    if outcome.status == "dialog" and outcome.dialog:
        return f"「{FLOW_NAMES[outcome.dialog]}」をご案内します。順にお伺いする数字や日付を入力してください。"
    if outcome.status == "clarify":
        if outcome.choices and outcome.choices[0].program and outcome.reason == "answer differs by program":
            head = "制度によって回答が異なります。どちらの補助金についてのご質問ですか？"
        else:
            head = "次のどれについてのご質問ですか？番号でお選びください。"
        lines = [head] + [f"{i}. {c.label}" for i, c in enumerate(outcome.choices, start=1)]
        return "\n".join(lines)
    if outcome.reason == "empty":
        return EMPTY
    contacts = contacts_text(kb, outcome.program)
    if outcome.others:
        guides = "\n".join(o.guide for o in outcome.others)
        return f"{NO_MATCH}\n{guides}\n\n{contacts}" if contacts else f"{NO_MATCH}\n{guides}"
    program = kb.programs.get(outcome.program or "")
    if outcome.reason == "not in this program's document" and program is not None:
        head = (
            f"{program.name}の資料には、このご質問への記載がありません。"
            "ほかの制度の決まりは当てはまりませんので、次の窓口にお問い合わせください。"
        )
        return f"{head}\n\n{contacts}"
    return (
        f"{NO_MATCH}\nお手数ですが、次の窓口にお問い合わせください。\n\n{contacts}" if contacts else NO_MATCH
    )

"""The analysis shared by the bot's and the console's threads is safe under concurrent use.

SudachiPy refuses concurrent use of one tokenizer (it raises `SudachiError`), and the bot
runs several service threads over one `Policy`.  Many simultaneous `Policy.decide` calls
must all succeed and give the same outcome as the same question asked alone.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from faq import KnowledgeBase, Policy

QUESTIONS = [
    "申請マイページのIDがわからない",
    "ツールを半年で解約したらどうなる？",
    "効果報告の提出期限はいつですか",
    "労働生産性の計算方法を教えてください",
    "後年窓口の電話番号",
    "ゲームのログインボーナスがほしい",
    "かいやくしたい",
    "gBizIDのパスワードを忘れた",
]


def test_many_concurrent_decisions_all_succeed_and_agree(kb: KnowledgeBase) -> None:
    policy = Policy(kb)
    alone = {q: (o.status, o.entry.id if o.entry else None) for q in QUESTIONS for o in [policy.decide(q)]}
    barrier = threading.Barrier(8)

    def ask(i: int) -> tuple[str, tuple[str, str | None]]:
        if i < 8:
            barrier.wait(timeout=30)  # start the first eight at the same moment
        q = QUESTIONS[i % len(QUESTIONS)]
        o = policy.decide(q)
        return q, (o.status, o.entry.id if o.entry else None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(2000)))
    assert len(results) == 2000
    for question, got in results:
        assert got == alone[question], question

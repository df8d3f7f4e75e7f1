"""The console under several workers: each test builds two console apps on one store, as two
`kounen serve` workers on one database would be, and checks they behave as one.

- a session cookie made by one worker is good at the other, without KOUNEN_CONSOLE_SECRET_KEY;
- failed logins count across workers;
- guessing is slowed by growing delays, yet a colleague behind the same proxy address is never
  locked out: another account is not affected, and the attacked account's owner gets in from a
  browser that has logged in before;
- X-Forwarded-For is read only from a trusted proxy, so rotating it does not reset the count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from test_console import FakeClock, TestClient, login, mounted, settings

from bot.console import ConsoleSettingsError, create_console_app
from bot.console.settings import ConsoleSettings
from bot.console.shared import DEVICE_COOKIE
from bot.store import Store
from faq import KnowledgeBase, Policy

PROXY = ("192.0.2.10", 443)  # one address in front of a whole office


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'console.db'}"
    return str(request.getfixturevalue("pg_url"))


def two_workers(
    kb: KnowledgeBase, policy: Policy, url: str, clock: FakeClock, config: ConsoleSettings
) -> tuple[list[Store], list[Starlette]]:
    stores = [Store.open(url), Store.open(url)]
    apps = [
        mounted(create_console_app(kb=kb, policy=policy, store=store, settings=config, clock=clock))
        for store in stores
    ]
    return stores, apps


def test_a_session_from_one_worker_is_good_at_the_other_without_a_secret_key(
    kb: KnowledgeBase, policy: Policy, db_url: str
) -> None:
    stores, (first, second) = two_workers(kb, policy, db_url, FakeClock(), settings(secret_key=None))
    try:
        browser = TestClient(first, follow_redirects=False)
        assert login(browser).status_code == 303
        other = TestClient(second, follow_redirects=False, cookies=browser.cookies)
        assert other.get("/console/").status_code == 200  # not bounced to the login page
    finally:
        for store in stores:
            store.close()


def test_guessing_is_slowed_by_growing_delays_counted_across_workers(
    kb: KnowledgeBase, policy: Policy, db_url: str
) -> None:
    clock = FakeClock()
    stores, apps = two_workers(
        kb, policy, db_url, clock, settings(login_attempts=3, login_max_delay_seconds=60)
    )
    try:
        guessers = [TestClient(app, follow_redirects=False, client=("203.0.113.7", 5000)) for app in apps]
        for attempt in range(3):  # free tries, alternating between the workers
            assert login(guessers[attempt % 2], password=f"guess{attempt}").status_code == 401
        waits = []
        for attempt in range(5):
            blocked = login(guessers[attempt % 2], password="still guessing")
            assert blocked.status_code == 429  # too soon: not even checked
            waits.append(int(blocked.headers["retry-after"]))
            clock.now += waits[-1]
            assert login(guessers[(attempt + 1) % 2], password=f"guess{attempt}").status_code == 401
        assert waits == [1, 2, 4, 8, 16]  # each failure doubles the wait
        for _ in range(4):
            clock.now += 60
            assert login(guessers[0], password="guess").status_code == 401
        assert int(login(guessers[1]).headers["retry-after"]) == 60  # capped: slowed, never locked
        clock.now += 60
        assert login(guessers[1]).status_code == 303  # the right password after the wait
    finally:
        for store in stores:
            store.close()


def test_failures_from_a_shared_proxy_address_lock_no_colleague_out(
    kb: KnowledgeBase, policy: Policy, db_url: str
) -> None:
    clock = FakeClock()
    config = settings(users={"yamada": settings().users["yamada"], "sato": settings().users["yamada"]})
    stores, (first, second) = two_workers(kb, policy, db_url, clock, config)
    try:
        # Sato logged in from this office last week: the browser keeps a device cookie.
        sato = TestClient(first, follow_redirects=False, client=PROXY)
        assert login(sato, user="sato").status_code == 303
        assert DEVICE_COOKIE in sato.cookies
        sato.cookies.delete("kounen_console")  # the session itself has ended
        # Someone in the same office (same address) guesses Sato's password, over and over.
        attacker = TestClient(second, follow_redirects=False, client=PROXY)
        for _ in range(20):
            login(attacker, user="sato", password="guess")
            clock.now += 1
        assert login(attacker, user="sato").status_code == 429  # guessing is slowed
        # Yamada, same address, own account: not affected.
        yamada = TestClient(second, follow_redirects=False, client=PROXY)
        assert login(yamada).status_code == 303
        # Sato, same address, from the browser that logged in before: straight in.
        assert (
            login(
                TestClient(second, follow_redirects=False, client=PROXY, cookies=sato.cookies), user="sato"
            ).status_code
            == 303
        )
    finally:
        for store in stores:
            store.close()


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    kb: KnowledgeBase, policy: Policy, db_url: str
) -> None:
    clock = FakeClock()
    for trusted in ("", "127.0.0.1"):
        stores, (app, _) = two_workers(
            kb, policy, db_url, clock, settings(login_attempts=3, trusted_proxies=trusted)
        )
        try:
            for attempt in range(6):
                client = TestClient(app, follow_redirects=False, client=("127.0.0.1", 5000))
                forged = {"x-forwarded-for": f"198.51.100.{attempt}, 203.0.113.9"}
                response = login_with_headers(client, forged)
                # Rotating the first hops changes nothing: without a trusted proxy the peer
                # (127.0.0.1) is the client, behind one the last hop it added (203.0.113.9).
                assert response.status_code == (401 if attempt < 3 else 429), (trusted, attempt)
            clock.now += 1000
        finally:
            for store in stores:
                store.close()
    with pytest.raises(ConsoleSettingsError):
        from bot.console import load_console_settings

        load_console_settings(trusted_proxies="not-an-address")


def login_with_headers(client: TestClient, headers: dict[str, str]) -> object:
    client.headers.update(headers)
    return login(client, password="guess")

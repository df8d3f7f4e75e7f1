"""Side-by-side webhook throughput: `kounen serve --workers 2` on PostgreSQL against the minimal
python-telegram-bot 22 echo bot a developer would write, same fake Bot API, same simulated users.

    make bench-bot    # runs tests/bench_bot.py, then this: .venv/bin/python tests/bench_throughput.py
                      # [--updates 1000] [--users 200] [--in-flight 40]

Not a test (pytest does not collect it); the machine is shared, so only figures measured side by
side in one run are compared, as ratios.  Each simulated user sends a FAQ question, waits for the
bot's reply to reach the fake Bot API (tests/fake_telegram.py, in this process), then sends the
next; `--in-flight` users are between sending and being answered at any time, and a POST that
does not get a 200 is delivered again, as Telegram does.  Measured per bot:

  updates/s      updates answered / wall time;
  p50, p99       from the POST to the reply reaching the Bot API (the user's wait);
  CPU ms/update  user + system CPU of the bot's worker processes (/proc/<pid>/stat) / updates;
  DB trips/upd.  round trips to PostgreSQL (a TCP proxy counts each time the client speaks
                 after the server answered) / updates — the echo bot has no database;
  API calls/upd. Bot API calls the fake received / updates.

Both run twice: with no send limiter, and under a send budget of 30 messages/s
(`KOUNEN_TELEGRAM_SEND_RATE`: one budget in PostgreSQL for both workers; AIORateLimiter(overall_max_rate=30)
in the one-process echo bot).  Under the budget a second, open-loop load of 20 updates/s (below
the budget) measures how long users wait when the budget is not the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from fake_telegram import FakeTelegram
from tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KOUNEN = BIN / "kounen"
SECRET = "bench-secret_0123456789"
REPLY_TIMEOUT = 20.0  # seconds after which an update's reply counts as lost
PG = os.environ.get("KOUNEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUESTIONS = (
    "申請マイページのIDがわからない",
    "効果報告はいつまでに出せばいいですか",
    "ツールを半年で解約したらどうなる？",
)

ECHO_BOT = textwrap.dedent(
    '''
    """The minimal PTB 22 webhook echo bot, after PTB's own Starlette webhook example
    (examples/customwebhookbot/starlettebot.py): the update is queued and answered 200 at once,
    and updates are handled concurrently."""
    import asyncio, os
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from telegram import Update
    from telegram.ext import AIORateLimiter, Application, MessageHandler, filters

    async def echo(update: Update, context) -> None:
        await update.message.reply_text(update.message.text)

    async def main() -> None:
        rate = float(os.environ["ECHO_RATE"])
        builder = (
            Application.builder().token(os.environ["ECHO_TOKEN"]).base_url(os.environ["ECHO_BASE"])
            .updater(None).concurrent_updates(True)  # as kounen: updates side by side
            .connection_pool_size(32)  # as kounen (PTB's default of 1 times out under this load)
        )
        if rate:
            builder = builder.rate_limiter(AIORateLimiter(overall_max_rate=rate, max_retries=3))
        application = builder.build()
        application.add_handler(MessageHandler(filters.TEXT, echo))

        async def telegram(request: Request) -> Response:
            if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != os.environ["ECHO_SECRET"]:
                return Response(status_code=403)
            await application.update_queue.put(Update.de_json(await request.json(), application.bot))
            return Response()

        async def health(_: Request) -> Response:
            return Response("ok")

        app = Starlette(routes=[Route("/telegram/webhook", telegram, methods=["POST"]), Route("/healthz", health)])
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=int(os.environ["ECHO_PORT"]), log_level="warning")
        )
        async with application:
            await application.start()
            await server.serve()
            await application.stop()

    asyncio.run(main())
    '''
)


class Replies(FakeTelegram):
    """The fake Bot API that also tells the benchmark's loop when a chat gets a message."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting: dict[int, asyncio.Future[float]] = {}

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        result = await super()._m_sendMessage(params)
        future = self.waiting.pop(int(params["chat_id"]), None)
        if future is not None and self.loop is not None:
            arrived = time.monotonic()
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(arrived))
        return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawned_workers(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in cmd:
            found.append(int(entry.name))
    return found or [pid]


async def drive(
    fake: Replies, url: str, updates: int, users: int, in_flight: int
) -> tuple[float, list[float]]:
    """Every update answered: (wall seconds, latencies)."""
    fake.loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    lost: list[int] = []
    per_user = [updates // users + (1 if i < updates % users else 0) for i in range(users)]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    limits = httpx.Limits(max_connections=in_flight + 8)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def user(index: int) -> None:
            chat = 100_000 + index
            for turn in range(per_user[index]):
                async with gate:
                    update = fake.make_message(chat, QUESTIONS[(index + turn) % len(QUESTIONS)])
                    answered: asyncio.Future[float] = fake.loop.create_future()  # type: ignore[union-attr]
                    fake.waiting[chat] = answered
                    started = time.monotonic()
                    while True:
                        try:
                            response = await client.post("/telegram/webhook", json=update, headers=headers)
                            if response.status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(0.2)
                    try:
                        latencies.append(await asyncio.wait_for(answered, REPLY_TIMEOUT) - started)
                    except TimeoutError:
                        fake.waiting.pop(chat, None)
                        lost.append(int(update["update_id"]))

        started = time.monotonic()
        await asyncio.gather(*(user(i) for i in range(users)))
        return time.monotonic() - started, latencies, lost


async def drive_paced(fake: Replies, url: str, updates: int, users: int, rate: float) -> list[float]:
    """Open-loop load below the budget: update i is posted at i / rate s, whatever came back."""
    fake.loop = asyncio.get_running_loop()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(i: int) -> None:
            await asyncio.sleep(i / rate)
            chat = 300_000 + i % users
            while chat in fake.waiting:  # this user's previous question is still open
                await asyncio.sleep(0.01)
            update = fake.make_message(chat, QUESTIONS[i % len(QUESTIONS)])
            answered: asyncio.Future[float] = fake.loop.create_future()  # type: ignore[union-attr]
            fake.waiting[chat] = answered
            started = time.monotonic()
            while (await client.post("/telegram/webhook", json=update, headers=headers)).status_code != 200:
                await asyncio.sleep(0.2)
            latencies.append(await asyncio.wait_for(answered, REPLY_TIMEOUT) - started)

        await asyncio.gather(*(one(i) for i in range(updates)))
    return sorted(latencies)


def wait_http(url: str, proc: subprocess.Popen[bytes], path: str = "/healthz", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited with {proc.returncode} before it was ready")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the bot did not get ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pg_schema() -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(PG)
    schema = f"kounen_bench_{uuid.uuid4().hex[:10]}"
    conninfo = f"host={url.host} port={url.port or 5432} dbname={url.database} user={url.username}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, conninfo


def drop_schema(schema: str, conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_bot(kind: str, rate: float, args: argparse.Namespace, work: Path) -> dict[str, float]:
    from sqlalchemy.engine import make_url

    with Replies() as fake:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOUNEN_")}
        env.update(HOME=str(work), XDG_DATA_HOME=str(work / "data"), PTB_TIMEDELTA="true")
        proxy: TcpProxy | None = None
        schema = conninfo = ""
        if kind == "kounen":
            schema, conninfo = pg_schema()
            pg = make_url(PG)
            proxy = TcpProxy((pg.host or "127.0.0.1", pg.port or 5432))
            db = pg.set(host="127.0.0.1", port=proxy.port, query={"options": f"-csearch_path={schema}"})
            env.update(
                KOUNEN_TELEGRAM_TOKEN=fake.token,
                KOUNEN_TELEGRAM_API_BASE_URL=fake.base_url,
                KOUNEN_WEBHOOK_SECRET=SECRET,
                KOUNEN_DATABASE_URL=db.render_as_string(hide_password=False),
                KOUNEN_TELEGRAM_SEND_RATE=str(rate),
                KOUNEN_LOG_LEVEL="WARNING",
            )
            command = [str(KOUNEN), "serve", "--port", str(port), "--workers", "2"]
        else:
            script = work / "echo_bot.py"
            script.write_text(ECHO_BOT)
            env.update(
                ECHO_TOKEN=fake.token,
                ECHO_BASE=fake.base_url,
                ECHO_PORT=str(port),
                ECHO_SECRET=SECRET,
                ECHO_RATE=str(rate),
            )
            command = [sys.executable, str(script)]
        proc = subprocess.Popen(
            command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_http(url, proc)
            time.sleep(1.0)
            # Warm up (every worker, connections opened), then measure.
            asyncio.run(drive(fake, url, 40, 40, 20))
            pids = spawned_workers(proc.pid) if kind == "kounen" else [proc.pid]
            cpu_before = sum(cpu_seconds(p) for p in pids)
            calls_before = len(fake.calls)
            trips_before = proxy.round_trips if proxy else 0
            wall, latencies, lost = asyncio.run(drive(fake, url, args.updates, args.users, args.in_flight))
            cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
            calls = len(fake.calls) - calls_before
            trips = (proxy.round_trips - trips_before) if proxy else 0
            paced: list[float] = []
            if rate:  # offered load below the budget: does anyone wait?
                time.sleep(2)  # the budget recovers
                paced = asyncio.run(drive_paced(fake, url, args.paced_updates, args.users, rate * 2 / 3))
        finally:
            stop(proc)
            if proxy is not None:
                proxy.close()
            if schema:
                drop_schema(schema, conninfo)
    latencies.sort()
    n = len(latencies)
    return {
        "updates_s": n / wall,
        "p50": statistics.median(latencies),
        "p99": latencies[min(n - 1, int(n * 0.99))],
        "cpu_ms": 1000 * cpu / n,
        "db_trips": trips / n,
        "api_calls": calls / n,
        "lost": float(len(lost)),
        "paced_p50": statistics.median(paced) if paced else 0.0,
        "paced_p99": paced[min(len(paced) - 1, int(len(paced) * 0.99))] if paced else 0.0,
    }


def report(results: dict[tuple[str, float], dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        "# kounen webhook throughput, side by side with a PTB echo bot",
        "",
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}, shared), Python {platform.python_version()}; "
        f"{date.today()}. {args.updates} updates from {args.users} users, {args.in_flight} in flight.",
        "",
        "| send budget | bot | updates/s | p50 | p99 | worker CPU ms/update | DB round trips/update "
        "| Bot API calls/update | replies lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in args.budget_list:
        budget = "none" if not rate else f"{rate:.0f}/s (kounen: one budget for both workers)"
        for kind in args.bot_list:
            r = results[(kind, rate)]
            name = "`kounen serve --workers 2` (PostgreSQL)" if kind == "kounen" else "PTB echo bot"
            lines.append(
                f"| {budget} | {name} | {r['updates_s']:.1f} | {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms "
                f"| {r['cpu_ms']:.1f} | {r['db_trips']:.1f} | {r['api_calls']:.2f} | {r['lost']:.0f} |"
            )
        if len(args.bot_list) < 2:
            continue
        k, e = results[("kounen", rate)], results[("echo", rate)]
        lines.append(
            f"| {budget} | ratio kounen / echo | {k['updates_s'] / e['updates_s']:.2f} | "
            f"{k['p50'] / e['p50']:.2f} | {k['p99'] / e['p99']:.2f} | {k['cpu_ms'] / e['cpu_ms']:.2f} | | "
            f"{k['api_calls'] / e['api_calls']:.2f} | |"
        )
    lines += [
        "",
        "Offered load below the budget (open loop, 2/3 of the budget: "
        f"{args.paced_updates} updates at {30.0 * 2 / 3:.0f}/s):",
        "",
        "| bot | p50 | p99 |",
        "|---|---|---|",
    ]
    for kind in args.bot_list if 30.0 in args.budget_list else ():
        r = results[(kind, 30.0)]
        lines.append(f"| {kind} | {r['paced_p50'] * 1000:.0f} ms | {r['paced_p99'] * 1000:.0f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=40)
    parser.add_argument("--paced-updates", type=int, default=300)
    parser.add_argument("--bots", default="kounen,echo", help="which bots, comma-separated")
    parser.add_argument("--budgets", default="0,30", help="send budgets to run, messages/s (0: none)")
    args = parser.parse_args()
    args.bot_list = [b for b in args.bots.split(",") if b in ("kounen", "echo")]
    args.budget_list = [float(b) for b in args.budgets.split(",")]
    results: dict[tuple[str, float], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kounen-bench-") as tmp:
        for rate in args.budget_list:
            for kind in args.bot_list:
                work = Path(tmp) / f"{kind}-{rate:.0f}"
                work.mkdir()
                results[(kind, rate)] = run_bot(kind, rate, args, work)
                sys.stderr.write(f"{kind} (budget {rate:.0f}/s): {results[(kind, rate)]}\n")
    text = report(results, args)
    sys.stdout.write(text)
    out = ROOT / "bench-results" / "throughput-latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Benchmark of the Telegram bot process: start-up to ready, and resident memory.

    make bench-bot            # = .venv/bin/python tests/bench_bot.py [--runs 5] [--messages 60]

Not a test (pytest does not collect this file): timings depend on the machine.  Against the
fake Bot API server of tests/fake_telegram.py on 127.0.0.1, it starts the real command line
`kounen bot` in a fresh process, `--runs` times, each on a new SQLite database (so the
migrations are part of the start), and measures from just before the process is spawned:

  * ready         the bot's first getUpdates call reaching the server: imports, settings,
                  store opened and migrated, knowledge base and matcher index built, getMe,
                  setMyCommands, deleteWebhook done — it is polling;
  * first answer  the reply to a question queued before the process was started.

Then, in the last run, `--messages` messages over 10 chats (FAQ questions, both guided
calculations to their summaries, button presses) and the peak resident memory of the bot
process (VmHWM from /proc/<pid>/status, which also covers the start-up peak), and SIGTERM
to a clean exit.  Finally `kounen serve --workers 2` (webhook mode) on SQLite: start-up to
/healthz answering and the resident memory of the supervisor and each worker.

Targets: ready < 2 s (median), peak RSS of a bot process < 300 MB.  The report is
printed as Markdown and written to bench-results/bot-latest.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
KOUNEN = Path(sys.executable).parent / "kounen"
READY_TARGET_S = 2.0
RSS_TARGET_MB = 300.0
SECRET = "bench-secret_0123456789"
QUESTIONS = (
    "申請マイページのIDがわからない",
    "ツールを半年で解約したらどうなる？",
    "効果報告はいつまでに出せばいいですか",
    "問い合わせの電話番号を教えて",
    "<b>太字</b> & 記号",
)
PRODUCTIVITY = ("/calc", "3000万", "2000万", "500万", "10", "1800")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def env_for(fake: FakeTelegram, work: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOUNEN_")}
    env.update(
        {
            "KOUNEN_TELEGRAM_TOKEN": fake.token,
            "KOUNEN_TELEGRAM_API_BASE_URL": fake.base_url,
            "KOUNEN_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
            "XDG_DATA_HOME": str(work / "data"),
            **more,
        }
    )
    return env


def one_start(work: Path) -> tuple[float, float, subprocess.Popen[bytes], FakeTelegram]:
    """Start `kounen bot`; (seconds to ready, seconds to first answer, process, server)."""
    fake = FakeTelegram().start()
    fake.message(1, QUESTIONS[0])
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(KOUNEN), "bot", "--poll-timeout", "10"],
        env=env_for(fake, work),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    fake.wait_for(
        lambda: fake.method_calls("getUpdates") or proc.poll() is not None,
        timeout=60,
        what="the first getUpdates",
    )
    if proc.poll() is not None:
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        raise SystemExit(f"kounen bot exited {proc.returncode} before polling: {stderr}")
    ready = time.monotonic() - started
    fake.wait_messages(1, 1, timeout=60)
    answered = time.monotonic() - started
    return ready, answered, proc, fake


def workload(fake: FakeTelegram, messages: int) -> int:
    """Conversations over 10 chats until `messages` updates are handled; returns the count sent."""
    sent = 0
    chats = list(range(100, 110))
    while sent < messages:
        for chat in chats:
            seen = len(fake.chat_messages(chat))
            if chat % 2:
                script: tuple[str, ...] = QUESTIONS
            else:
                script = PRODUCTIVITY
            for text in script:
                fake.message(chat, text)
                sent += 1
            expected = seen + len(script)
            fake.wait_for(lambda c=chat, n=expected: len(fake.chat_messages(c)) >= n, timeout=60)
            last = fake.chat_messages(chat)[-1]
            if last.buttons:  # press a button too (the summary's feedback or a step's choice)
                fake.press(chat, last, last.buttons[0][1])
                sent += 1
            if sent >= messages:
                break
    time.sleep(0.5)
    return sent


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return code, time.monotonic() - started


def bench_polling(runs: int, messages: int) -> dict[str, object]:
    readies: list[float] = []
    answers: list[float] = []
    result: dict[str, object] = {}
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="kounen-bench-") as tmp:
            ready, answered, proc, fake = one_start(Path(tmp))
            readies.append(ready)
            answers.append(answered)
            try:
                if run == runs - 1:
                    result["rss_ready_mb"] = status_kb(proc.pid, "VmRSS") / 1024
                    result["handled"] = workload(fake, messages)
                    result["rss_mb"] = status_kb(proc.pid, "VmRSS") / 1024
                    result["hwm_mb"] = status_kb(proc.pid, "VmHWM") / 1024
                    result["errors"] = sum("エラーが発生しました" in m.text for m in fake.messages)
            finally:
                code, seconds = stop(proc)
                stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                fake.stop()
            if code != 0:
                raise SystemExit(f"kounen bot exited {code}: {stderr}")
            result["stop_s"] = seconds
            result["stderr_lines"] = len(stderr.strip().splitlines())
    result["ready"] = readies
    result["answer"] = answers
    return result


def bench_serve(workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kounen-bench-") as tmp, FakeTelegram() as fake:
        work = Path(tmp)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = env_for(fake, work, KOUNEN_WEBHOOK_SECRET=SECRET)
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(KOUNEN), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            ready_after = None
            while time.monotonic() - started < 60:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        ready_after = time.monotonic() - started
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            # Every worker up: each answers its share of updates.
            for i in range(20):
                update = fake.make_message(200 + i, QUESTIONS[i % 3])
                response = httpx.post(
                    url + "/telegram/webhook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                    timeout=30,
                )
                response.raise_for_status()
            time.sleep(0.5)
            worker_pids = [p for p in children(proc.pid) if "spawn_main" in cmdline(p)] or [proc.pid]
            workers_rss = [status_kb(p, "VmHWM") / 1024 for p in worker_pids]
            # RSS counts the pages of the memory-mapped Sudachi dictionary, which the workers share
            # through the page cache; the anonymous part is what each extra worker really costs.
            workers_split = [
                (status_kb(p, "RssAnon") / 1024, status_kb(p, "RssFile") / 1024) for p in worker_pids
            ]
            supervisor = status_kb(proc.pid, "VmHWM") / 1024
        finally:
            code, _ = stop(proc)
        return {
            "ready_s": ready_after,
            "supervisor_mb": supervisor,
            "workers_mb": workers_rss,
            "workers_split_mb": workers_split,
            "exit": code,
        }


def report(poll: dict[str, object], serve: dict[str, object], runs: int) -> str:
    ready = poll["ready"]
    answer = poll["answer"]
    assert isinstance(ready, list) and isinstance(answer, list)
    median_ready = statistics.median(ready)
    hwm = float(poll["hwm_mb"])  # type: ignore[arg-type]
    cpu = os.cpu_count()
    lines = [
        "# kounen bot benchmark",
        "",
        f"Machine: {cpu} CPUs ({platform.machine()}), Python {platform.python_version()}; run of {date.today()}.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| `kounen bot` start to ready (first getUpdates), median of {runs} | {median_ready:.2f} s "
        f"(runs: {', '.join(f'{r:.2f}' for r in ready)}) | < {READY_TARGET_S:.0f} s "
        f"{'PASS' if median_ready < READY_TARGET_S else 'FAIL'} |",
        f"| start to first answer (question queued before start), median | {statistics.median(answer):.2f} s "
        f"(max {max(answer):.2f}) | |",
        f"| RSS when ready | {float(poll['rss_ready_mb']):.0f} MB | |",  # type: ignore[arg-type]
        f"| peak RSS (VmHWM) after {poll['handled']} updates over 10 chats | {hwm:.0f} MB "
        f"(RSS now {float(poll['rss_mb']):.0f} MB) | < {RSS_TARGET_MB:.0f} MB "  # type: ignore[arg-type]
        f"{'PASS' if hwm < RSS_TARGET_MB else 'FAIL'} |",
        f"| SIGTERM to exit | {float(poll['stop_s']):.2f} s, exit 0, {poll['stderr_lines']} stderr line(s) | |",  # type: ignore[arg-type]
        f"| error replies during the workload | {poll['errors']} | 0 |",
    ]
    workers = serve["workers_mb"]
    assert isinstance(workers, list)
    ready_s = serve["ready_s"]
    lines += [
        f"| `kounen serve --workers {len(workers)}` start to /healthz 200 | {ready_s:.2f} s | |"
        if isinstance(ready_s, float)
        else "| `kounen serve` | did not get ready | |",
        f"| `kounen serve` peak RSS: supervisor / each worker | {float(serve['supervisor_mb']):.0f} MB / "  # type: ignore[arg-type]
        f"{', '.join(f'{w:.0f}' for w in workers)} MB | worker < {RSS_TARGET_MB:.0f} MB "
        f"{'PASS' if workers and max(workers) < RSS_TARGET_MB else 'FAIL'} |",
        "| each worker now: anonymous / file-backed (mapped dictionary and libraries, shared) | "
        + ", ".join(f"{anon:.0f} / {file:.0f} MB" for anon, file in serve["workers_split_mb"])  # type: ignore[attr-defined]
        + " | |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--serve-workers", type=int, default=2)
    args = parser.parse_args()
    if not KOUNEN.exists():
        raise SystemExit(f"{KOUNEN} not found: run `make setup` first")
    poll = bench_polling(args.runs, args.messages)
    serve = bench_serve(args.serve_workers)
    text = report(poll, serve, args.runs)
    sys.stdout.write(text)
    out = ROOT / "bench-results" / "bot-latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

# Two commands set up and run everything on a fresh machine:
#   make run    - create .venv, install the pinned dependencies, start the terminal chat
#   make test   - the same set-up, then lint, type-check and the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= 申請マイページのIDがわからない

.PHONY: setup run ask test lint bench bench-bot browser lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/kounen chat

ask: setup
	$(BIN)/kounen ask "$(QUESTION)"

lint: setup
	$(BIN)/ruff check bot faq rules dialogs tests
	$(BIN)/mypy

# Debian's chromium for the console's browser tests, tmux for the terminal chat's
# (apt-get; needs root, as in CI).
browser:
	bash scripts/install-browser.sh
	bash scripts/install-tmux.sh

test: lint
	bash scripts/install-browser.sh || { [ "$${CI:-}" != true ] || exit 1; echo "no browser: the console's browser tests will be skipped"; }
	bash scripts/install-tmux.sh || { [ "$${CI:-}" != true ] || exit 1; echo "no tmux: the terminal chat's tmux test will be skipped"; }
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m tests.bench.bench

# Telegram bot process: start-up to ready and resident memory, against the fake Bot API server;
# then webhook throughput side by side with a PTB echo bot (needs the local PostgreSQL).
bench-bot: setup
	$(BIN)/python tests/bench_bot.py
	$(BIN)/python tests/bench_throughput.py

# Re-resolve the pinned set (needs the package index); commit the result.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra build --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV)

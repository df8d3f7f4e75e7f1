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

# Debian's chromium for the console's browser tests (apt-get; needs root, as in CI).
browser:
	bash scripts/install-browser.sh

test: lint
	bash scripts/install-browser.sh || echo "no browser: the console's browser tests will be skipped"
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m tests.bench.bench

# Telegram bot process: start-up to ready and resident memory, against the fake Bot API server.
bench-bot: setup
	$(BIN)/python tests/bench_bot.py

# Re-resolve the pinned set (needs the package index); commit the result.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra build --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV)

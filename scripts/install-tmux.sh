#!/usr/bin/env bash
# Install tmux, which the terminal chat's test drives (tests/test_chat_terminal.py): it types
# into a real `kounen chat` in a tmux pane and reads the screen back.
#
# Idempotent: does nothing when tmux is already on the PATH.  Otherwise installs the Debian
# package with apt-get (as root, or through sudo when available).  Prints every step; exits
# non-zero with a message saying what to do when it cannot install.
set -euo pipefail

say() { printf 'install-tmux: %s\n' "$*"; }
fail() { printf 'install-tmux: ERROR: %s\n' "$*" >&2; exit 1; }

if command -v tmux >/dev/null 2>&1; then
    say "tmux is already installed: $(tmux -V)"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 \
    || fail "tmux is missing and apt-get is not available (not Debian/Ubuntu?). Install tmux, then re-run."
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    fail "tmux is missing and installing it needs root. Run: sudo apt-get update && sudo apt-get install -y tmux"
fi

export DEBIAN_FRONTEND=noninteractive
say "tmux is missing; installing the Debian package 'tmux' with apt-get"
if ! apt-cache show tmux >/dev/null 2>&1; then
    say "package 'tmux' not in the apt cache yet: running apt-get update"
    "${SUDO[@]}" apt-get update || fail "apt-get update failed (no package mirror?). Fix apt, then re-run."
fi
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends tmux; then
    say "apt-get install failed; refreshing the package lists once and retrying"
    "${SUDO[@]}" apt-get update || fail "apt-get update failed (no package mirror?). Fix apt, then re-run."
    "${SUDO[@]}" apt-get install -y --no-install-recommends tmux || fail "apt-get install tmux failed; see above."
fi
command -v tmux >/dev/null 2>&1 || fail "the 'tmux' package installed but tmux is not on the PATH."
say "installed: $(tmux -V)"

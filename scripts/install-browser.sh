#!/usr/bin/env bash
# Install the browser the console's browser tests drive: Debian's `chromium` at /usr/bin/chromium.
#
# Idempotent: does nothing when /usr/bin/chromium is already there.  Otherwise installs the
# Debian package with apt-get (as root, or through sudo when available).  Prints every step;
# exits non-zero with a message saying what to do when it cannot install.
# Also installs a Japanese font (fonts-ipafont-gothic) when fontconfig knows none, so the
# screenshots of the Japanese console are readable; a failure there is only a warning.
#
# Playwright's own browser download (`playwright install`) is not used: the tests launch this
# system Chromium through Playwright's Python package with executable_path=/usr/bin/chromium.
set -euo pipefail

BROWSER=/usr/bin/chromium
say() { printf 'install-browser: %s\n' "$*"; }
fail() { printf 'install-browser: ERROR: %s\n' "$*" >&2; exit 1; }

has_japanese_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=ja 2>/dev/null)" ]; }

if [ -x "$BROWSER" ] && has_japanese_font; then
    say "$BROWSER is already installed: $("$BROWSER" --version 2>/dev/null || echo 'version unknown')"
    say "a Japanese font is already installed"
    exit 0
fi

# Only the font is missing and we cannot install anything: the tests still run.
font_only_warning() {
    say "WARNING: no Japanese font and $1; screenshots will show boxes for Japanese text" \
        "(install fonts-ipafont-gothic to fix)"
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    [ -x "$BROWSER" ] && font_only_warning "apt-get is not available"
    fail "$BROWSER is missing and apt-get is not available (not Debian/Ubuntu?). Install Chromium so that $BROWSER exists, then re-run."
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    [ -x "$BROWSER" ] && font_only_warning "installing one needs root"
    fail "$BROWSER is missing and installing it needs root. Run: sudo apt-get update && sudo apt-get install -y chromium"
fi

export DEBIAN_FRONTEND=noninteractive
install_font() {
    has_japanese_font && { say "a Japanese font is already installed"; return 0; }
    say "no Japanese font found: installing fonts-ipafont-gothic (for readable screenshots)"
    if "${SUDO[@]}" apt-get install -y --no-install-recommends fonts-ipafont-gothic; then
        say "installed fonts-ipafont-gothic"
    else
        say "WARNING: could not install fonts-ipafont-gothic; screenshots will show boxes for Japanese text"
    fi
}

if [ -x "$BROWSER" ]; then
    say "$BROWSER is already installed: $("$BROWSER" --version 2>/dev/null || echo 'version unknown')"
    install_font
    exit 0
fi

say "$BROWSER is missing; installing the Debian package 'chromium' with apt-get"
if ! apt-cache show chromium >/dev/null 2>&1; then
    say "package 'chromium' not in the apt cache yet: running apt-get update"
    "${SUDO[@]}" apt-get update \
        || fail "apt-get update failed (no network or no package mirror?). Fix apt, then re-run."
fi
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends chromium; then
    say "apt-get install failed; refreshing the package lists once and retrying"
    "${SUDO[@]}" apt-get update \
        || fail "apt-get update failed (no network or no package mirror?). Fix apt, then re-run."
    "${SUDO[@]}" apt-get install -y --no-install-recommends chromium \
        || fail "apt-get install chromium failed; see the apt output above."
fi

[ -x "$BROWSER" ] || fail "the 'chromium' package installed but $BROWSER does not exist."
say "installed: $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
install_font

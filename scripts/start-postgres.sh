#!/usr/bin/env bash
# Make sure the tests' PostgreSQL answers on 127.0.0.1:5432 with trust auth and a database `test`.
#
# Does nothing when it already answers (the CI machines and developer machines start it).
# Otherwise starts the Debian cluster(s) that are installed, or installs the `postgresql`
# package with apt-get (as root), lets loopback connections in without a password (these are
# throw-away test machines) and creates the database.  Exits non-zero saying what is wrong.
set -euo pipefail

say() { printf 'start-postgres: %s\n' "$*"; }
fail() { printf 'start-postgres: ERROR: %s\n' "$*" >&2; exit 1; }
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null 2>&1 && ready; then
    say "PostgreSQL answers on 127.0.0.1:5432"
else
    [ "$(id -u)" -eq 0 ] || fail "PostgreSQL is not running on 127.0.0.1:5432 and starting it needs root"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        say "PostgreSQL is not installed: installing the Debian package 'postgresql'"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends postgresql \
            || { apt-get update && apt-get install -y --no-install-recommends postgresql; } \
            || fail "apt-get install postgresql failed; see the apt output above"
    fi
    for conf in /etc/postgresql/*/*/pg_hba.conf; do
        [ -f "$conf" ] || continue
        grep -q '^host all all 127.0.0.1/32 trust' "$conf" \
            || sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
    done
    pg_lsclusters --no-header | while read -r version cluster _rest; do
        say "starting cluster $version/$cluster"
        pg_ctlcluster "$version" "$cluster" start || pg_ctlcluster "$version" "$cluster" reload || true
    done
    for _ in $(seq 1 30); do ready && break; sleep 1; done
    ready || fail "PostgreSQL did not start on 127.0.0.1:5432 (see /var/log/postgresql/)"
    say "PostgreSQL started"
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" \
    || fail "cannot create the database 'test' as user postgres on 127.0.0.1"
say "database 'test' is there"

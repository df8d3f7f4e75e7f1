"""Make the values of KOUNEN_CONSOLE_USERS and KOUNEN_CONSOLE_TOKENS.

    python -m bot.console.hash_password                 # asks for a password twice, prints its hash
    python -m bot.console.hash_password --user yamada   # prints a ready KOUNEN_CONSOLE_USERS line
    printf '%s\\n' "$PASSWORD" | python -m bot.console.hash_password   # from stdin (not a terminal)
    python -m bot.console.hash_password --token [--user kiosk]        # a new random token

The hash is argon2id with argon2-cffi's default parameters; only the hash goes into the
settings.  Write the value in single quotes in a shell or `.env` file: it contains `$`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from bot.console.passwords import hash_password, new_token

MIN_PASSWORD = 12


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("パスワード: ")
    second = getpass.getpass("もう一度: ")
    if first != second:
        raise SystemExit("hash_password: the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.console.hash_password",
        description="Hash a console password (argon2id) or make a token for the settings.",
    )
    parser.add_argument("--user", help="staff name: print a KOUNEN_CONSOLE_USERS / _TOKENS line")
    parser.add_argument("--token", action="store_true", help="make a random token instead")
    args = parser.parse_args(argv)
    if args.token:
        value = new_token()
        variable = "KOUNEN_CONSOLE_TOKENS"
    else:
        password = _read_password()
        if len(password) < MIN_PASSWORD:
            print(f"hash_password: use at least {MIN_PASSWORD} characters", file=sys.stderr)
            return 2
        value = hash_password(password)
        variable = "KOUNEN_CONSOLE_USERS"
    if args.user:
        print(f"{variable}='{json.dumps({args.user: value}, ensure_ascii=False)}'")
    else:
        print(value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

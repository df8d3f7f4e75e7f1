"""The call-center console: search, browse, calculators and insights for staff.

    from bot.console import create_console_app, load_console_settings
    app = create_console_app(kb=kb, policy=policy, store=store, settings=load_console_settings())
    # mounted by `kounen serve` as Mount("/console", app=app)

Settings: bot.console.settings (prefix KOUNEN_CONSOLE_).  Password hashes:
`python -m bot.console.hash_password`.  The application module is imported on first use,
so that helper starts without loading the knowledge base's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.console.passwords import hash_password, new_token
from bot.console.settings import ConsoleSettings, ConsoleSettingsError, load_console_settings

if TYPE_CHECKING:
    from bot.console.app import create_console_app

__all__ = [
    "ConsoleSettings",
    "ConsoleSettingsError",
    "create_console_app",
    "hash_password",
    "load_console_settings",
    "new_token",
]


def __getattr__(name: str) -> Any:
    if name == "create_console_app":
        from bot.console.app import create_console_app

        return create_console_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

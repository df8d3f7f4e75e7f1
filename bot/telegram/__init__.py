"""The Telegram channel: python-telegram-bot 22 over the conversation service.

The adapter only translates.  An update becomes a `UserInput` (typed text, a
command, or the value of a pressed button) for `ConversationService.handle`; the
`Reply`s that come back become messages: HTML parse mode with every text escaped,
inline keyboards whose callback data is the choice value (≤ 64 bytes ASCII), texts
over 4,096 characters split at line ends, and 👍/👎 buttons under every answer,
stored through `ConversationService.feedback`.  What to answer is decided by the
service; the conversation lives in its store, never in PTB's ConversationHandler,
user_data or a persistence file, so any number of processes can share it.

Callback data sent here:
    faq:… prog:… flow:… cmd:… and step values   the service's choice values, as given
    /program <id>                                 a command, handled as if typed
    fb:1:<id> / fb:0:<id>                         👍 / 👎 on an answer (entry id or flow:<id>)
    cat:<category id> / cat:                      older /faq buttons: the service's よくある質問 lists

Exactly-once effects over at-least-once delivery: `TelegramAdapter.process` runs each
update as one store transaction (`Store.run_update`) that claims the update id, reads and
locks the conversation, routes it through the service, saves it, logs the turn, stores
feedback and queues the messages in the outbox; the messages are sent after the commit, in
order, and marked sent.  A redelivered update that committed only sends what is left of its
messages; one that did not is handled afresh.  A database failure raises `StoreError`: the
webhook answers 503 and polling does not move its offset, so Telegram delivers it again.
What stays at-least-once is the send itself (see README, "Delivery").
One chat's updates are handled one at a time (`ChatOrder` in a process; the locked
conversation row and outbox rows across processes); different chats run concurrently.
Sends respect one budget per bot (KOUNEN_TELEGRAM_SEND_RATE): on PostgreSQL it is taken in
the update's transaction and shared by every worker (a user kept waiting sees "typing…"); on
SQLite the process's limiter is the budget.  Bot API calls go through `RetryingRateLimiter`:
AIORateLimiter (group limits, retries on 429) plus retries with exponential backoff on network
errors and 5xx.

Modules: `render` (replies as messages, pure), `retries` (ordering and retries), `adapter`
(updates to committed effects, the outbox), `run` (building and running the application).
"""

from bot.telegram.adapter import (
    ALLOWED_UPDATES,
    CHANNEL,
    COMMAND_NAMES,
    COMMANDS,
    EDITED,
    ERROR_TEXT,
    FEEDBACK_THANKS,
    FLOW_COMMANDS,
    NOT_HELPFUL_OFFER,
    SWEEP_INTERVAL,
    UNSUPPORTED,
    TelegramAdapter,
    Work,
)
from bot.telegram.render import (
    CHOOSE,
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    MAX_CALLBACK_BYTES,
    MAX_LABEL,
    MAX_MESSAGE,
    Outgoing,
    escape,
    feedback_row,
    keyboard,
    render_replies,
    render_turn,
    split_text,
    utf16_len,
    valid_callback,
    with_headline,
)
from bot.telegram.retries import ChatOrder, RetryingRateLimiter
from bot.telegram.run import (
    BotStartError,
    adapter_of,
    build_application,
    check_bot,
    close_adapter,
    describe_start_error,
    file_base_url,
    poll,
    register_webhook,
    run_polling,
    start_application,
)

__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "CHOOSE",
    "COMMANDS",
    "COMMAND_NAMES",
    "EDITED",
    "ERROR_TEXT",
    "FEEDBACK_DOWN",
    "FEEDBACK_THANKS",
    "FEEDBACK_UP",
    "FLOW_COMMANDS",
    "MAX_CALLBACK_BYTES",
    "MAX_LABEL",
    "MAX_MESSAGE",
    "NOT_HELPFUL_OFFER",
    "SWEEP_INTERVAL",
    "UNSUPPORTED",
    "BotStartError",
    "ChatOrder",
    "Outgoing",
    "RetryingRateLimiter",
    "TelegramAdapter",
    "Work",
    "adapter_of",
    "build_application",
    "check_bot",
    "close_adapter",
    "describe_start_error",
    "escape",
    "feedback_row",
    "file_base_url",
    "keyboard",
    "poll",
    "register_webhook",
    "render_replies",
    "render_turn",
    "run_polling",
    "split_text",
    "start_application",
    "utf16_len",
    "valid_callback",
    "with_headline",
]

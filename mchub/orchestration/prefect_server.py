"""Prefect's server, run as `prefect server start` runs it in the foreground, except that on
SQLite every write transaction begins IMMEDIATE.

Why: Prefect begins most write transactions DEFERRED; one that reads before it writes then
fails at once with "database is locked" when another connection commits in between, and
the server answers 503. Its clients wait 2 s, 4 s, 8 s ... before each retry while the server
sits idle, and give up after five, so many clusters submitted at once wait for minutes and
some of their runs fail. An IMMEDIATE transaction takes the write lock when
it begins, so a second writer waits for it (SQLite's busy timeout, 60 s in Prefect) instead
of failing; reads, outside these transactions, are not held up.

With MCHUB_DATABASE_URL set, the database is PostgreSQL instead, created when missing
(mchub.orchestration.database); the stack gives the same URL to Prefect.

It also refuses to start without Prefect's API authentication (PREFECT_SERVER_API_AUTH_STRING):
`mchub up` gives it the hub's credential (mchub.orchestration.prefect_auth), with CORS limited to its own
origin and CSRF protection on (mchub.orchestration.stack).

    python -m mchub.orchestration.prefect_server --host 127.0.0.1 --port 4200
"""

import argparse
import gc
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from prefect.settings import (
    PREFECT_SERVER_API_AUTH_STRING,
    PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
    PREFECT_SERVER_LOGGING_LEVEL,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mchub.orchestration.database import DatabaseError, ensure_database
from mchub.settings import get_settings


def immediate(begin_transaction: Callable[..., AbstractAsyncContextManager[Any]]) -> Callable[..., Any]:
    """Prefect's own begin_transaction, asked for its IMMEDIATE mode (meant for the few
    transactions it knows to read before writing) on every write transaction."""

    def begin_immediate(self: Any, session: Any, with_for_update: bool = False) -> AbstractAsyncContextManager[Any]:
        return begin_transaction(self, session, with_for_update=True)

    return begin_immediate


def frozen_once_started(app: ASGIApp) -> ASGIApp:
    """`app`, with everything made until it has started (Prefect's modules, its services, its
    database engine) frozen out of Python's garbage collections, which then resume: it lives
    as long as the process, and each full collection while serving would walk it all (0.2 s
    of CPU each). The collections the start itself would make (1 s of CPU) are skipped."""

    async def started_then_frozen(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def send_and_freeze(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                gc.freeze()
                gc.enable()

        return await app(scope, receive, send_and_freeze)

    return started_then_frozen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mchub.orchestration.prefect_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args(argv)
    if not PREFECT_SERVER_API_AUTH_STRING.value():
        # Without it, anyone who reaches the port runs flows, and so commands, as the hub.
        parser.error(
            "PREFECT_SERVER_API_AUTH_STRING is unset: MC Hub runs Prefect's server only with its API "
            "authentication; start it with `mchub up`"
        )

    database = get_settings().database_url
    if database is not None:
        try:
            ensure_database(database.get_secret_value())
        except DatabaseError as error:
            sys.exit(str(error))

    # The server's own imports take seconds: a refused start does not wait for them.
    gc.disable()  # until the app has started (frozen_once_started)
    import uvicorn
    from prefect.logging.configuration import setup_logging
    from prefect.server.api.server import create_app
    from prefect.server.database.configurations import AioSqliteConfiguration

    setup_logging()
    prefects_own = AioSqliteConfiguration.begin_transaction
    AioSqliteConfiguration.begin_transaction = immediate(prefects_own)  # type: ignore[method-assign]
    uvicorn.run(
        app=frozen_once_started(create_app(final=True)),
        host=args.host,
        port=args.port,
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        log_level=PREFECT_SERVER_LOGGING_LEVEL.value().lower(),
    )
    # Stopped. Python's last garbage collections, over everything Prefect imported, would take
    # over a second more (and more on a busy machine): the process ends with its memory instead.
    gc.freeze()


if __name__ == "__main__":
    main()

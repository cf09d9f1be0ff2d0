"""The PostgreSQL that the PostgreSQL mode's tests use: the machine's, at 127.0.0.1:5432 with
trust authentication (MCHUB_TEST_POSTGRES_URL names another). Each test session gets a new
database of its own, created by MC Hub as `mchub up` creates it, and dropped afterwards.

Missing, the PostgreSQL tests skip on a developer's machine, but fail in CI (`CI` set), where
PostgreSQL always runs: a CI that silently skipped them would prove nothing about that mode.
"""

import asyncio
import os
import secrets

import asyncpg
import pytest

SERVER = os.environ.get("MCHUB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")


def reachable() -> bool:
    try:
        asyncio.run(query("postgres", "SELECT 1"))
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
        return False
    return True


def required(skip: bool = True) -> bool:
    """Whether PostgreSQL answers; if not, skip the test (or, with `skip` False, say so), but
    fail in CI."""
    if reachable():
        return True
    message = f"PostgreSQL does not answer at {SERVER}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI runs the PostgreSQL mode's tests, so it must run there")
    if skip:
        pytest.skip(message)
    return False


def new_database_url() -> str:
    """The URL of a database nobody has created yet."""
    return f"{SERVER}/mchub_test_{secrets.token_hex(6)}"


async def query(database: str, sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(_dsn(database), timeout=5)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def exists(database: str) -> bool:
    return bool(asyncio.run(query("postgres", "SELECT 1 FROM pg_database WHERE datname = $1", database)))


def drop(database: str) -> None:
    asyncio.run(query("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _dsn(database: str) -> str:
    return f"{SERVER.replace('postgresql+asyncpg', 'postgresql', 1)}/{database}"

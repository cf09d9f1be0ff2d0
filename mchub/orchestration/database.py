"""Prefect's database: SQLite under <home>/prefect unless MCHUB_DATABASE_URL names a PostgreSQL
database, which is created on the first start when it does not exist yet.

PostgreSQL is for a hub that outgrows one machine: several workers and servers share it, and
its writers do not queue behind one lock as SQLite's do.
"""

import asyncio

import asyncpg
from sqlalchemy.engine import URL, make_url

from mchub.errors import MCHubError

DRIVER = "postgresql+asyncpg"
CONNECT_SECONDS = 10.0


class DatabaseError(MCHubError):
    """Prefect's PostgreSQL database cannot be reached or created; the message says what to fix."""


def ensure_database(url: str) -> bool:
    """Create the database `url` names when its server does not have it yet; True if created."""
    return asyncio.run(_ensure_database(make_url(url)))


async def _ensure_database(url: URL) -> bool:
    name = url.database
    assert name, "the settings refuse a URL without a database"
    # CREATE DATABASE runs outside the database it makes: on the server's maintenance database.
    maintenance = await _connect(url.set(database="postgres"))
    try:
        if await maintenance.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        # An identifier cannot be a query parameter: quoted, with its quotes doubled.
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await maintenance.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # another server made it meanwhile
        except asyncpg.PostgresError as error:
            raise DatabaseError(
                f"MCHUB_DATABASE_URL: could not create the database {name!r} ({error}); create it "
                f"(createdb {name}) or give the URL's user the CREATEDB right"
            ) from error
        return True
    finally:
        await maintenance.close()


async def _connect(url: URL) -> asyncpg.Connection:
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        return await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database=url.database,
            timeout=CONNECT_SECONDS,
        )
    except (OSError, asyncio.TimeoutError) as error:
        raise DatabaseError(
            f"MCHUB_DATABASE_URL: PostgreSQL at {where} does not answer ({error}); start it, or unset "
            "MCHUB_DATABASE_URL to keep Prefect's database in SQLite under MCHUB_HOME"
        ) from error
    except asyncpg.PostgresError as error:
        raise DatabaseError(
            f"MCHUB_DATABASE_URL: PostgreSQL at {where} refused {url.username or 'the user'} ({error}); "
            "check the user and password in the URL"
        ) from error

"""Prefect's database on PostgreSQL (MCHUB_DATABASE_URL): refused when it is not a PostgreSQL
database, created on the first start, a clear message when PostgreSQL does not answer, and a
stack that keeps its records there. The fault tests (test_faults, test_security_terraform) run
on the own stack, which is on PostgreSQL wherever it answers: restarts, crashes and
reconciliation are proven on it too."""

import asyncio
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from mchub.cli.errors import settings_problem
from mchub.orchestration.database import DatabaseError, ensure_database
from mchub.orchestration.stack import ROOT
from mchub.settings import Settings
from tests import postgres
from sandbox.launcher import free_port
from tests.harness import LiveStack


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///prefect.db",
        "postgresql://postgres@127.0.0.1:5432/mchub",  # Prefect's server needs the asyncpg driver
        "postgresql+asyncpg://hub@db.example.org:5433",  # no database
        "postgresql+asyncpg://postgres@127.0.0.1:5432/mchub?sslmode=disable",
        "prefect-db",
    ],
)
def test_a_database_url_that_is_not_a_postgresql_database_is_refused_with_the_form_to_use(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url=url)
    told = settings_problem(refused.value)
    assert told.startswith("the settings cannot be read: MCHUB_DATABASE_URL=(hidden): ")
    assert "postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE" in told
    assert url not in told, "the URL may hold a password"


def test_a_refused_database_url_stops_the_command_before_it_does_anything() -> None:
    url = "postgresql://mchub:s3cret-password@db.example.org/mchub"
    listed = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "list"], cwd=ROOT, env={**os.environ, "MCHUB_DATABASE_URL": url},
        capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode != 0
    assert "MCHUB_DATABASE_URL=(hidden)" in listed.stderr and "fix or unset the variable" in listed.stderr
    assert "s3cret" not in listed.stderr + listed.stdout and "Traceback" not in listed.stderr


def test_the_database_is_created_once_and_kept_after() -> None:
    postgres.required()
    url = postgres.new_database_url()
    name = postgres.database_of(url)
    try:
        assert ensure_database(url) is True
        assert postgres.exists(name)
        asyncio.run(postgres.query(name, "CREATE TABLE kept (x int)"))
        assert ensure_database(url) is False
        assert asyncio.run(postgres.query(name, "SELECT count(*) FROM kept"))[0][0] == 0
    finally:
        postgres.drop(name)


def test_a_postgresql_that_does_not_answer_stops_prefects_server_with_what_to_do() -> None:
    nobody = free_port()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{nobody}/mchub"
    with pytest.raises(DatabaseError, match="does not answer.*unset MCHUB_DATABASE_URL"):
        ensure_database(url)
    env = {
        **os.environ,
        "MCHUB_DATABASE_URL": url,
        "PREFECT_SERVER_API_AUTH_STRING": "a-long-enough-secret-string",
    }
    server = subprocess.run(
        [sys.executable, "-m", "mchub.orchestration.prefect_server", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert server.returncode == 1
    assert server.stderr.strip().startswith(f"MCHUB_DATABASE_URL: PostgreSQL at 127.0.0.1:{nobody} does not answer")
    assert "Traceback" not in server.stderr


def test_a_stack_on_postgresql_keeps_prefects_records_in_the_database_it_created(on_own_stack: LiveStack) -> None:
    postgres.required()
    assert on_own_stack.settings.database_url is not None
    name = postgres.database_of(on_own_stack.settings.database_url.get_secret_value())
    assert postgres.exists(name)
    with on_own_stack.client() as client:
        served = sorted(deployment.name for deployment in client.read_deployments())
    stored = sorted(row["name"] for row in asyncio.run(postgres.query(name, "SELECT name FROM deployment")))
    assert served and served == stored

"""The shared store (mchub.cluster.shared_store) between two machines' clusters folders, on the
machine's PostgreSQL (tests/postgres.py): what one pushes the other pulls, removals and
archives included, and nothing it pulls lands outside its clusters folder."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mchub.cluster.shared_store import FILES_TABLE, INDEX, STATE_COPY, SharedStore, StoreError
from mchub.cluster.workspace import Workspace, list_hostnames
from mchub.terraform.config import backend_schema
from tests import postgres

HOST = "c1.sandbox.mchub.dev"


@pytest.fixture
def store_url() -> Iterator[str]:
    postgres.required()
    url = postgres.new_database_url()
    yield url.replace("postgresql+asyncpg", "postgresql", 1) + "?sslmode=disable"
    postgres.drop(postgres.database_of(url))


@pytest.fixture
def machines(store_url: str, tmp_path: Path) -> tuple[SharedStore, SharedStore]:
    a, b = SharedStore(store_url, tmp_path / "a"), SharedStore(store_url, tmp_path / "b")
    assert a.ensure() is True and b.ensure() is False  # the second machine finds it made
    return a, b


def write(root: Path, relative: str, text: str, mode: int = 0o600) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_what_one_machine_pushes_the_other_pulls_once_and_private(machines: tuple[SharedStore, SharedStore]) -> None:
    a, b = machines
    write(a.clusters_dir, f"{HOST}/spec.yaml", "cluster_name: c1\n")
    write(a.clusters_dir, f"{HOST}/logs/plan.log", "planned\n", mode=0o644)
    write(a.clusters_dir, f"{HOST}/.terraform/modules/modules.json", "{}")  # made by init on each machine
    write(a.clusters_dir, ".requests/r1.yaml", "guest_passwd: secret\n")
    assert a.push() == 3 and a.push() == 0  # only what changed since

    assert b.pull() == 3 and b.pull() == 0
    assert (b.clusters_dir / HOST / "spec.yaml").read_text() == "cluster_name: c1\n"
    assert (b.clusters_dir / HOST / "logs" / "plan.log").read_text() == "planned\n"
    assert not (b.clusters_dir / HOST / ".terraform").exists()
    assert list_hostnames(b.clusters_dir) == [HOST]
    for path in [b.clusters_dir / HOST, *(b.clusters_dir / HOST).rglob("*"), b.clusters_dir / ".requests" / "r1.yaml"]:
        assert path.stat().st_mode & 0o077 == 0, path  # the guest password's files and folders: owner only
    assert b.push() == 0  # what it pulled is not sent back


def test_a_change_and_a_removal_travel_and_an_archive_takes_the_folder_away(
    machines: tuple[SharedStore, SharedStore],
) -> None:
    a, b = machines
    write(a.clusters_dir, f"{HOST}/spec.yaml", "one\n")
    write(a.clusters_dir, ".requests/r1.yaml", "request\n")
    a.push()
    b.pull()
    write(b.clusters_dir, f"{HOST}/spec.yaml", "two\n")  # B's run changes the spec, consumes the request
    (b.clusters_dir / ".requests" / "r1.yaml").unlink()
    write(b.clusters_dir, f"{HOST}/.terraform/terraform.tfstate", "{}")
    assert b.push() == 2
    a.pull()
    assert (a.clusters_dir / HOST / "spec.yaml").read_text() == "two\n"
    assert not (a.clusters_dir / ".requests" / "r1.yaml").exists()

    # A archives the cluster: B's folder goes, its own .terraform with it; the archive comes.
    write(a.clusters_dir, f"{HOST}/.terraform/terraform.tfstate", "{}")
    (a.clusters_dir / ".archive").mkdir()
    (a.clusters_dir / HOST).rename(a.clusters_dir / ".archive" / f"{HOST}-20261203T000000Z")
    a.push()
    b.pull()
    assert list_hostnames(b.clusters_dir) == []
    assert (b.clusters_dir / ".archive" / f"{HOST}-20261203T000000Z" / "spec.yaml").read_text() == "two\n"


def test_the_folders_copy_of_the_state_comes_from_terraforms_backend(
    machines: tuple[SharedStore, SharedStore], store_url: str
) -> None:
    a, b = machines
    write(a.clusters_dir, f"{HOST}/spec.yaml", "one\n")
    assert a.copy_state(HOST) is False  # no state yet: nothing to copy
    schema = backend_schema(HOST)
    state = {"version": 4, "serial": 3, "resources": [{"mode": "managed", "type": "terraform_data", "name": "x"}]}
    database = _database(store_url)
    asyncio.run(postgres.query(database, f"CREATE SCHEMA {schema}"))
    asyncio.run(postgres.query(database, f"CREATE TABLE {schema}.states (id serial, name text, data text)"))
    asyncio.run(postgres.query(database, f"INSERT INTO {schema}.states (name, data) VALUES ('default', $1)", json.dumps(state)))
    assert a.copy_state(HOST) is True and a.copy_state(HOST) is False
    assert Workspace(a.clusters_dir / HOST).state_file.name == STATE_COPY
    assert json.loads(Workspace(a.clusters_dir / HOST).state_file.read_text()) == state
    a.push()
    b.pull()
    assert json.loads(Workspace(b.clusters_dir / HOST).state_file.read_text()) == state

    a.forget_state(HOST)
    assert not asyncio.run(postgres.query(database, "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


@pytest.mark.parametrize("path", ["../outside", "/etc/passwd", f"{HOST}/../../outside", ".terraform/x"])
def test_a_row_that_points_outside_a_clusters_folder_is_refused_and_nothing_written(
    machines: tuple[SharedStore, SharedStore], store_url: str, path: str, tmp_path: Path
) -> None:
    a, b = machines
    database = _database(store_url)
    asyncio.run(postgres.query(
        database,
        f"INSERT INTO {FILES_TABLE} (path, content, mode, generation) VALUES ($1, 'x', 384, nextval('{FILES_TABLE}_generation'))",
        path,
    ))
    with pytest.raises(StoreError, match="outside a cluster's folder"):
        b.pull()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"{INDEX}.lock"]


def test_a_store_that_does_not_answer_says_what_to_do(tmp_path: Path) -> None:
    from sandbox.launcher import free_port

    store = SharedStore(f"postgresql://postgres@127.0.0.1:{free_port()}/x?sslmode=disable", tmp_path)
    with pytest.raises(StoreError, match="does not answer.*unset MCHUB_SHARED_STORE_URL"):
        store.pull()


def _database(store_url: str) -> str:
    return postgres.database_of(store_url.removesuffix("?sslmode=disable"))

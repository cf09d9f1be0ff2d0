"""Every cluster's folder and Terraform state in PostgreSQL, for workers on several machines.

With MCHUB_SHARED_STORE_URL set, each machine keeps its own clusters folder, as one machine
does, and the store is what they share:

- Terraform's state lives in Terraform's `pg` backend, one schema per cluster
  (mchub.terraform.config.backend_schema), with Terraform's own locking; a Terraform killed mid-apply leaves there
  what it had saved. Each folder keeps a read-only copy of it (`STATE_COPY`) for the hub's own
  readers, refreshed from the backend (`copy_state`).
- Every other file of `clusters/` (requests, specs, main.tf.json, plan files, records, logs,
  archives) is a row of `FILES_TABLE`, numbered by the change that wrote it. `pull` brings
  the changes made since this machine's last pull (deletions included); `push` sends the files
  this machine changed since. `.terraform/` is not shared: `terraform init` makes it again on
  each machine (the dependency lock file is shared, so it makes the same).

A cluster's runs take turns through its Terraform lock (flows/cluster_lock.py), which pulls
when taken and pushes before it is let go; the web pages and the CLI pull before they read
and push what they write (a request, a new expiration date). The numbering is given under a
lock of the store, so a pull never misses a change committed late.
"""

import asyncio
import fcntl
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
from pydantic import BaseModel

from mchub.errors import MCHubError
from mchub.private_file import write_private
from mchub.settings import get_settings
from mchub.terraform.config import backend_schema

FILES_TABLE = "mchub_cluster_files"
STATE_COPY = "terraform.tfstate.shared"
"""The copy of the cluster's state in its folder. Not `terraform.tfstate`: Terraform would take
that for a local state to migrate into the backend."""
NOT_SHARED = (".terraform",)
"""Folders made again on each machine."""
INDEX = ".shared-store.json"
"""What this machine last pulled and pushed, in its clusters folder."""
_ADVISORY_KEY = 0x6D6368756221  # "mchub!": the store's own lock, held while a change is numbered
CONNECT_SECONDS = 10.0

T = TypeVar("T")


class StoreError(MCHubError):
    """The shared store cannot be reached or used; the message says what to fix."""


class _Index(BaseModel):
    generation: int = 0
    """The newest change pulled."""
    files: dict[str, tuple[int, int]] = {}
    """Each shared file as this machine last pulled or pushed it: size and mtime (ns)."""


class SharedStore:
    """The store at `url` (a libpq URL, as Terraform's pg backend takes it), seen from `clusters_dir`."""

    def __init__(self, url: str, clusters_dir: Path) -> None:
        self._url = url
        self.clusters_dir = clusters_dir

    def __repr__(self) -> str:
        where = urlsplit(self._url)
        return f"SharedStore({where.hostname}:{where.port or 5432}{where.path})"

    def terraform_env(self) -> dict[str, str]:
        return {"PG_CONN_STR": self._url}

    def ensure(self) -> bool:
        """Create the database (when missing) and the files' table; True if the database was made."""
        return _run(self._ensure)

    def pull(self) -> int:
        """Bring every change made elsewhere since the last pull into the folders; return how many."""
        with self._index() as index:
            return _run(lambda: self._pull(index))

    def push(self) -> int:
        """Send the files this machine wrote or removed since it last pulled or pushed; return how many."""
        with self._index() as index:
            changed, gone = self._local_changes(index)
            if changed or gone:
                _run(lambda: self._push(index, changed, gone))
            return len(changed) + len(gone)

    def copy_state(self, hostname: str) -> bool:
        """Refresh the folder's copy of the cluster's state from the backend; True if it changed."""
        folder = self.clusters_dir / hostname
        if not folder.is_dir():
            return False
        text = _run(lambda: self._read_state(hostname))
        copy = folder / STATE_COPY
        if text is None or (copy.exists() and copy.read_text() == text):
            return False
        write_private(copy, text)
        return True

    def forget_state(self, hostname: str) -> None:
        _run(lambda: self._drop_schema(backend_schema(hostname)))

    # -- the database

    async def _drop_schema(self, schema: str) -> None:
        connection = await self._connect()
        try:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await connection.close()

    async def _connect(self, database: str | None = None) -> asyncpg.Connection:
        url = self._url if database is None else urlsplit(self._url)._replace(path=f"/{database}").geturl()
        where = urlsplit(self._url)
        try:
            return await asyncpg.connect(url, timeout=CONNECT_SECONDS)
        except (OSError, asyncio.TimeoutError) as error:
            raise StoreError(
                f"MCHUB_SHARED_STORE_URL: PostgreSQL at {where.hostname}:{where.port or 5432} does not answer "
                f"({error}); start it, or unset MCHUB_SHARED_STORE_URL to keep the clusters on this machine"
            ) from error
        except asyncpg.InvalidCatalogNameError as error:
            raise StoreError(
                f"MCHUB_SHARED_STORE_URL: the database {where.path.strip('/')!r} does not exist; `mchub up` "
                "creates it on its first start"
            ) from error
        except asyncpg.PostgresError as error:
            raise StoreError(
                f"MCHUB_SHARED_STORE_URL: PostgreSQL at {where.hostname} refused {where.username or 'the user'} "
                f"({error}); check the user and password in the URL"
            ) from error

    async def _ensure(self) -> bool:
        name = urlsplit(self._url).path.strip("/")
        created = False
        maintenance = await self._connect("postgres")
        try:
            if not await maintenance.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                try:
                    await maintenance.execute(f"CREATE DATABASE {_quoted(name)}")
                    created = True
                except asyncpg.DuplicateDatabaseError:
                    pass  # another machine made it meanwhile
                except asyncpg.PostgresError as error:
                    raise StoreError(
                        f"MCHUB_SHARED_STORE_URL: could not create the database {name!r} ({error}); create it "
                        f"(createdb {name}) or give the URL's user the CREATEDB right"
                    ) from error
        finally:
            await maintenance.close()
        connection = await self._connect()
        try:
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_KEY)
                await connection.execute(
                    f"CREATE SEQUENCE IF NOT EXISTS {FILES_TABLE}_generation;"
                    f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} ("
                    "  path text PRIMARY KEY,"
                    "  content bytea,"  # NULL: removed
                    "  mode integer NOT NULL,"
                    "  generation bigint NOT NULL)"
                )
        finally:
            await connection.close()
        return created

    async def _pull(self, index: _Index) -> int:
        connection = await self._connect()
        try:
            rows = await connection.fetch(
                f"SELECT path, content, mode, generation FROM {FILES_TABLE} WHERE generation > $1 ORDER BY generation",
                index.generation,
            )
        finally:
            await connection.close()
        touched: set[Path] = set()
        for row in rows:
            relative = _checked(row["path"])
            target = self.clusters_dir / relative
            if row["content"] is None:
                target.unlink(missing_ok=True)
                index.files.pop(relative, None)
                touched.add(self.clusters_dir / _folder_of(relative))
            else:
                _write(target, row["content"], row["mode"], self.clusters_dir)
                stat = target.stat()
                index.files[relative] = (stat.st_size, stat.st_mtime_ns)
            index.generation = max(index.generation, row["generation"])
        for folder in touched:
            _remove_if_emptied(folder)
        return len(rows)

    async def _push(self, index: _Index, changed: list[str], gone: list[str]) -> None:
        connection = await self._connect()
        try:
            async with connection.transaction():
                # Numbered and committed under one lock: a pull sees the changes in their order.
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_KEY)
                upsert = (
                    f"INSERT INTO {FILES_TABLE} (path, content, mode, generation) "
                    f"VALUES ($1, $2, $3, nextval('{FILES_TABLE}_generation')) "
                    "ON CONFLICT (path) DO UPDATE SET content = EXCLUDED.content, mode = EXCLUDED.mode, "
                    "generation = EXCLUDED.generation"
                )
                for relative in changed:
                    path = self.clusters_dir / relative
                    stat = path.stat()
                    await connection.execute(upsert, relative, path.read_bytes(), stat.st_mode & 0o777)
                    index.files[relative] = (stat.st_size, stat.st_mtime_ns)
                for relative in gone:
                    await connection.execute(upsert, relative, None, 0)
                    index.files.pop(relative, None)
        finally:
            await connection.close()

    async def _read_state(self, hostname: str) -> str | None:
        schema = backend_schema(hostname)
        connection = await self._connect()
        try:
            if not await connection.fetchval("SELECT to_regclass($1)", f"{schema}.states"):
                return None
            return await connection.fetchval(f"SELECT data FROM {schema}.states WHERE name = 'default'")
        finally:
            await connection.close()

    # -- this machine's folders

    def _local_changes(self, index: _Index) -> tuple[list[str], list[str]]:
        found = {relative: (stat.st_size, stat.st_mtime_ns) for relative, stat in self._shared_files()}
        changed = sorted(relative for relative, seen in found.items() if index.files.get(relative) != seen)
        gone = sorted(set(index.files) - set(found))
        return changed, gone

    def _shared_files(self) -> Iterator[tuple[str, os.stat_result]]:
        for folder, dirs, files in os.walk(self.clusters_dir):
            dirs[:] = [name for name in dirs if name not in NOT_SHARED and not name.startswith(".render-")]
            for name in files:
                path = Path(folder, name)
                relative = path.relative_to(self.clusters_dir).as_posix()
                # The index, half-written files, and Terraform's own lock beside a local state.
                if relative in (INDEX, f"{INDEX}.lock") or name.startswith(".") and name.endswith(".partial"):
                    continue
                if name == ".terraform.tfstate.lock.info":
                    continue
                yield relative, path.lstat()

    @contextmanager
    def _index(self) -> Iterator[_Index]:
        """This machine's index, held under a file lock: the pages, the CLI and the runs of one
        machine share its folders."""
        self.clusters_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.clusters_dir / INDEX
        with open(self.clusters_dir / f"{INDEX}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = _Index.model_validate_json(path.read_text()) if path.exists() else _Index()
            yield index
            write_private(path, index.model_dump_json())


def shared_store() -> SharedStore | None:
    """The store the settings name, None when the clusters stay on this machine."""
    settings = get_settings()
    if settings.shared_store_url is None:
        return None
    return SharedStore(settings.shared_store_url.get_secret_value(), settings.clusters_dir)


def pull() -> None:
    """Bring the changes made on other machines into this one's folders (nothing without a store)."""
    if (store := shared_store()) is not None:
        store.pull()


def push() -> None:
    """Send this machine's changes to the store (nothing without a store)."""
    if (store := shared_store()) is not None:
        store.push()


def copy_state(hostname: str) -> None:
    """Refresh the folder's copy of the cluster's state from the backend (nothing without a store)."""
    if (store := shared_store()) is not None:
        store.copy_state(hostname)


def forget_state(hostname: str) -> None:
    """Drop the backend's state of a cluster whose folder was archived (the archive keeps its
    copy, without the guest password): a new cluster of that name starts from nothing."""
    if (store := shared_store()) is not None:
        store.forget_state(hostname)


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end from synchronous code, inside an event loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()  # type: ignore[arg-type]


def _checked(relative: str) -> str:
    """A path of the store, refused unless it stays inside the clusters folder."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] in NOT_SHARED:
        raise StoreError(f"the shared store holds a file outside a cluster's folder ({relative!r}); remove its row")
    return path.as_posix()


def _folder_of(relative: str) -> str:
    """The folder a file belongs to: a cluster's, an archived one's, or the requests'."""
    parts = PurePosixPath(relative).parts
    return "/".join(parts[:2] if parts[0] == ".archive" and len(parts) > 2 else parts[:1])


def _write(target: Path, content: bytes, mode: int, clusters_dir: Path) -> None:
    for folder in reversed(target.relative_to(clusters_dir).parents):
        (clusters_dir / folder).mkdir(mode=0o700, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    os.chmod(partial, mode & 0o700)  # never more than its owner: these files hold secrets
    os.replace(partial, target)


def _remove_if_emptied(folder: Path) -> None:
    """Remove a folder whose shared files are all gone (archived elsewhere): what is left is
    this machine's own `.terraform/`, made again if the name is used again."""
    if not folder.is_dir():
        return
    left = [path for path in folder.rglob("*") if path.is_file() and path.relative_to(folder).parts[0] not in NOT_SHARED]
    if not left:
        shutil.rmtree(folder)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


"""Take secrets out of a folder that is kept for the record (an archived cluster's).

An archived folder keeps what the cluster was (its spec, state, logs), not the guest
password: each secret is replaced by REMOVED wherever it appears. JSON (Terraform's state,
its variables, cluster.json), JSON lines (the logs) and YAML (the spec) are read and
written back as data, since their writers escape some characters (Terraform writes `<` as
`\\u003c`); other text is edited as text. A file that cannot be edited and holds a secret,
and Terraform's binary plan files (compressed: a secret cannot be seen in them), are removed.
"""

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

REMOVED = "(removed when the folder was archived)"

_SKIPPED_FOLDERS = {".terraform"}  # providers and modules Terraform downloaded: nothing of the cluster's
_REMOVED_SUFFIXES = {".tfplan"}


def remove_secrets(folder: Path, secrets: Iterable[str]) -> list[Path]:
    """Replace each of `secrets` in every file under `folder`; returns the files removed."""
    wanted = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    removed = []
    for path in _files(folder):
        if path.suffix in _REMOVED_SUFFIXES or not _scrub_file(path, wanted):
            path.unlink()
            removed.append(path)
    return removed


def _files(folder: Path) -> list[Path]:
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if name not in _SKIPPED_FOLDERS]
        found += [Path(parent) / name for name in names if not os.path.islink(Path(parent) / name)]
    return found


def _scrub_file(path: Path, secrets: list[str]) -> bool:
    """Take the secrets out of the file at `path`; False if it holds one and cannot be edited."""
    if not secrets:
        return True
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return not any(secret.encode() in raw for secret in secrets)
    scrubbed = _scrub_text(text, path.suffix, lambda value: _scrubbed(value, secrets))
    for secret in secrets:  # what a writer left unescaped that the reader did not see as data
        scrubbed = scrubbed.replace(secret, REMOVED)
    if scrubbed != text:
        _replace(path, scrubbed)
    return True


def _scrub_text(text: str, suffix: str, scrub: Callable[[Any], Any]) -> str:
    """`text` with `scrub` applied to its data; unchanged where no data changed."""
    if suffix != ".log":  # a log of one line would read as one JSON document
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            scrubbed = scrub(data)
            return text if scrubbed == data else json.dumps(scrubbed, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        scrubbed = scrub(data)
        return text if scrubbed == data else yaml.safe_dump(scrubbed, sort_keys=False, allow_unicode=True, width=1 << 16)
    return "".join(_scrub_line(line, scrub) for line in text.splitlines(keepends=True))


def _scrub_line(line: str, scrub: Callable[[Any], Any]) -> str:
    """A line of JSON (a log's), as data; any other line as it is."""
    body = line.rstrip("\r\n")
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return line
    scrubbed = scrub(value)
    return line if scrubbed == value else json.dumps(scrubbed) + line[len(body):]


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REMOVED)
        return value
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    return value


def _replace(path: Path, text: str) -> None:
    """Rewrite the file whole (a crash leaves the old or the new one), keeping its mode."""
    partial = path.with_name(f".{path.name}.scrubbing")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(partial, path.stat().st_mode & 0o777)
    os.replace(partial, path)

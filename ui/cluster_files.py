"""What the pages read from a cluster's folder: its age, an apply's per-resource progress
(replayed from the apply's log), and its Terraform logs in a readable form."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mchub.cluster.workspace import Workspace, folder_of
from mchub.settings import get_settings
from mchub.terraform.progress import ApplyProgress

LOG_LINES = 400
"""The newest lines of a log a page shows (the file keeps them all)."""


def workspace_of(hostname: str) -> Workspace | None:
    """The folder of `hostname`, None when there is none (never built, or archived);
    WorkspaceError for a hostname that is not one, or a folder that leads out of clusters/."""
    root = folder_of(get_settings().clusters_dir, hostname)
    return Workspace(root) if root.is_dir() else None


def apply_progress(ws: Workspace, step: str, since: datetime) -> ApplyProgress | None:
    """The progress of the apply logged in `<step>.log` ("apply", or "destroy"), replayed from
    its messages; None when that log is older than `since` (the apply has not started yet)."""
    log = ws.logs / f"{step}.log"
    if not log.exists() or datetime.fromtimestamp(log.stat().st_mtime, UTC) < since:
        return None
    progress = ApplyProgress()
    for event in _events(log):
        progress.update(event)
    return progress


def log_files(ws: Workspace) -> list[Path]:
    """The cluster's Terraform logs, the most recently written first."""
    return sorted(ws.logs.glob("*.log"), key=lambda path: path.stat().st_mtime, reverse=True)


def readable_log(path: Path, limit: int = LOG_LINES) -> str:
    """The last `limit` lines of a log as a person reads them: time, level and message."""
    lines = [_readable(line) for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    skipped = len(lines) - limit
    shown = lines[-limit:] if skipped > 0 else lines
    return (f"… {skipped} earlier lines in {path}\n" if skipped > 0 else "") + "\n".join(shown)


def _events(log: Path) -> Iterator[dict]:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a log being written may be incomplete
        if isinstance(event, dict):
            yield event


def _readable(line: str) -> str:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(event, dict) or "@message" not in event:
        return line
    stamp = str(event.get("@timestamp", ""))[11:19]
    level = str(event.get("@level", "info"))
    marker = "" if level == "info" else f"{level.upper()}: "
    text = f"{stamp} {marker}{event['@message']}"
    detail = (event.get("diagnostic") or {}).get("detail")
    return f"{text}\n    {detail}" if detail else text

"""Audience export files: written owner-only, deleted once older than the retention period.

The email and SMS files hold guests' raw addresses and numbers, for the provider to send to; once
sent, a copy on the Regulars host is only a liability. Files are created 0600 in 0700 folders,
and each export (and each `regulars forget`) deletes the files older than
REGULARS_EXPORT_RETENTION_DAYS (default 30: a month of exports to check a campaign against).
The export log keeps what each file held, in counts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from regulars.settings import Settings

RETENTION_SETTING = "REGULARS_EXPORT_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
FILE_MODE, FOLDER_MODE = 0o600, 0o700


class RetentionError(ValueError):
    pass


def exports_dir(settings: Settings) -> Path:
    return settings.state_dir / "exports"


def retention_days() -> int:
    value = os.environ.get(RETENTION_SETTING, "").strip() or str(DEFAULT_RETENTION_DAYS)
    try:
        days = int(value)
    except ValueError:
        days = -1
    if days < 0:
        raise RetentionError(
            f"{RETENTION_SETTING}={value!r} is not a number of days: set it to the whole days "
            f"audience export files are kept (0 keeps none; unset, {DEFAULT_RETENTION_DAYS})."
        )
    return days


def owner_only_folder(path: Path, root: Path) -> None:
    """`path` and every folder between it and `root` (included), created or narrowed to 0700."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    for folder in (path, *path.relative_to(root).parents):
        (root / folder).chmod(FOLDER_MODE)


def open_owner_only(path: Path, root: Path, mode: str = "w", **options):
    """`open(path, mode)` on a new file readable by its owner alone, whatever the umask."""
    owner_only_folder(path.parent, root)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    return os.fdopen(descriptor, mode, **options)


def expire(settings: Settings, now: float | None = None) -> int:
    """Delete export files older than the retention period (by modification time, the clock
    they were written by); the number deleted. Emptied folders go too."""
    root = exports_dir(settings)
    if not root.exists():
        return 0
    cutoff = (time.time() if now is None else now) - retention_days() * 86_400
    deleted = 0
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            deleted += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return deleted

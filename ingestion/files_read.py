"""Which files a reader has read, by name and content rather than by modification time.

A cursor on `modification_date` skips, without a word, a new file whose time is older than the
newest file read (copied with `cp -p` or `rsync -t`, restored from a backup, written by a host
whose clock is behind). So each reader keeps, in its dlt resource state, the files it has read:
path -> size, modification time and SHA-256. A listed file is read when its path is new, or
when its size or time changed and its content is one the reader has not read under any path; a
re-copied identical file, or the same content under a new name, is not read twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import dlt
from dlt.sources.filesystem import FileItemDict

logger = logging.getLogger(__name__)

STATE_KEY = "files_read"
HASH_CHUNK_BYTES = 1 << 20


def content_hash(item: FileItemDict) -> str:
    """SHA-256 of the file's stored bytes (a gzip file's compressed bytes: no need to inflate)."""
    digest = hashlib.sha256()
    with item.open(mode="rb", compression="disable") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _seed_from_cursor(state: dict, items: list[FileItemDict], lag_seconds: float) -> dict:
    """The files an earlier, modification-time cursor already read, so an upgrade reads none
    of them again; their hash is left out (taken if one ever changes)."""
    last_value = state.get("incremental", {}).get("modification_date", {}).get("last_value")
    if last_value is None:
        return {}
    cutoff = last_value.timestamp() - lag_seconds
    return {
        item["relative_path"]: [item["size_in_bytes"], item["modification_date"].isoformat(), None]
        for item in items
        if item["modification_date"].timestamp() < cutoff
    }


def unread(
    items: list[FileItemDict], state: dict, legacy_lag_seconds: float = 0
) -> list[FileItemDict]:
    """The files of `items` not read before, recording them in `state` as read."""
    if STATE_KEY not in state:
        state[STATE_KEY] = _seed_from_cursor(state, items, legacy_lag_seconds)
    files: dict[str, list] = state[STATE_KEY]
    by_hash = {entry[2]: path for path, entry in files.items() if entry[2]}
    fresh = []
    for item in items:
        path, size = item["relative_path"], item["size_in_bytes"]
        modified = item["modification_date"].isoformat()
        known = files.get(path)
        if known is not None and known[:2] == [size, modified]:
            continue
        sha256 = content_hash(item)
        same = by_hash.setdefault(sha256, path)
        files[path] = [size, modified, sha256]
        if same != path:
            logger.warning("%s has the same content as %s, read before: not read again", path, same)
            continue
        if known is not None and known[2] == sha256:
            continue  # the same file copied again: only its time changed
        fresh.append(item)
    return fresh


def unread_files(name: str, legacy_lag_seconds: float = 0):
    """A dlt transformer passing on the listed files (pages of `FileItemDict`) not read before.

    `name` is the resource the state lives under; a reader that had a `modification_date`
    cursor under that name keeps what it read.
    """

    @dlt.transformer(name=name)
    def files(items: list[FileItemDict]) -> Iterator[list[FileItemDict]]:
        fresh = unread(items, dlt.current.resource_state(), legacy_lag_seconds)
        if fresh:
            yield fresh

    return files

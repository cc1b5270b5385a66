"""Which files a reader takes as read: by path and content, and after an upgrade from the
modification-time cursor."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from dlt.sources.filesystem import FileItemDict, fsspec_filesystem, glob_files

from ingestion.files_read import STATE_KEY, unread


def listed(folder: Path) -> list[FileItemDict]:
    client = fsspec_filesystem(str(folder))[0]
    return [FileItemDict(item, client) for item in glob_files(client, str(folder), "*.csv")]


def names(items: list[FileItemDict]) -> list[str]:
    return sorted(item["file_name"] for item in items)


def test_an_upgraded_reader_keeps_what_its_cursor_read_and_reads_the_rest(tmp_path: Path):
    """The earlier cursor's state is all an upgraded pipeline has: files older than its last
    value minus the lag were read; a newer file, and an old file copied in since, were not."""
    for name, day in (("jan.csv", 1), ("feb.csv", 2), ("mar.csv", 3)):
        path = tmp_path / name
        path.write_text(f"month,{name}\n")
        stamp = datetime(2025, day, 1, tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    # Ten minutes after feb.csv: past the 300 s lag within which the cursor read files again.
    cursor = datetime(2025, 2, 1, 0, 10, tzinfo=UTC)
    state = {"incremental": {"modification_date": {"last_value": cursor}}}

    assert names(unread(listed(tmp_path), state, legacy_lag_seconds=300)) == ["mar.csv"]
    assert sorted(state[STATE_KEY]) == ["feb.csv", "jan.csv", "mar.csv"]
    assert state[STATE_KEY]["jan.csv"][2] is None  # taken as read, never hashed
    assert unread(listed(tmp_path), state) == []

    (tmp_path / "mar copy.csv").write_bytes((tmp_path / "mar.csv").read_bytes())
    (tmp_path / "apr.csv").write_text("month,apr\n")
    assert names(unread(listed(tmp_path), state)) == ["apr.csv"]

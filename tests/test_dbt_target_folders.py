"""dbt's per-invocation folders under target/ are kept for the newest runs only."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.dbt import prune_invocation_folders


def make_folders(target: Path, asset: str, count: int) -> list[Path]:
    folders = []
    for number in range(count):
        folder = target / f"{asset}-{number:07x}-abcdef{number % 10}"
        (folder / "run").mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
        os.utime(folder, (1_700_000_000 + number, 1_700_000_000 + number))
        folders.append(folder)
    return folders


def test_an_asset_keeps_its_newest_invocation_folders_and_no_one_elses_are_touched(tmp_path):
    target = tmp_path / "target"
    build = make_folders(target, "regulars_dbt", 14)
    daily = make_folders(target, "regulars_dbt_daily", 12)
    (target / "manifest.json").write_text("{}")  # the parse's own artifacts stay

    prune_invocation_folders(build[-1], keep=10)

    assert [folder.exists() for folder in build] == [False] * 4 + [True] * 10
    assert all(folder.exists() for folder in daily)
    assert (target / "manifest.json").exists()

    prune_invocation_folders(daily[-1], keep=3)
    assert [folder.exists() for folder in daily] == [False] * 9 + [True] * 3
    assert sum(folder.exists() for folder in build) == 10

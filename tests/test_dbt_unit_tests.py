"""dbt's unit tests (yml `unit_tests:` given rows, expected rows), run once here.

Runs leave them out (`--exclude-resource-type unit_test` in orchestration/dbt.py): their inputs
are fixed, so only a change of code can change their verdict, and CI runs this test on every
change. dbt reads the upstream relations' column types from a warehouse, so they run against a
copy of the marts world's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from regulars.settings import Settings
from tests.conftest import run_dbt


def test_every_dbt_unit_test_passes(marts_world: Settings, tmp_path: Path):
    copy = tmp_path / "warehouse" / marts_world.warehouse_path.name
    copy.parent.mkdir()
    shutil.copy(marts_world.warehouse_path, copy)
    target = tmp_path / "target"

    run_dbt(copy, target, "test", "--select", "test_type:unit")

    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    manifest = json.loads((target / "manifest.json").read_text())
    assert len(unit_tests) == len(manifest["unit_tests"]) > 15
    assert {r["status"] for r in unit_tests} == {"pass"}

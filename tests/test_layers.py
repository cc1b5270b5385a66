"""The layers' import contracts ([tool.importlinter] in pyproject.toml) hold, and would catch a
module that imports upwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGES = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    # The root first on the path: the packages it holds are the ones analysed, not the install.
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)


def test_the_checkout_keeps_every_contract() -> None:
    done = lint_imports(CHECKOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            CHECKOUT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(CHECKOUT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        # The base reaching up: settings would pull in Dagster for every collector process.
        ("regulars/settings.py", "orchestration.pools", "The shared base"),
        # Ingestion reaching up into the gate it feeds.
        ("ingestion/pipelines.py", "expectations.gate", "Command line > orchestration"),
        # Orchestration reaching into the command line (which imports orchestration).
        ("orchestration/serving.py", "regulars.cli.summary", "Command line > orchestration"),
        # A production path importing the simulator.
        ("orchestration/pools.py", "simulator.world", "Only the command line's demo"),
        # The simulator depending on the code it stands in for.
        ("simulator/model/rand.py", "regulars.settings", "The simulator stands alone"),
    ],
)
def test_an_upward_import_breaks_its_contract(
    copy_of_the_code: Path, importer: str, imported: str, contract: str
) -> None:
    module = copy_of_the_code / importer
    module.write_text(module.read_text() + f"\nimport {imported}  # planted\n")
    done = lint_imports(copy_of_the_code)
    assert done.returncode == 1, done.stdout
    # One planted import may break more than its own contract: the base importing orchestration
    # also lets ingestion reach orchestration through it.
    assert " 0 broken." not in done.stdout
    broken = done.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    importer_module = importer.removesuffix(".py").replace("/", ".")
    assert f"{importer_module} -> {imported}" in broken


def test_loading_the_code_location_changes_nothing_around_it(tmp_path: Path) -> None:
    """`dagster dev` and every run worker import orchestration.definitions: the import leaves
    the environment and DAGSTER_HOME as it found them, but for DLT_PROJECT_DIR, which it sets
    to the project so dlt reads its `.dlt/` (regulars/settings.py). (dlt still writes each
    pipeline's working folder when Dagster builds the pipeline objects: that is dlt's state.)"""
    root = tmp_path / "chain"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(CHECKOUT),
        "REGULARS_DATA_DIR": str(root / "data"),
        "REGULARS_WAREHOUSE": str(root / "warehouse" / "regulars.duckdb"),
        "REGULARS_STATE_DIR": str(root / "var"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    probe = (
        "import json, os\n"
        "before = dict(os.environ)\n"
        "import orchestration.definitions as location\n"
        "assert location.defs.resolve_asset_graph().get_all_asset_keys()\n"
        "print(json.dumps({'before': before, 'after': dict(os.environ)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=CHECKOUT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    changed = {
        name
        for name in set(seen["before"]) | set(seen["after"])
        if seen["before"].get(name) != seen["after"].get(name)
    }
    # Dagster's own import marks itself; nothing of Regulars' paths may change.
    assert not {name for name in changed if name.startswith(("REGULARS_", "DAGSTER_HOME", "PATH"))}
    assert seen["after"]["DLT_PROJECT_DIR"] == str(CHECKOUT)
    assert not (root / "dagster_home").exists()

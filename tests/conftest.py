"""Shared fixtures: simulated worlds in temporary directories, each costly one built once a session.

From cheapest to dearest:
- `regulars_env`: an empty checkout-like layout of the test's own.
- `tiny_world`: the tiny world's source files, simulated once per session and copied in.
- `materialized_world`: the tiny world after a full materialisation through Dagster, one per lake
  destination, built once per session and restored for each test that asks for it, so the test
  may write to it. It is restored at the path it was built at: the filesystem lake's views and
  dlt's state hold absolute paths.
- `marts_world`: a bigger world materialised once per session for the planted-truth tests; they
  only read it.

Tests that use a materialised world are marked `e2e` by `pytest_collection_modifyitems`, so the
marker always says what a test costs. Under pytest-xdist (a worker per core, pyproject.toml) the
same hook puts every test of one materialised world in one `xdist_group`, so each world is still
built once per run, on the worker that runs its tests.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from regulars.settings import Settings, load_settings, prepare_dagster_home

# `customers` is the expected sign-ups over `acquisition_days`: about 140 guests, 270 orders.
TINY_WORLD = {
    "seed": 11,
    "customers": 150,
    "days": 60,
    "acquisition_days": 60,
    "start_date": date(2025, 3, 1),
}

# Big enough for the planted truths the marts must find (a worst-rated item needs ~30 responses,
# churn needs months of history), small enough to build and materialise in a few minutes.
MARTS_WORLD = {
    "seed": 7,
    "customers": 1500,
    "days": 150,
    "acquisition_days": 150,
    "start_date": date(2025, 1, 1),
}

DESTINATIONS = ("duckdb", "filesystem")
# Fixtures that run the pipeline through Dagster: a test that needs one, directly or not, is `e2e`.
MATERIALISED_FIXTURES = {"saved_worlds", "marts_world"}


def pytest_configure(config: pytest.Config) -> None:
    # GX Data Docs pages cost seconds a batch; the one test that checks them turns them on.
    os.environ["REGULARS_GX_DATA_DOCS"] = "0"
    # The checkout's `.dlt/` for every test, as for a command run from it: load_settings() would
    # otherwise pin the first REGULARS_PROJECT_DIR a test points at, for the rest of the worker.
    os.environ.setdefault("DLT_PROJECT_DIR", str(Path(__file__).resolve().parent.parent))


# First: pytest-xdist reads the groups in its own hook of the same name.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MATERIALISED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        group = world_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # The costly tests first. pytest-xdist hands out the world groups first (its loadscope
    # reorder: most tests first), then every other test in this order: a costly one left for
    # last ran alone on one worker while the others had finished (the source matrix, about
    # 100 s of a 14-minute run's tail here).
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


# Every phase of every test as the controller heard of it: (worker, test, phase, start, stop).
_PHASES: list[tuple[str, str, str, float, float]] = []
TIMELINE_SHOWN = 25


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    worker = gateway.id if gateway is not None else "main"
    _PHASES.append((worker, report.nodeid, report.when, report.start, report.stop))


def pytest_terminal_summary(terminalreporter) -> None:
    """When each worker was busy, and when the slowest phases ran and where.

    CI keeps only this output. `--durations` says how long a test took, not what ran beside it,
    and on a loaded machine that is most of why it took that long.
    """
    if not _PHASES:
        return
    began = min(start for *_, start, _ in _PHASES)
    write = terminalreporter.write_line
    terminalreporter.section("timeline (seconds from the first test)")
    for worker in sorted({phase[0] for phase in _PHASES}):
        own = [phase for phase in _PHASES if phase[0] == worker]
        busy = sum(stop - start for *_, start, stop in own)
        ended = max(stop for *_, stop in own) - began
        write(f"{worker}: busy {busy:.0f} s, done at +{ended:.0f} s, {len(own)} phases")
    slowest = sorted(_PHASES, key=lambda phase: phase[3] - phase[4])[:TIMELINE_SHOWN]
    for worker, nodeid, when, start, stop in sorted(slowest, key=lambda phase: phase[3]):
        write(f"+{start - began:5.0f} to +{stop - began:5.0f} {worker:5} {when:8} {nodeid}")


def world_group(item: pytest.Item) -> str | None:
    """The costly state a test shares with others: the world it reads, or the UI it drives."""
    names = set(getattr(item, "fixturenames", ()))
    if "marts_world" in names:
        return "marts_world"
    if "saved_worlds" in names:
        params = getattr(getattr(item, "callspec", None), "params", {})
        destination = params.get("scenario", params.get("materialized_world", "duckdb"))
        return f"tiny_world_on_{destination}"
    if item.get_closest_marker("browser"):
        return "browser"
    return None


def layout_env(root: Path, destination: str | None = None) -> dict[str, str]:
    """The environment that points every Regulars path into `root`."""
    env = {
        "REGULARS_DATA_DIR": str(root / "data"),
        "REGULARS_WAREHOUSE": str(root / "warehouse" / "regulars.duckdb"),
        "REGULARS_STATE_DIR": str(root / "var"),
        "DAGSTER_HOME": str(root / "var" / "dagster_home"),
    }
    if destination is not None:
        env["REGULARS_DESTINATION"] = destination
    return env


def point_at(
    monkeypatch: pytest.MonkeyPatch, root: Path, destination: str | None = None
) -> Settings:
    """Point this test's environment at `root`, with nothing inherited that would point away."""
    for inherited in (
        "SOURCES__ORDERING__CREDENTIALS",
        "REGULARS_DESTINATION",
        "DESTINATION__FILESYSTEM__BUCKET_URL",
        "REGULARS_LANDING_URL",
        "SOURCES__ORDER_HISTORY__BUCKET_URL",
        "REGULARS_ENGINE",
        "REGULARS_SPARK_DIR",
        "REGULARS_SPARK_WAREHOUSE",
    ):
        monkeypatch.delenv(inherited, raising=False)
    for name, value in layout_env(root, destination).items():
        monkeypatch.setenv(name, value)
    # As the command line does: the code location itself sets nothing up.
    prepare_dagster_home(Path(os.environ["DAGSTER_HOME"]))
    return load_settings()


def materialize(
    settings: Settings, analytics: bool = True, keep_history: bool = False, exclude=None
):
    """Every asset through Dagster (demo APIs up, ephemeral instance), but `exclude`.

    `analytics=False` leaves the statistical fits out, for tests of plumbing that do not read
    them: their tables keep what the world's first materialisation wrote. `keep_history` runs on
    the world's own instance (its DAGSTER_HOME), as `regulars materialize` does, so a later run
    there builds only the days since (orchestration.materialize.days_to_build).
    """
    import dagster as dg

    from orchestration.dbt import ANALYTICS
    from orchestration.materialize import materialize_everything
    from regulars.cli.demo import demo_apis

    if not analytics:
        exclude = ANALYTICS if exclude is None else exclude | ANALYTICS
    instance = dg.DagsterInstance.get() if keep_history else dg.DagsterInstance.ephemeral()
    with demo_apis(settings), instance:
        return materialize_everything(settings, instance, exclude=exclude)


def run_dbt(warehouse: Path, target: Path, *args: str) -> None:
    """dbt in this process (dbtRunner) against `warehouse`, its artifacts under `target`.

    In-process saves a second interpreter and dbt's imports on every call.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    project = Path(__file__).resolve().parent.parent / "dbt_project"
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setenv("REGULARS_WAREHOUSE", str(warehouse))
            result = dbtRunner().invoke(
                [
                    *args,
                    *("--project-dir", str(project), "--profiles-dir", str(project)),
                    *("--target-path", str(target), "--log-path", str(target / "logs")),
                    "--quiet",
                ]
            )
    finally:
        # dbt-duckdb keeps the database open in the process after a run; the test's own
        # connections to the file (read-only, or an ATTACH) would then be refused.
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()
    failed = [r for r in (result.result or []) if getattr(r, "status", None) in ("error", "fail")]
    assert result.success and not failed, (
        f"dbt {' '.join(args)} failed: {result.exception or ''} "
        + "; ".join(f"{r.node.unique_id}: {r.message}" for r in failed)
    )


@pytest.fixture(scope="session")
def fresh_dbt_manifest(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """Parse the dbt project once per run, so Dagster's graph is the SQL as it is now.

    xdist workers share the project's target/ folder: the first to get here parses while the
    others wait, and they find it done (a marker in the run's shared temporary folder).
    """
    from filelock import FileLock

    from orchestration import dbt as dbt_module

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the folder every worker's own temporary folder sits in
    with FileLock(shared / "dbt_manifest.lock"):
        done = shared / "dbt_manifest.parsed"
        if not done.exists():
            # With the simulated chain's vars, as the runs of every world here pass them.
            from regulars.cli.demo import SIMULATED_CHAIN
            from regulars.settings import environment

            with environment({"CHAIN__TIMEZONE": SIMULATED_CHAIN["timezone"]}):
                settings = load_settings()
                dbt_module.prepare(dbt_module.dbt_project(settings), settings)
            done.touch()


@pytest.fixture
def regulars_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point every Regulars path at a fresh temporary checkout-like layout."""
    return point_at(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def tiny_world_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world's source files, simulated once; tests get copies."""
    from simulator import WorldConfig, build_world

    data = tmp_path_factory.mktemp("tiny_world_files") / "data"
    build_world(WorldConfig(**TINY_WORLD), data)
    return data


@pytest.fixture
def tiny_world(regulars_env: Settings, tiny_world_files: Path) -> Settings:
    """A ~140-guest, 60-day world in the temporary data dir (a copy: the test may change it)."""
    # copy2 keeps modification times, which the landing-zone readers' cursors compare.
    shutil.copytree(tiny_world_files, regulars_env.data_dir)
    return regulars_env


@dataclass(frozen=True)
class SavedWorld:
    """A materialised world's files, and the place it was built (and is restored) at."""

    live: Path
    saved: Path
    destination: str

    def restore(self) -> None:
        shutil.rmtree(self.live, ignore_errors=True)
        shutil.copytree(self.saved, self.live, symlinks=True)


@pytest.fixture(scope="session")
def saved_worlds(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_files: Path, fresh_dbt_manifest
) -> Iterator[Callable[[str], SavedWorld]]:
    """The tiny world materialised once per destination, on first request."""
    saved: dict[str, SavedWorld] = {}

    def get(destination: str) -> SavedWorld:
        if destination not in saved:
            root = tmp_path_factory.mktemp(f"materialized_{destination}")
            live, keep = root / "live", root / "saved"
            shutil.copytree(tiny_world_files, live / "data")
            with pytest.MonkeyPatch.context() as monkeypatch:
                settings = point_at(monkeypatch, live, destination)
                result = materialize(settings, keep_history=True)
                assert result.success, f"materialising the tiny world on {destination} failed"
            shutil.copytree(live, keep, symlinks=True)
            saved[destination] = SavedWorld(live=live, saved=keep, destination=destination)
        return saved[destination]

    yield get


@pytest.fixture
def materialized_world(
    request: pytest.FixtureRequest,
    saved_worlds: Callable[[str], SavedWorld],
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The tiny world, materialised (lake on `duckdb` unless parametrised with `filesystem`)."""
    world = saved_worlds(getattr(request, "param", "duckdb"))
    world.restore()
    return point_at(monkeypatch, world.live, world.destination)


@pytest.fixture(scope="session")
def marts_world(tmp_path_factory: pytest.TempPathFactory, fresh_dbt_manifest) -> Settings:
    """One world, built and materialised once per session, for tests that only read the marts.

    Tests must not write to it: they open the warehouse read-only and compare with the truth file
    (`settings.data_dir / "truth.json"`).
    """
    import dagster as dg

    from orchestration.materialize import materialize_everything
    from regulars.cli.demo import demo_apis
    from simulator import WorldConfig, build_world

    root = tmp_path_factory.mktemp("marts_world")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_at(monkeypatch, root)
        build_world(WorldConfig(**MARTS_WORLD), settings.data_dir)
        with demo_apis(settings), dg.DagsterInstance.ephemeral() as instance:
            result = materialize_everything(settings, instance)
            assert result.success, "materialising the marts world failed: see the log above"
            _keep_model_metadata(instance, root / "model_metadata.json")
    return settings


def _keep_model_metadata(instance, path: Path) -> None:
    """What Dagster recorded for the analytics models, kept for tests after the instance is gone."""
    from orchestration.fit_metadata import MODEL_METADATA

    recorded = {}
    for key in MODEL_METADATA:
        event = instance.get_latest_materialization_event(key)
        materialization = event.asset_materialization if event else None
        recorded["/".join(key.path)] = (
            {name: str(value.value) for name, value in materialization.metadata.items()}
            if materialization
            else None
        )
    path.write_text(json.dumps(recorded, indent=2))


@pytest.fixture(scope="module")
def model_metadata(marts_world: Settings) -> dict:
    """Metadata of the analytics models' latest materialisations in the marts world, by asset."""
    return json.loads((marts_world.data_dir.parent / "model_metadata.json").read_text())


@pytest.fixture(scope="module")
def warehouse(marts_world: Settings):
    """The marts world's warehouse, opened read-only."""
    import duckdb

    connection = duckdb.connect(str(marts_world.warehouse_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def truth(marts_world: Settings) -> dict:
    """What the simulator planted in the marts world (its truth.json)."""
    return json.loads((marts_world.data_dir / "truth.json").read_text())

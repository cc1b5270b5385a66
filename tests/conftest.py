"""Shared fixtures: small simulated worlds in temporary directories, never hand-typed data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from regulars.settings import Settings, load_settings

# `customers` is the expected sign-ups over `acquisition_days`: about 140 guests, 270 orders.
TINY_WORLD = {
    "seed": 11,
    "customers": 150,
    "days": 60,
    "acquisition_days": 60,
    "start_date": date(2025, 3, 1),
}


@pytest.fixture(scope="session", autouse=True)
def fresh_dbt_manifest() -> None:
    """Parse the dbt project once per session, so tests see the SQL as it is now."""
    from orchestration import dbt as dbt_module

    settings = load_settings()
    dbt_module.prepare(dbt_module.dbt_project(settings))


@pytest.fixture
def regulars_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point every Regulars path at a fresh temporary checkout-like layout."""
    monkeypatch.setenv("REGULARS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGULARS_WAREHOUSE", str(tmp_path / "warehouse" / "regulars.duckdb"))
    monkeypatch.setenv("REGULARS_STATE_DIR", str(tmp_path / "var"))
    dagster_home = tmp_path / "var" / "dagster_home"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.delenv("SOURCES__ORDERING__CREDENTIALS", raising=False)
    return load_settings()


@pytest.fixture
def tiny_world(regulars_env: Settings) -> Settings:
    """A ~140-guest, 60-day world in the temporary data dir."""
    from simulator import WorldConfig, build_world

    build_world(WorldConfig(**TINY_WORLD), regulars_env.data_dir)
    return regulars_env


# Big enough for the planted truths the marts must find (a worst-rated item needs ~30 responses,
# churn needs months of history), small enough to build and materialise in about a minute.
MARTS_WORLD = {
    "seed": 7,
    "customers": 1500,
    "days": 150,
    "acquisition_days": 150,
    "start_date": date(2025, 1, 1),
}


@pytest.fixture(scope="session")
def marts_world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One world, built and materialised once per session, for tests that only read the marts.

    Tests must not write to it: they open the warehouse read-only and compare with the truth file
    (`settings.data_dir / "truth.json"`).
    """
    import dagster as dg

    from orchestration.materialize import materialize_everything
    from regulars.demo import demo_apis
    from simulator import WorldConfig, build_world

    root = tmp_path_factory.mktemp("marts_world")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("REGULARS_DATA_DIR", str(root / "data"))
        monkeypatch.setenv("REGULARS_WAREHOUSE", str(root / "warehouse" / "regulars.duckdb"))
        monkeypatch.setenv("REGULARS_STATE_DIR", str(root / "var"))
        monkeypatch.delenv("SOURCES__ORDERING__CREDENTIALS", raising=False)
        settings = load_settings()
        build_world(WorldConfig(**MARTS_WORLD), settings.data_dir)
        with demo_apis(settings), dg.DagsterInstance.ephemeral() as instance:
            result = materialize_everything(settings, instance)
            assert result.success, "materialising the marts world failed: see the log above"
            _keep_model_metadata(instance, root / "model_metadata.json")
    return settings


def _keep_model_metadata(instance, path: Path) -> None:
    """What Dagster recorded for the analytics models, kept for tests after the instance is gone."""
    from orchestration.analytics import MODEL_METADATA

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

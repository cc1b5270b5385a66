"""Build a world into a directory, and move it forward day by day.

The world is a pure function of (config, as_of): both entry points regenerate the timeline up to
the as-of date and write what it implies. out_dir/world.json remembers the config and as-of date.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from simulator.config import WorldConfig, WorldPaths
from simulator.model import web
from simulator.model.clock import end_of_day_us
from simulator.model.snapshot import Table, ordering_tables
from simulator.model.timeline import simulate
from simulator.writers import ops
from simulator.writers.pos_export import pos_export_truth, write_pos_export
from simulator.writers.sqlite import apply_increment, table_counts, write_database
from simulator.writers.truth import truth

STATE_VERSION = 1


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _write_state(paths: WorldPaths, config: WorldConfig, as_of: date) -> None:
    state = {"version": STATE_VERSION, "config": config.to_json(), "as_of": as_of.isoformat()}
    _write_json(paths.state, state)


def read_state(out_dir: Path | str) -> tuple[WorldConfig, date]:
    """The config and as-of date of the world in out_dir."""
    paths = WorldPaths.under(out_dir)
    if not paths.state.is_file() or not paths.ordering_db.is_file():
        raise FileNotFoundError(
            f"no simulated world in {paths.out_dir}: expected {paths.state.name} and "
            f"{paths.ordering_db.name}; create one with build_world() or "
            "`python -m simulator build`"
        )
    state = json.loads(paths.state.read_text())
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{paths.state} has version {state.get('version')}, "
            f"expected {STATE_VERSION}; rebuild the world"
        )
    return WorldConfig.from_json(state["config"]), date.fromisoformat(state["as_of"])


def load_world_config(out_dir: Path | str) -> WorldConfig | None:
    """The config the world in out_dir was built with, or None if there is no readable world.

    The world may since have been advanced; read_state() also gives the current as-of date.
    """
    try:
        return read_state(out_dir)[0]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def snapshot_tables(config: WorldConfig, as_of: date) -> dict[str, Table]:
    """The ordering tables of the world as of `as_of` (no files touched)."""
    return ordering_tables(simulate(config, as_of), as_of)


# Every channel beyond the ordering DB: each writes what arrives in (since_us, until_us] and
# returns its part of the truth file (see README, "Channels").
CHANNELS = (web, ops)


def _emit_channels(timeline, out_dir: Path, since_us: int | None, until_us: int) -> dict[str, Any]:
    contributions: dict[str, Any] = {}
    for channel in CHANNELS:
        contributions |= channel.emit(timeline, out_dir, since_us, until_us)
    return contributions


def build_world(config: WorldConfig, out_dir: Path | str) -> WorldPaths:
    """Write the world as of start_date + days - 1 into out_dir, replacing any world there."""
    paths = WorldPaths.under(out_dir)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    as_of = config.first_as_of
    timeline = simulate(config, as_of)
    tables = ordering_tables(timeline, as_of)
    paths.state.unlink(missing_ok=True)  # a half-replaced world must not look valid
    write_database(paths.ordering_db, tables)
    pos_truth = write_pos_export(config, paths.out_dir)
    channel_truth = _emit_channels(timeline, paths.out_dir, None, end_of_day_us(as_of))
    _write_json(paths.truth, {**truth(timeline, tables, as_of), **pos_truth, **channel_truth})
    _write_state(paths, config, as_of)
    return paths


def advance_world(out_dir: Path | str, days: int = 1) -> WorldPaths:
    """Move the world in out_dir forward by `days`: insert the rows created in those days and
    update the rows that changed in them; every other row stays byte-identical."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    paths = WorldPaths.under(out_dir)
    config, as_of = read_state(out_dir)
    new_as_of = as_of + timedelta(days=days)
    timeline = simulate(config, new_as_of)
    tables = ordering_tables(timeline, new_as_of)
    since_us = end_of_day_us(as_of)
    expected = {name: int((t.created_us <= since_us).sum()) for name, t in tables.items()}
    found = table_counts(paths.ordering_db, list(tables))
    if found != expected:
        raise RuntimeError(
            f"{paths.ordering_db} does not hold the world as of {as_of} (rows {found}, expected "
            f"{expected}); was it modified? Rebuild it with build_world()"
        )
    apply_increment(paths.ordering_db, tables, since_us)
    channel_truth = _emit_channels(timeline, paths.out_dir, since_us, end_of_day_us(new_as_of))
    # The POS export is history from before the platform: written by the build, never changed.
    _write_json(
        paths.truth,
        {**truth(timeline, tables, new_as_of), **pos_export_truth(config), **channel_truth},
    )
    _write_state(paths, config, new_as_of)
    return paths

"""Build a world into a directory, and move it forward day by day.

The world is a pure function of (config, as_of): both entry points regenerate the timeline up to
the as-of date with simulator.model and hand it to simulator.writers, which write what it implies.
out_dir/world.json remembers the config and as-of date.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.config import WorldConfig, WorldPaths
from simulator.model.campaigns import simulate_campaigns
from simulator.model.clock import HOUR_US, end_of_day_us
from simulator.model.feedback import feedback_truth
from simulator.model.snapshot import Table, ordering_tables
from simulator.model.telemetry import telemetry_truth
from simulator.model.timeline import Timeline, simulate
from simulator.model.web import experiment_figures, simulate_web, web_truth
from simulator.writers.ga4 import write_ga4
from simulator.writers.landing import HourFiles
from simulator.writers.messaging import delivery_counts, messaging_truth, write_messaging
from simulator.writers.meta import write_meta
from simulator.writers.pos_export import pos_export_truth, write_pos_export
from simulator.writers.segment import write_events
from simulator.writers.sqlite import apply_increment, table_counts, write_database
from simulator.writers.telemetry import write_telemetry
from simulator.writers.truth import truth

STATE_VERSION = 1


class WorldRefused(ValueError):
    """A world the simulator will not write, with the options that would do instead.

    One whose snapshot day is after today: the lake's gate takes a timestamp later than tomorrow
    for bad data and holds its row in quarantine, so the world would reach the marts only in part
    (order lines without their dish, say) and fail their tests. Or one with nobody in it.
    """


def _today() -> date:
    return datetime.now(UTC).date()


def check_build_date(config: WorldConfig, today: date | None = None) -> None:
    """Refuse a world whose last day is after today, saying which --start or --days would do."""
    today = today or _today()
    if config.first_as_of <= today:
        return
    latest_start = today - timedelta(days=config.days - 1)
    longest = (today - config.start_date).days + 1
    fixes = f"start it on {latest_start} or earlier (--start, or START= with make run)"
    if longest >= 1:
        fixes += f", or ask for at most {longest} days"
    raise WorldRefused(
        f"A {config.days}-day world starting {config.start_date} would end on "
        f"{config.first_as_of}, after today ({today}, UTC), and the lake's gate quarantines rows "
        f"dated in the future: {fixes}."
    )


def check_advance_date(as_of: date, days: int, today: date | None = None) -> None:
    """Refuse to move a world past today, saying how far it can go."""
    today = today or _today()
    if as_of + timedelta(days=days) <= today:
        return
    room = (today - as_of).days
    if room > 0:
        can = f"advance it by at most {room} day(s)"
    else:
        can = "it is already as of today" if room == 0 else "it is already past today"
    raise WorldRefused(
        f"Advancing the world as of {as_of} by {days} day(s) would take it past today ({today}, "
        f"UTC), and the lake's gate quarantines rows dated in the future: {can}."
    )


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


def _check_hour_bounds(since_us: int | None, until_us: int) -> None:
    # Landing files hold whole arrival hours, written once: a bound inside an hour would leave
    # that hour's file incomplete.
    for bound in (since_us, until_us):
        if bound is not None and (bound + 1) % HOUR_US:
            raise ValueError(f"{bound} is not the last microsecond of an hour")


def emit_web(timeline: Timeline, out_dir: Path | str, since_us: int | None, until_us: int) -> dict:
    """Write the app and web events arriving in (since_us, until_us] (since_us None: a fresh
    build), rewrite the GA4 and Meta report sources whole, and return the truth of the digital
    channels as of until_us."""
    _check_hour_bounds(since_us, until_us)
    out_dir = Path(out_dir)
    w = simulate_web(timeline)
    write_events(timeline, w, out_dir / "landing" / "events", since_us, until_us)
    ga4 = write_ga4(timeline, w, out_dir / "ga4", until_us)
    meta = write_meta(timeline, w, out_dir / "meta", until_us)
    result = web_truth(timeline, w, until_us, {"ga4": ga4, "ads": meta})
    result["experiments"] = experiment_figures(timeline, w, until_us)
    return _sorted(result)


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


OPS_STREAMS = ("messaging", "telemetry")


def emit_ops(timeline: Timeline, out_dir: Path | str, since_us: int | None, until_us: int) -> dict:
    """Write the `messaging` and `telemetry` streams for everything arriving in
    (since_us, until_us] (since_us None: a fresh build, after clearing both streams), and return
    the truth of campaigns, telemetry and feedback as of until_us (JSON-able)."""
    _check_hour_bounds(since_us, until_us)
    out_dir = Path(out_dir)
    if since_us is None:
        for stream in OPS_STREAMS:
            shutil.rmtree(out_dir / "landing" / stream, ignore_errors=True)
    tl = timeline
    run = simulate_campaigns(tl.config, tl.population, tl.purchases, tl.accounts)
    files = HourFiles(out_dir)
    try:
        write_messaging(tl, run, files, since_us, until_us)
        write_telemetry(tl, files, since_us, until_us)
    finally:
        files.close()
    messaging: dict[str, Any] = messaging_truth(tl, run, until_us)
    messaging["webhooks"] = delivery_counts(tl, run, until_us)
    return {
        "messaging": messaging,
        "telemetry": telemetry_truth(tl, until_us),
        "feedback": feedback_truth(tl, until_us),
    }


# Every channel beyond the ordering DB: each writes what arrives in (since_us, until_us] and
# returns its part of the truth file (see README, "Channels").
CHANNELS = (emit_web, emit_ops)


# The stages of a build, in order, as `build_world` reports them to its `stage` callback.
def _channel_stage(emit: Callable) -> str:
    return f"{emit.__name__.removeprefix('emit_')} channels"


BUILD_STAGES = (
    "guests, orders and events",
    "ordering database",
    "POS export",
    *(_channel_stage(emit) for emit in CHANNELS),
    "truth file",
)


def _no_report(_stage: str) -> None:
    pass


def _emit_channels(
    timeline: Timeline,
    out_dir: Path,
    since_us: int | None,
    until_us: int,
    stage: Callable[[str], None] = _no_report,
) -> dict[str, Any]:
    contributions: dict[str, Any] = {}
    for emit in CHANNELS:
        stage(_channel_stage(emit))
        contributions |= emit(timeline, out_dir, since_us, until_us)
    return contributions


def build_world(
    config: WorldConfig, out_dir: Path | str, stage: Callable[[str], None] = _no_report
) -> WorldPaths:
    """Write the world as of start_date + days - 1 into out_dir, replacing any world there.

    `stage` is called with each of BUILD_STAGES as it starts (a progress bar's hook).
    """
    check_build_date(config)
    paths = WorldPaths.under(out_dir)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    as_of = config.first_as_of
    stage(BUILD_STAGES[0])
    timeline = simulate(config, as_of)
    if timeline.population.signup_day.size == 0:
        raise WorldRefused(
            f"A {config.days}-day world of --customers {config.customers} over "
            f"--acquisition-days {config.acquisition_days} has no guest by {as_of}: ask for more "
            "--customers, more --days or fewer --acquisition-days."
        )
    tables = ordering_tables(timeline, as_of)
    paths.state.unlink(missing_ok=True)  # a half-replaced world must not look valid
    stage(BUILD_STAGES[1])
    write_database(paths.ordering_db, tables)
    stage(BUILD_STAGES[2])
    pos_truth = write_pos_export(config, paths.out_dir)
    channel_truth = _emit_channels(timeline, paths.out_dir, None, end_of_day_us(as_of), stage)
    stage(BUILD_STAGES[-1])
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
    check_advance_date(as_of, days)
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

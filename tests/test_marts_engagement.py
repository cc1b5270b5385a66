"""Engagement marts against the simulator's planted truths: sessions, identity stitching, A/B test
exposures, and an incremental fct_sessions run that leaves the same rows as a full refresh.

Where a figure is not exact, the only slack is the calls still queued on offline phones at the
as-of instant (truth `events.not_yet_arrived`): a session, an identify or an exposure whose calls
have not arrived is not in the lake yet, so it can be missing, never extra.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from regulars.settings import Settings
from tests.conftest import run_dbt

# The simulator's session sources as fct_sessions names them (source, medium); ad clicks by the
# publisher platform Meta placed the ad on.
SOURCE_MEDIUM = {
    "direct": ("direct", "none"),
    "organic": ("google", "organic"),
    "google_cpc": ("google", "cpc"),
    "instagram": ("instagram", "paid_social"),
    "facebook": ("facebook", "paid_social"),
    "audience_network": ("audience_network", "paid_social"),
    "email": ("newsletter", "email"),
    "referral": ("referral", "referral"),
}


@pytest.fixture(scope="module")
def not_arrived(truth: dict) -> int:
    return truth["events"]["not_yet_arrived"]


@pytest.fixture(scope="module")
def device_owners(marts_world: Settings) -> dict:
    """The simulator's own answer: who owns each anonymousId, and which anonymousIds a guest
    identified on (signed up, logged in, or used signed in) by the as-of instant."""
    from simulator.model.clock import end_of_day_us
    from simulator.model.sessions import SIGNUP, VISITOR_DEVICE_BASE
    from simulator.model.timeline import simulate
    from simulator.model.web import simulate_web
    from simulator.world import read_state

    config, as_of = read_state(marts_world.data_dir)
    web = simulate_web(simulate(config, as_of))
    keys = web.devices.key
    anonymous_ids = np.asarray(web.devices.anonymous_id.to_pylist(), dtype=object)
    owner = {
        anon: int(key // 4) if key < VISITOR_DEVICE_BASE else None
        for anon, key in zip(anonymous_ids, keys, strict=True)
    }
    s = web.s
    identifies = (web.start <= end_of_day_us(as_of)) & ((s.kind == SIGNUP) | web.known | web.login)
    return {"owner": owner, "identified": set(anonymous_ids[web.dev[identifies]])}


def test_sessions_total_and_platform_split_equal_the_truth(warehouse, truth, not_arrived):
    got = dict(
        warehouse.sql("select platform, count(*) from marts.fct_sessions group by 1").fetchall()
    )
    sessions = truth["sessions"]
    # analytics.js sends at once and every session ends by 16:30 UTC: web is exact.
    assert got["web"] == sessions["web"]
    assert sessions["app"] - not_arrived <= got["app"] <= sessions["app"]
    assert sessions["total"] - not_arrived <= got["app"] + got["web"] <= sessions["total"]


def test_sessions_by_source_and_conversions_equal_the_truth(warehouse, truth, not_arrived):
    got = {
        (source, medium): n
        for source, medium, n in warehouse.sql(
            "select source, medium, count(*) from marts.fct_sessions group by all"
        ).fetchall()
    }
    expected = {SOURCE_MEDIUM[k]: n for k, n in truth["sessions"]["by_source"].items() if n}
    assert set(got) == set(expected)
    assert all(got[k] <= expected[k] for k in expected)
    assert sum(expected.values()) - sum(got.values()) <= not_arrived
    converted = warehouse.sql(
        "select count(*), count(distinct order_id) from marts.fct_sessions "
        "where has_completed_order"
    ).fetchone()
    assert converted == (truth["events"]["order_completed_orders"],) * 2


def test_converted_revenue_matches_the_ordering_db(warehouse):
    """A session's converted revenue is its order's, by fct_orders' rule."""
    mismatched = warehouse.sql(
        """
        select count(*)
        from marts.fct_sessions as s
        inner join marts.fct_orders as o on s.order_id = o.order_id
        where s.converted_net_revenue != o.net_revenue
        """
    ).fetchone()[0]
    assert mismatched == 0


def test_stitching_never_merges_two_guests(warehouse, device_owners):
    stitched = warehouse.sql(
        """
        select identifier, customer_id
        from intermediate.int_identities_stitched
        where identifier_type = 'anonymous_id' and customer_id is not null
        """
    ).fetchall()
    owner = device_owners["owner"]
    wrong = [(anon, customer) for anon, customer in stitched if owner[anon] != customer]
    assert stitched and not wrong
    # The simulator has no shared devices, so no identifier may point at two customers.
    conflicts = warehouse.sql(
        "select count(*) from intermediate.int_identities_stitched where has_conflict"
    ).fetchone()[0]
    assert conflicts == 0
    # Sessions of one anonymous id never belong to two customers either.
    split = warehouse.sql(
        """
        select count(*) from (
            select anonymous_id from marts.fct_sessions
            group by anonymous_id having count(distinct customer_id) > 1
        )
        """
    ).fetchone()[0]
    assert split == 0


def test_stitching_merges_the_multi_device_guests(warehouse, device_owners, truth, not_arrived):
    stitched = dict(
        warehouse.sql(
            """
            select identifier, customer_id
            from intermediate.int_identities_stitched
            where identifier_type = 'anonymous_id' and customer_id is not null
            """
        ).fetchall()
    )
    expected = device_owners["identified"]
    assert set(stitched) <= expected
    assert len(expected) - len(stitched) <= not_arrived
    # Every device a guest identified on, however many, resolves to that one guest.
    per_guest_expected = np.bincount([device_owners["owner"][a] for a in expected])
    per_guest_got = np.bincount(list(stitched.values()), minlength=per_guest_expected.size)
    multi_expected = int((per_guest_expected > 1).sum())
    multi_got = int((per_guest_got > 1).sum())
    assert multi_expected > 100
    assert multi_expected - not_arrived <= multi_got <= multi_expected
    # One identified anonymous id per sign-up, plus one per login on another device.
    identities = truth["identities"]
    assert (
        identities["guests_signed_up"] + identities["logins_on_new_devices"] - not_arrived
        <= len(stitched)
        <= identities["guests_signed_up"] + identities["logins_on_new_devices"]
    )
    # Anonymous browsing before sign-up lands on the guest: pre-sign-up sessions are stitched.
    presignup_stitched = warehouse.sql(
        """
        select count(distinct customer_id)
        from marts.fct_sessions
        where customer_id is not null and not has_signed_up and session_started_at < (
            select min(c.signed_up_at) from staging.stg_ordering__customers as c
            where c.customer_id = fct_sessions.customer_id
        )
        """
    ).fetchone()[0]
    assert presignup_stitched > 0


def test_order_history_members_resolve_to_their_platform_accounts(warehouse, truth):
    mapped, members = warehouse.sql(
        """
        select count(customer_id), count(*)
        from intermediate.int_identities_stitched
        where identifier_type = 'order_history_member'
        """
    ).fetchone()
    assert members == truth["pos_export"]["members"]
    assert mapped == truth["pos_export"]["members_on_platform"]


def test_experiment_exposures_per_variation_equal_the_truth(warehouse, truth, not_arrived):
    got = {
        (experiment, variation): (units, unit_type, views, adds)
        for experiment, variation, units, unit_type, views, adds in warehouse.sql(
            """
            select experiment_id, variation_id, count(*), any_value(unit_type),
                sum(exposure_session_product_views), sum(exposure_session_product_adds)
            from marts.experiment_exposures
            group by all
            """
        ).fetchall()
    }
    orphans = warehouse.sql(
        """
        select count(*) from marts.experiment_exposures
        where exposure_session_id not in (select session_id from marts.fct_sessions)
        """
    ).fetchone()[0]
    assert orphans == 0
    for experiment in truth["experiments"]:
        unit_type = "customer" if experiment["unit"] == "userId" else "anonymous_id"
        for variation in experiment["variations"]:
            key = (experiment["experiment_id"], variation["variation_id"])
            if not variation["exposures_logged"]:
                assert key not in got
                continue
            units, got_unit_type, views, adds = got[key]
            assert got_unit_type == unit_type
            assert variation["exposures_logged"] - not_arrived <= units
            assert units <= variation["exposures_logged"]
            # The add rate's counts: the exposure session is the simulator's session exactly.
            assert variation["exposure_session_views"] - not_arrived <= views
            assert views <= variation["exposure_session_views"]
            assert variation["exposure_session_adds"] - not_arrived <= adds
            assert adds <= variation["exposure_session_adds"]


def test_orders_attributed_keep_every_order_and_its_revenue(warehouse):
    attributed = warehouse.sql(
        """
        select count(*), sum(net_revenue),
            count(*) filter (where converting_session_id is not null
                and last_touch_session_id is null)
        from intermediate.int_orders_attributed
        """
    ).fetchone()
    # Attribution is of the platform's orders: imported ones have no sessions to credit.
    orders = warehouse.sql(
        "select count(*), sum(net_revenue) from marts.fct_orders where source_system = 'ordering'"
    ).fetchone()
    assert attributed[:2] == orders
    # The converting session starts before the order, so an order that has one has a touch.
    assert attributed[2] == 0


def lookback_days(settings: Settings) -> int:
    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text())
    return int(project["vars"]["event_lookback_days"])


@dataclass(frozen=True)
class IncrementalRuns:
    full: str  # each table, named in the `held_back` schema of the `compared` warehouse
    runs: dict[str, str]
    before: str
    compared: Path


@pytest.fixture(scope="module")
def incremental_runs(marts_world: Settings, truth: dict, tmp_path_factory) -> IncrementalRuns:
    """Hold back the events that arrived in the last days, build, let them arrive, then run
    incrementally twice (by its lookback; as Dagster runs a partition window of those days) and
    once as a full refresh, each on its own copy of the warehouse."""
    root = tmp_path_factory.mktemp("incremental")
    # Everything fct_sessions is built from: the stitched identities and the sessions are tables,
    # which a run that leaves them out would read as they were before the late events.
    selection = ("--select", "+fct_sessions")

    def warehouse_copy(name: str, source: Path) -> Path:
        # The copy keeps the file name: views inside it name their catalog after the file.
        copy = root / name / source.name
        copy.parent.mkdir()
        shutil.copy(source, copy)
        return copy

    base = warehouse_copy("base", marts_world.warehouse_path)
    as_of = truth["as_of"]
    cutoff = str(np.datetime64(as_of) - np.timedelta64(4, "D"))
    late = f"received_at >= timestamptz '{cutoff} 00:00:00+00'"
    with duckdb.connect(str(base)) as con:
        con.execute("create schema held_back")
        con.execute(
            f"create table held_back.messages as select * from raw_events.messages where {late}"
        )
        con.execute(f"delete from raw_events.messages where {late}")
        assert con.sql("select count(*) from held_back.messages").fetchone()[0] > 1000

    run_dbt(base, root / "target", "run", "--full-refresh", *selection)
    with duckdb.connect(str(base)) as con:
        con.execute("create table held_back.before as select * from marts.fct_sessions")
        # They arrive as a later run of the lake pipeline brings them: in a load of their own.
        (newest,) = con.sql("select max(_dlt_load_id) from raw_events.messages").fetchone()
        con.execute(
            "insert into raw_events.messages select * replace (? as _dlt_load_id) "
            "from held_back.messages",
            [f"{float(newest) + 3600:.7f}"],
        )
    # As Dagster passes a partition's days (orchestration.dbt.partition_window).
    window = {
        "REGULARS_WINDOW_START": cutoff,
        "REGULARS_WINDOW_END": str(np.datetime64(as_of) + np.timedelta64(1, "D")),
    }
    variants = {"lookback": {}, "dagster_partition": window}
    for name, environment in variants.items():
        copy = warehouse_copy(name, base)
        with pytest.MonkeyPatch.context() as monkeypatch:
            for variable, value in environment.items():
                monkeypatch.setenv(variable, value)
            run_dbt(copy, root / "target", "run", *selection)
        with duckdb.connect(str(base)) as con:
            con.execute(f"attach '{copy}' as {name} (read_only)")
            con.execute(f"create table held_back.{name} as select * from {name}.marts.fct_sessions")
            con.execute(f"detach {name}")
    run_dbt(base, root / "target", "run", "--full-refresh", *selection)
    return IncrementalRuns(
        full="marts.fct_sessions",
        runs={name: f"held_back.{name}" for name in variants},
        before="held_back.before",
        compared=base,
    )


@pytest.mark.parametrize("variant", ["lookback", "dagster_partition"])
def test_incremental_fct_sessions_equals_a_full_refresh(
    incremental_runs: IncrementalRuns, marts_world: Settings, variant: str
):
    """The incremental table equals a full refresh row for row. The held-back days bring late
    app events, sign-ups and logins that re-own older anonymous sessions."""
    runs, incremental = incremental_runs, incremental_runs.runs[variant]
    with duckdb.connect(str(runs.compared), read_only=True) as con:
        full = con.sql(f"select count(*) from {runs.full}").fetchone()[0]
        rows = con.sql(f"select count(*) from {incremental}").fetchone()[0]
        only_full, only_incremental = (
            con.sql(
                f"select count(*) from (select * from {a} except all select * from {b})"
            ).fetchone()[0]
            for a, b in ((runs.full, incremental), (incremental, runs.full))
        )
        # The run had work beyond the lookback: sessions older than it that a later sign-up or
        # login re-owned (so equality is not an accident of an empty increment).
        restitched = con.sql(
            f"""
            select count(*)
            from {runs.before} as b
            inner join {incremental} as i on b.session_id = i.session_id
            where b.customer_id is null and i.customer_id is not null
                and b.session_date < (select max(session_date) from {runs.before})
                    - interval {lookback_days(marts_world)} day
            """
        ).fetchone()[0]
    assert full == rows > 0
    assert (only_full, only_incremental) == (0, 0)
    assert restitched > 0

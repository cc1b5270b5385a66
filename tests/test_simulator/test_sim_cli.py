"""`python -m simulator build|advance` drive the API and print a short summary."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regulars.cli import app
from simulator import WorldConfig, WorldRefused, build_world, read_state
from simulator.__main__ import main
from simulator.world import check_advance_date, check_build_date


def test_build_then_advance(tmp_path, capsys):
    out = tmp_path / "data"
    main(["build", "--customers", "300", "--days", "20", "--seed", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "as of 2025-01-20" in printed and "order_items" in printed
    assert (out / "ordering.sqlite").is_file() and (out / "truth.json").is_file()
    main(["advance", "--days", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "as of 2025-01-22" in printed and "(+" in printed


def test_advance_without_a_world_exits_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="no simulated world"):
        main(["advance", "--out", str(tmp_path)])


def test_a_build_reports_each_stage_in_order_and_regulars_shows_the_bar(tmp_path):
    from simulator.world import BUILD_STAGES

    reported: list[str] = []
    build_world(WorldConfig(seed=3, customers=60, days=5), tmp_path / "a", stage=reported.append)
    assert reported == list(BUILD_STAGES)
    assert len(BUILD_STAGES) == 6 and "web channels" in BUILD_STAGES

    result = CliRunner().invoke(
        app, ["simulate", "build", "--customers", "60", "--days", "5", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert "Building a 5-day world of about 60 guests" in result.output
    assert f"{len(BUILD_STAGES)}/{len(BUILD_STAGES)}" in result.output


def test_a_world_past_today_is_refused_with_the_start_or_days_that_would_do():
    today = date(2026, 12, 7)
    three_years = WorldConfig(days=1095, acquisition_days=1095, start_date=date(2025, 1, 1))
    with pytest.raises(WorldRefused) as refused:
        check_build_date(three_years, today=today)
    assert str(refused.value) == (
        "A 1095-day world starting 2025-01-01 would end on 2027-12-31, after today (2026-12-07, "
        "UTC), and the lake's gate quarantines rows dated in the future: start it on 2023-12-09 "
        "or earlier (--start, or START= with make run), or ask for at most 706 days."
    )
    # The suggested start and length both end the world today, which is allowed.
    check_build_date(dataclasses.replace(three_years, start_date=date(2023, 12, 9)), today=today)
    check_build_date(dataclasses.replace(three_years, days=706), today=today)
    with pytest.raises(WorldRefused, match=r"earlier \(--start, or START= with make run\)\.$"):
        check_build_date(dataclasses.replace(three_years, start_date=date(2027, 1, 1)), today=today)

    check_advance_date(date(2026, 12, 5), 2, today=today)
    with pytest.raises(WorldRefused, match=r"advance it by at most 2 day\(s\)\.$"):
        check_advance_date(date(2026, 12, 5), 3, today=today)
    with pytest.raises(WorldRefused, match=r"it is already as of today\.$"):
        check_advance_date(today, 1, today=today)


def test_the_commands_refuse_a_world_past_today_in_one_line_and_write_nothing(tmp_path):
    today = datetime.now(UTC).date()
    runner = CliRunner()

    def build(start: date, out: Path):
        options = ["--days", "5", "--customers", "60", "--start", str(start), "--out", str(out)]
        return runner.invoke(app, ["simulate", "build", *options])

    late = build(today - timedelta(days=3), tmp_path / "late")
    assert late.exit_code == 2, late.output
    assert late.output.strip().splitlines() == [
        f"A 5-day world starting {today - timedelta(days=3)} would end on "
        f"{today + timedelta(days=1)}, after today ({today}, UTC), and the lake's gate quarantines "
        f"rows dated in the future: start it on {today - timedelta(days=4)} or earlier (--start, "
        "or START= with make run), or ask for at most 4 days."
    ]
    assert not (tmp_path / "late").exists()

    out = tmp_path / "data"
    built = build(today - timedelta(days=5), out)
    assert built.exit_code == 0, built.output
    before = (out / "ordering.sqlite").read_bytes()
    too_far = runner.invoke(app, ["simulate", "advance", "--days", "2", "--out", str(out)])
    assert too_far.exit_code == 2, too_far.output
    assert too_far.output.strip().endswith("advance it by at most 1 day(s).")
    assert "Traceback" not in too_far.output
    assert (out / "ordering.sqlite").read_bytes() == before
    assert runner.invoke(app, ["simulate", "advance", "--out", str(out)]).exit_code == 0
    assert read_state(out)[1] == today


def test_a_world_with_nobody_in_it_is_refused_and_the_world_there_stays(tmp_path):
    kept = build_world(WorldConfig(seed=3, customers=60, days=5), tmp_path)
    before = kept.ordering_db.read_bytes()
    with pytest.raises(WorldRefused) as refused:
        build_world(WorldConfig(customers=1, days=30), tmp_path)
    assert str(refused.value) == (
        "A 30-day world of --customers 1 over --acquisition-days 180 has no guest by 2025-01-30: "
        "ask for more --customers, more --days or fewer --acquisition-days."
    )
    assert kept.ordering_db.read_bytes() == before
    assert read_state(tmp_path)[1] == date(2025, 1, 5)


def test_a_one_day_world_of_two_guests_writes_every_channel(tmp_path):
    """Its channels are nearly empty (no ad click, a visit or two): each writer copes with that."""
    paths = build_world(WorldConfig(customers=1, days=1, acquisition_days=1), tmp_path)
    with sqlite3.connect(paths.ordering_db) as connection:
        guests, orders = connection.execute(
            "select (select count(*) from customers), (select count(*) from orders)"
        ).fetchone()
    assert (guests, orders) == (2, 2)
    for folder in ("landing/events", "landing/telemetry", "ga4", "meta", "pos_export"):
        assert any(path.is_file() for path in (tmp_path / folder).rglob("*")), folder

"""`python -m simulator build|advance` drive the API and print a short summary."""

from __future__ import annotations

import pytest

from simulator.__main__ import main


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
    from typer.testing import CliRunner

    from regulars.cli import app
    from simulator import WorldConfig, build_world
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

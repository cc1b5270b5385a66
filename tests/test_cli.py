"""The `regulars` command line: help, the demo world, and errors that say what to do next."""

from typer.testing import CliRunner

from regulars.cli import app
from regulars.settings import Settings

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "ingest", "materialize", "summary", "prepare"):
        assert command in result.output


def test_building_the_same_world_twice_reuses_it(regulars_env: Settings):
    arguments = ["simulate", "build", "--customers", "100", "--days", "30"]
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    written = regulars_env.ordering_db_path.stat().st_mtime_ns

    second = runner.invoke(app, arguments)
    assert second.exit_code == 0, second.output
    assert "re-using it" in second.output
    assert regulars_env.ordering_db_path.stat().st_mtime_ns == written


def test_ingest_without_a_world_says_how_to_make_one(regulars_env: Settings):
    result = runner.invoke(app, ["ingest", "ordering"])
    assert result.exit_code == 2
    assert "ordering is not configured here. No ordering DB at" in result.output
    assert "regulars simulate build" in result.output
    assert "Traceback" not in result.output
    assert not regulars_env.ordering_db_path.exists(), "must not leave an empty DB behind"


def test_ingest_help_lists_every_source():
    from ingestion.registry import SOURCES

    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    # Rich wraps the help in a box: compare the words, not the lines.
    words = " ".join(result.output.replace("│", " ").split())
    assert f"Source to load: {', '.join(SOURCES)}." in words


def test_ingest_of_an_api_source_without_settings_names_what_to_set(
    regulars_env: Settings, monkeypatch
):
    for name in ("ACCESS_TOKEN", "PROPERTY_ID", "START_DATE"):
        monkeypatch.delenv(f"SOURCES__GA4__{name}", raising=False)
    result = runner.invoke(app, ["ingest", "ga4"])
    assert result.exit_code == 2
    assert "ga4 is not configured here. Set sources.ga4.property_id, " in result.output
    assert "SOURCES__GA4__ACCESS_TOKEN" in result.output


def test_summary_without_a_warehouse_points_at_make_run(regulars_env: Settings):
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 1
    assert "make run" in result.output

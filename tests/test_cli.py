"""The `regulars` command line: help, the demo world, and errors that say what to do next."""

import json

import duckdb
import pytest
import typer
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


def test_a_project_dir_that_is_not_the_checkout_says_which_variables_to_set(
    regulars_env: Settings, tmp_path
):
    # A world's folder given as REGULARS_PROJECT_DIR: one line naming the variables meant for it.
    result = runner.invoke(app, ["materialize"], env={"REGULARS_PROJECT_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert f"No dbt project in {tmp_path / 'dbt_project'}: REGULARS_PROJECT_DIR" in result.output
    assert "REGULARS_DATA_DIR, REGULARS_WAREHOUSE and REGULARS_STATE_DIR" in result.output
    assert "Traceback" not in result.output


def test_a_chain_setting_that_cannot_work_stops_materialize_in_one_line(regulars_env: Settings):
    result = runner.invoke(app, ["materialize"], env={"CHAIN__TIMEZONE": "Jakarta"})
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "The run did not start. [chain] timezone = 'Jakarta' is not an IANA time zone: write one "
        "such as 'Asia/Jakarta' or 'America/New_York' (CHAIN__TIMEZONE in the environment)."
    )
    assert "Traceback" not in result.output


def test_a_column_mapping_that_cannot_work_stops_ingest_in_one_line(regulars_env: Settings):
    (regulars_env.data_dir / "pos_export").mkdir(parents=True)
    mapping = '{"customer_id": "No HP", "order_date": "Tanggal"}'
    result = runner.invoke(
        app, ["ingest", "order_history"], env={"SOURCES__ORDER_HISTORY__COLUMN_MAPPING": mapping}
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        "order_history could not be loaded: sources.order_history.column_mapping in "
        ".dlt/config.toml: map the required field(s) amount. Each entry reads "
        '<field> = "<column name in your file>".'
    )
    assert "Traceback" not in result.output


def test_a_file_the_import_cannot_read_stops_ingest_in_one_paragraph(regulars_env: Settings):
    folder = regulars_env.data_dir / "pos_export"
    folder.mkdir(parents=True)
    (folder / "kasse.csv").write_text("Kunde;Datum;Betrag\n0812;2024-03-01;12,50\n")
    mapping = '{"customer_id": "Kunde", "order_date": "Datum", "amount": "Betrag"}'
    result = runner.invoke(
        app,
        ["ingest", "order_history"],
        env={
            "SOURCES__ORDER_HISTORY__COLUMN_MAPPING": mapping,
            "SOURCES__ORDER_HISTORY__DATE_FORMAT": "iso8601",
        },
    )
    assert result.exit_code == 1, result.output
    # dlt's counters come and go around it: the paragraph is one line of the output.
    assert (
        "order_history could not be loaded: kasse.csv: column(s) 'Kunde', 'Datum', 'Betrag' "
        "named in sources.order_history.column_mapping are not in the file (its columns: "
        "'Kunde;Datum;Betrag'). The header reads as one column: if the file separates its "
        "columns with ';', set sources.order_history.delimiter = ';' (.dlt/config.toml)."
    ) in result.output.splitlines()
    assert "Traceback" not in result.output


def error_lines(output: str) -> list[str]:
    """The text lines of Typer's error box, without its frame."""
    return [
        line.strip("│ ").strip()
        for line in output.splitlines()
        if line.startswith("│") and line.strip("│ ").strip()
    ]


def test_a_date_that_is_not_one_is_a_usage_error_of_one_line():
    result = runner.invoke(
        app, ["simulate", "build", "--start", "2025-13-01"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert error_lines(result.output) == [
        "Invalid value for '--start': Value error, '2025-13-01' does not match the formats "
        "'%Y-%m-%d'."
    ]


def test_the_out_options_show_their_default():
    for command in (["simulate", "build"], ["simulate", "advance"]):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        words = " ".join(result.output.replace("│", " ").split())
        assert "folder. [default: (REGULARS_DATA_DIR)]" in words, command


# Each command runs in a fresh interpreter: the test process has long imported dlt and GX.
REJECTS_BEFORE_IMPORTING = """
import sys
import pytest
from typer.testing import CliRunner
from regulars.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = sorted({"dlt", "great_expectations", "dagster"} & set(sys.modules))
print(result.exit_code, ",".join(heavy) or "-")
"""


def test_bad_arguments_are_refused_before_the_heavy_imports(regulars_env: Settings):
    import subprocess
    import sys
    from pathlib import Path

    checkout = Path(__file__).resolve().parent.parent
    for arguments in (
        ["ingest", "nope"],
        ["replay", "nope"],
        ["forget", "someone", "--kind", "nope"],
        ["forget", "not an id"],
    ):
        ran = subprocess.run(
            [sys.executable, "-c", REJECTS_BEFORE_IMPORTING, *arguments],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
        )
        assert ran.stdout.split() == ["2", "-"], (arguments, ran.stdout, ran.stderr[-2000:])


def test_every_source_has_gate_suites():
    """`regulars replay` checks a source against ingestion.SOURCE_NAMES before importing GX;
    each source's suites are found by its name, and a name without a module says what to add."""
    from expectations.promote import suites_for
    from ingestion import SOURCE_NAMES

    for source in SOURCE_NAMES:
        assert suites_for(source), source
    with pytest.raises(KeyError, match=r"add expectations/suites/loyalty\.py"):
        suites_for("loyalty")


# A minimal export, first landed by a chain that had not set its time zone yet (UTC).
MINIMAL_EXPORT_IN_UTC = {
    "SOURCES__ORDER_HISTORY__COLUMN_MAPPING": (
        '{"customer_id": "member", "order_date": "date", "amount": "total"}'
    ),
    "SOURCES__ORDER_HISTORY__DATE_FORMAT": "iso8601",
    "CHAIN__TIMEZONE": "UTC",
    "CHAIN__CURRENCY": "USD",
}


def imported_orders(settings: Settings, columns: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(
            f"select {columns} from raw_order_history.orders order by all"
        ).fetchall()


def test_files_read_with_settings_since_changed_are_read_again(regulars_env: Settings):
    """A chain that ran once in UTC with amounts as written, then set its time zone and said the
    amounts are cents: the file already landed is read again with the new settings, not kept as
    first read (and not read a third time once it has been)."""
    folder = regulars_env.data_dir / "pos_export"
    folder.mkdir(parents=True)
    (folder / "export.csv").write_text("member,date,total\n0812,2024-03-01 19:30,1250\n")
    first = MINIMAL_EXPORT_IN_UTC
    corrected = first | {
        "CHAIN__TIMEZONE": "Asia/Jakarta",
        "SOURCES__ORDER_HISTORY__AMOUNTS_IN_MINOR_UNITS": "true",
    }

    def lake() -> list[tuple]:
        return imported_orders(regulars_env, "ordered_at::varchar, amount::double")

    result = runner.invoke(app, ["ingest", "order_history"], env=first)
    assert result.exit_code == 0, result.output
    assert lake() == [("2024-03-01 19:30:00+00", 1250.0)]

    result = runner.invoke(app, ["ingest", "order_history"], env=corrected)
    assert result.exit_code == 0, result.output
    assert (
        "order_history: orders was read with amounts_in_minor_units = False, minor_unit_digits "
        "= 0, timezone = 'UTC'; the settings now say amounts_in_minor_units = True, "
        "minor_unit_digits = 2, timezone = 'Asia/Jakarta'. So those tables start over"
    ) in result.output
    assert lake() == [("2024-03-01 12:30:00+00", 12.5)], result.output

    result = runner.invoke(app, ["ingest", "order_history"], env=corrected)
    assert result.exit_code == 0, result.output
    assert "start over" not in result.output
    assert lake() == [("2024-03-01 12:30:00+00", 12.5)], result.output


def test_settings_changed_after_a_file_was_removed_drop_nothing(regulars_env: Settings):
    """Reading every file again would lose the rows of a file no longer in the folder (an export
    archived after it landed): the run stops, names it, and keeps the lake as it is."""
    folder = regulars_env.data_dir / "pos_export"
    folder.mkdir(parents=True)
    (folder / "2023.csv").write_text("member,date,total\n0812,2023-05-01 19:30,1250\n")
    (folder / "2024.csv").write_text("member,date,total\n0813,2024-03-01 19:30,990\n")
    first = MINIMAL_EXPORT_IN_UTC
    corrected = first | {"CHAIN__TIMEZONE": "Asia/Jakarta"}

    def lake() -> list[tuple]:
        return imported_orders(regulars_env, "customer_id, ordered_at::varchar")

    assert runner.invoke(app, ["ingest", "order_history"], env=first).exit_code == 0
    as_first_read = [("0812", "2023-05-01 19:30:00+00"), ("0813", "2024-03-01 19:30:00+00")]
    assert lake() == as_first_read
    archived = (folder / "2023.csv").read_text()
    (folder / "2023.csv").unlink()

    result = runner.invoke(app, ["ingest", "order_history"], env=corrected)
    assert result.exit_code == 1, result.output
    assert (
        "would lose what was landed from 1 file(s) no longer in "
        f"{folder}: 2023.csv. Nothing was dropped: put them back"
    ) in result.output
    assert "Traceback" not in result.output
    assert lake() == as_first_read

    (folder / "2023.csv").write_text(archived)
    result = runner.invoke(app, ["ingest", "order_history"], env=corrected)
    assert result.exit_code == 0, result.output
    assert lake() == [("0812", "2023-05-01 12:30:00+00"), ("0813", "2024-03-01 12:30:00+00")]


def test_dbt_by_hand_gets_the_chains_vars_and_a_given_var_wins():
    from regulars.cli import with_chain_vars

    chain = {
        "chain_timezone": "Asia/Jakarta",
        "chain_province_timezones": {"Bali": "Asia/Makassar"},
    }
    built = with_chain_vars(
        ["build", "--select", "customer_features+", "--vars", "{churn_inactivity_days: 90}"], chain
    )
    assert built[:3] == ["build", "--select", "customer_features+"]
    assert built[3] == "--vars" and json.loads(built[4]) == chain | {"churn_inactivity_days": 90}
    overridden = with_chain_vars(["test", "--vars=chain_timezone: UTC"], chain)
    assert json.loads(overridden[-1])["chain_timezone"] == "UTC"
    # Commands that take no vars are passed as they are.
    assert with_chain_vars(["--version"], chain) == ["--version"]
    assert with_chain_vars(["deps"], chain) == ["deps"]
    with pytest.raises(typer.BadParameter, match="is not a YAML mapping"):
        with_chain_vars(["build", "--vars", "90"], chain)


def test_dbt_by_hand_compiles_with_the_demo_chains_zones(
    tiny_world: Settings, capfd: pytest.CaptureFixture
):
    # dbt_project.yml's defaults are UTC and no store in another zone: a `dbt build` by hand on
    # the warehouse `make run` built rewrote its marts in UTC days.
    inline = "select '{{ var(\"chain_timezone\") }}', '{{ var(\"chain_province_timezones\") }}'"
    # Its own target folder: the checkout's holds the manifest the other workers' runs read.
    target = (
        "--target-path",
        str(tiny_world.state_dir / "dbt"),
        "--log-path",
        str(tiny_world.state_dir),
    )
    result = runner.invoke(app, ["dbt", "compile", "--quiet", *target, "--inline", inline])
    printed = capfd.readouterr().out  # dbt's own process writes to the terminal, not the runner
    assert result.exit_code == 0, printed
    assert "'Asia/Jakarta'" in printed and "Asia/Makassar" in printed

"""Order-history import: the simulated POS export, a minimal file, and files with mistakes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from ingestion.order_history import order_history_source
from ingestion.order_history.helpers import ColumnMapping, OrderHistoryFileError
from ingestion.pipelines import landing_pipeline, prune_state_history
from ingestion.source_spec import SourceConfigError
from regulars.settings import Settings, load_chain
from simulator import WorldConfig
from simulator.writers.pos_export import DATE_FORMAT, pos_orders, write_pos_export

POS_MAPPING = {
    "customer_id": "No HP",
    "order_date": "Tanggal",
    "amount": "Total",
    "order_id": "No Nota",
    "quantity": "Jml Item",
    "store": "Outlet",
}
MINIMAL_MAPPING = {"customer_id": "member", "order_date": "date", "amount": "total"}


def load(settings: Settings, folder: Path, columns: dict, **options) -> None:
    # Explicit options: .dlt/config.toml describes the demo POS file, not these test files.
    options = {"date_format": "iso8601", "timezone": "UTC", "file_glob": "*.csv"} | options
    source = order_history_source(bucket_url=str(folder), column_mapping=columns, **options)
    landing_pipeline("order_history", settings).run(source)


def landed(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def write_csv(folder: Path, name: str, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_the_simulated_pos_export_lands_whole_in_utc(regulars_env: Settings):
    config = WorldConfig(seed=3, customers=400, days=40, acquisition_days=40)
    truth = write_pos_export(config, regulars_env.data_dir)["pos_export"]
    folder = regulars_env.data_dir / "pos_export"

    load(regulars_env, folder, POS_MAPPING, date_format=DATE_FORMAT, timezone="Asia/Jakarta")

    ((rows, revenue, members),) = landed(
        regulars_env,
        "select count(*), sum(amount)::bigint, count(distinct customer_id) "
        "from landing_order_history.orders",
    )
    assert (rows, revenue, members) == (truth["rows"], truth["revenue"], truth["members"])
    first = pos_orders(config).iloc[0]
    ((ordered_at,),) = landed(
        regulars_env,
        f"select strftime(ordered_at at time zone 'UTC', '%d/%m/%Y %H:%M') "
        f"from landing_order_history.orders where order_id = '{first['No Nota']}'",
    )
    local = pd.to_datetime(first["Tanggal"], format=DATE_FORMAT)
    assert ordered_at == (local - pd.Timedelta(hours=7)).strftime(DATE_FORMAT)  # WIB is UTC+7

    # Nothing new in the folder: a second run loads nothing and duplicates nothing.
    load(regulars_env, folder, POS_MAPPING, date_format=DATE_FORMAT, timezone="Asia/Jakarta")
    assert landed(regulars_env, "select count(*) from landing_order_history.orders")[0][0] == rows


def test_a_minimal_file_with_three_columns_lands(
    regulars_env: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = tmp_path / "minimal"
    write_csv(
        folder,
        "old_pos.csv",
        [
            {"member": "A-1", "date": "2024-05-01", "total": "125000"},
            {"member": "A-1", "date": "2024-06-11 19:05:00", "total": "80000.50"},
            {"member": "B-7", "date": "2024-06-12T12:00:00", "total": "45000"},
        ],
    )
    load(regulars_env, folder, MINIMAL_MAPPING)
    # The Arrow schema says what dlt's does (the key is not null): no warning for every file.
    assert not [r for r in caplog.records if "column hints were different" in r.getMessage()]
    rows = landed(
        regulars_env,
        "select customer_id, amount::double, quantity, order_id, source_line "
        "from landing_order_history.orders order by source_line",
    )
    assert rows == [
        ("A-1", 125000.0, None, None, 2),
        ("A-1", 80000.5, None, None, 3),
        ("B-7", 45000.0, None, None, 4),
    ]


@pytest.mark.parametrize(
    ("bad_row", "column", "expected"),
    [
        ({"member": "C-3", "date": "31/02/2024", "total": "1000"}, "date", "ISO 8601 date"),
        ({"member": "C-3", "date": "2024-03-01", "total": "12,5"}, "total", "an amount"),
        ({"member": "", "date": "2024-03-01", "total": "1000"}, "member", "required"),
    ],
)
def test_a_bad_value_names_the_file_line_and_column(
    regulars_env: Settings, tmp_path: Path, bad_row: dict, column: str, expected: str
):
    good = {"member": "A-1", "date": "2024-03-01", "total": "1000"}
    folder = tmp_path / "bad"
    write_csv(folder, "export.csv", [good, good | {"member": "A-2"}, bad_row, good])

    with pytest.raises(Exception) as raised:
        load(regulars_env, folder, MINIMAL_MAPPING)

    message = str(raised.value)
    assert f"export.csv, line 4, column '{column}'" in message
    assert expected in message
    cause = raised.value
    while cause.__cause__ or cause.__context__:
        cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OrderHistoryFileError):
            break
    assert isinstance(cause, OrderHistoryFileError)


def test_a_mapping_without_a_required_field_fails_before_reading(regulars_env: Settings):
    with pytest.raises(ValueError, match=r"map the required field\(s\) amount"):
        ColumnMapping.from_config({"customer_id": "member", "order_date": "date"})
    with pytest.raises(ValueError, match="unknown field"):
        ColumnMapping.from_config(MINIMAL_MAPPING | {"tip": "Tip"})


def test_a_chain_without_a_column_mapping_is_not_configured_and_its_graph_still_builds(
    tmp_path: Path,
):
    # A chain with no old export drops the demo's mapping: building the source then stopped
    # every run on dlt's missing `column_mapping`, though the source was skipped. dlt keeps the
    # settings folder it first read, so a process of its own reads this project's `.dlt/`.
    project = tmp_path / "chain"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text("[runtime]\ndlthub_telemetry = false\n")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__ORDER_HISTORY__", "DLT_PROJECT_DIR", "REGULARS_"))
    }
    env["REGULARS_PROJECT_DIR"] = str(project)
    script = (
        "import sys\n"
        "from ingestion.registry import SOURCES\n"
        "from regulars.settings import load_settings\n"
        "settings, source = load_settings(), SOURCES['order_history']\n"
        "print(source.missing(settings))\n"
        "(settings.data_dir / 'pos_export').mkdir(parents=True)\n"
        "print(source.missing(settings))\n"
        "print(sorted(source.build(settings).resources))\n"
    )
    printed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert printed.returncode == 0, printed.stderr
    no_folder, no_mapping, resources = printed.stdout.splitlines()
    assert no_folder.startswith(f"No order-history folder at {project / 'data' / 'pos_export'}")
    assert no_mapping == (
        f"No column mapping for the order-history files at {project / 'data' / 'pos_export'}: "
        "set [sources.order_history.column_mapping] in .dlt/config.toml, the file's column for "
        "each of customer_id, order_date, amount (ingestion/order_history/README.md)."
    )
    assert "orders" in resources


def test_a_mapped_column_missing_from_the_file_is_named(regulars_env: Settings, tmp_path: Path):
    folder = tmp_path / "renamed"
    write_csv(folder, "x.csv", [{"member": "A", "day": "2024-01-01", "total": "1"}])
    with pytest.raises(Exception, match=r"x.csv: column\(s\) 'date' named in"):
        load(regulars_env, folder, MINIMAL_MAPPING)


def test_pipeline_state_stays_in_the_state_dir(regulars_env: Settings):
    pipeline = landing_pipeline("order_history", regulars_env)
    assert Path(pipeline.pipelines_dir).is_relative_to(regulars_env.state_dir)
    assert dlt.config.get("normalize.parquet_normalizer.add_dlt_load_id") is True


def test_a_1997_chain_in_new_york_keeps_its_dates(
    regulars_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Date-only values are the chain's local dates, and a history older than 2015 is history.

    Read as UTC midnight and converted to an eastern-US day, or as local midnight and counted by
    the UTC day, each of these orders would move to the day before; and a fixed floor of 2015
    would have quarantined all of them.
    """
    import json

    from expectations.promote import promote
    from tests.conftest import run_dbt

    monkeypatch.setenv("CHAIN__TIMEZONE", "America/New_York")
    folder = tmp_path / "us_pos"
    days = ["1997-01-01", "1997-06-30", "1998-12-31"]
    write_csv(
        folder,
        "orders_1997.csv",
        [{"member": f"m{n}", "date": day, "total": 12.5 + n} for n, day in enumerate(days)],
    )
    load(regulars_env, folder, MINIMAL_MAPPING, timezone=None)  # the chain's zone
    result = promote("order_history", regulars_env)
    table = result.report.tables["orders"]
    assert (table.promoted_rows, table.quarantined_rows, table.batch_failure) == (3, 0, None)

    vars_ = json.dumps(load_chain().dbt_vars())
    run_dbt(
        regulars_env.warehouse_path,
        tmp_path / "target",
        "run",
        "--select",
        "stg_order_history__orders",
        "--vars",
        vars_,
    )
    staged = landed(
        regulars_env,
        "select strftime(ordered_date, '%Y-%m-%d'), amount from "
        "staging.stg_order_history__orders order by ordered_date",
    )
    assert staged == [(day, 12.5 + n) for n, day in enumerate(days)]


@pytest.mark.parametrize(
    ("currency", "amounts", "expected"),
    [
        ("USD", ["1250", "99", "100005", "-5"], ["12.50", "0.99", "1000.05", "-0.05"]),
        ("JPY", ["1250", "99"], ["1250.00", "99.00"]),  # no minor unit: the amount as it is
        ("BHD", ["1255", "99"], ["1.26", "0.10"]),  # fils, rounded to the lake's two decimals
    ],
)
def test_amounts_in_cents_land_in_the_currencys_major_unit(
    currency: str, amounts: list, expected: list
):
    from ingestion.order_history.helpers import convert, minor_unit_digits

    table = pa.table({"member": ["m"] * len(amounts), "date": ["2016-09-01"] * len(amounts)})
    table = table.append_column("total", pa.array(amounts))
    mapping = ColumnMapping.from_config(MINIMAL_MAPPING)
    landed_rows = convert(
        table, mapping, "orders.csv", minor_unit_digits=minor_unit_digits(currency)
    )
    assert [str(value) for value in landed_rows["amount"].to_pylist()] == expected


def test_cents_without_a_currency_or_with_a_decimal_point_say_what_to_fix():
    from ingestion.order_history.helpers import convert, minor_unit_digits

    with pytest.raises(ValueError, match=r"set \[chain\] currency in .dlt/config.toml"):
        minor_unit_digits(None)
    table = pa.table({"member": ["a", "b"], "date": ["2016-09-01"] * 2, "total": ["1250", "12.5"]})
    with pytest.raises(
        OrderHistoryFileError,
        match=r"orders.csv, line 3, column 'total' \(amount\): '12.5' is not a whole number of "
        r"minor units \(cents\)",
    ):
        convert(
            table, ColumnMapping.from_config(MINIMAL_MAPPING), "orders.csv", minor_unit_digits=2
        )


def write_lines(folder: Path, name: str, lines: list[bytes]) -> Path:
    """A CSV written byte for byte, so that a test can break one line of it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def promoted(settings: Settings):
    from expectations.promote import promote

    return promote("order_history", settings).report.tables["orders"]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (b"0812-555-0199,2024-03-02,2000,extra", "4 columns where the header has 3"),
        (
            b"Jos\xe9,2024-03-02,2000",
            "bytes that are not in the file's encoding: save the file as UTF-8, or set "
            "sources.order_history.encoding (latin-1 reads any byte)",
        ),  # Latin-1, not UTF-8
    ],
    ids=["extra column", "latin-1 bytes"],
)
def test_a_line_that_is_not_a_row_is_held_with_file_and_line_and_the_rest_lands(
    regulars_env: Settings, tmp_path: Path, broken: bytes, reason: str
):
    """Before, pyarrow refused the file with no file or line and quoted the row (a phone
    number) into the log; nothing of the file, or of the files after it, landed."""
    folder = tmp_path / "pos"
    write_lines(
        folder,
        "a_export.csv",
        [
            b"member,date,total",
            b"A-1,2024-03-01,1000",
            broken,
            b"",
            b"A-3,2024-03-03,3000",
        ],
    )
    write_lines(folder, "b_export.csv", [b"member,date,total", b"B-1,2024-03-04,4000"])
    load(regulars_env, folder, MINIMAL_MAPPING)
    table = promoted(regulars_env)

    assert (table.source_rows, table.promoted_rows, table.quarantined_rows) == (4, 3, 1)
    assert landed(
        regulars_env,
        "select source_file, source_line, customer_id, amount::int "
        "from raw_order_history.orders order by source_file, source_line",
    ) == [
        ("a_export.csv", 2, "A-1", 1000),
        ("a_export.csv", 5, "A-3", 3000),  # after the blank line 4: lines stay the file's
        ("b_export.csv", 2, "B-1", 4000),
    ]
    ((key, record),) = landed(
        regulars_env, "select primary_key_value, record from raw_order_history.quarantine_orders"
    )
    assert key == "_unreadable:a_export.csv:3"
    assert json.loads(record)["_malformed_fields"] == f"a_export.csv, line 3: {reason}"


def test_an_amount_that_depends_on_the_separators_is_refused_until_they_are_set(
    regulars_env: Settings, tmp_path: Path
):
    """`25.500` is 25500 rupiah in Indonesia; before, it landed as 25.50."""
    folder = tmp_path / "pos"
    rows = [
        {"member": "A-1", "date": "2024-03-01", "total": "125000"},
        {"member": "A-2", "date": "2024-03-01", "total": "25.500"},
    ]
    write_csv(folder, "export.csv", rows)

    with pytest.raises(Exception) as raised:
        load(regulars_env, folder, MINIMAL_MAPPING)
    message = str(raised.value)
    assert "export.csv, line 3, column 'total' (amount): '25.500' is 25.500 with '.' as " in message
    assert 'decimal_separator = ",", thousands_separator = "."' in message

    write_csv(
        folder,
        "export.csv",
        [*rows, {"member": "A-3", "date": "2024-03-01", "total": "1.250.000,50"}],
    )
    load(regulars_env, folder, MINIMAL_MAPPING, decimal_separator=",", thousands_separator=".")
    assert landed(
        regulars_env,
        "select customer_id, amount::double from landing_order_history.orders order by 1",
    ) == [("A-1", 125000.0), ("A-2", 25500.0), ("A-3", 1250000.5)]


def test_a_semicolon_latin_1_export_lands_once_its_delimiter_and_encoding_are_set(
    regulars_env: Settings, tmp_path: Path
):
    """Excel where the decimal separator is a comma writes `;` between columns, and a
    Windows-era POS writes Latin-1: read as `,` and UTF-8 the header was one column."""
    folder = tmp_path / "kasse"
    folder.mkdir()
    lines = [
        "Kunde;Datum;Betrag;Filiale",
        "+49 170 1234567;07.11.2024 14:30;1.234,50;München",
        "+49 170 7654321;08.11.2024 09:05;12,00;Köln",
    ]
    (folder / "kasse.csv").write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    mapping = {"customer_id": "Kunde", "order_date": "Datum", "amount": "Betrag"}
    mapping["store"] = "Filiale"
    options = {"date_format": "%d.%m.%Y %H:%M", "timezone": "Europe/Berlin"}
    separators = {"decimal_separator": ",", "thousands_separator": "."}

    with pytest.raises(Exception) as raised:
        load(regulars_env, folder, mapping, **options, **separators)
    assert (
        "kasse.csv: column(s) 'Kunde', 'Datum', 'Betrag', 'Filiale' named in "
        "sources.order_history.column_mapping are not in the file (its columns: "
        "'Kunde;Datum;Betrag;Filiale'). The header reads as one column: if the file separates "
        "its columns with ';', set sources.order_history.delimiter = ';' (.dlt/config.toml)."
    ) in str(raised.value)

    load(regulars_env, folder, mapping, **options, **separators, delimiter=";", encoding="latin1")
    assert landed(
        regulars_env,
        "select customer_id, ordered_at::varchar, amount::double, store, source_line "
        "from landing_order_history.orders order by source_line",
    ) == [
        ("+49 170 1234567", "2024-11-07 13:30:00+00", 1234.5, "München", 2),
        ("+49 170 7654321", "2024-11-08 08:05:00+00", 12.0, "Köln", 3),
    ]


def test_a_delimiter_or_encoding_duckdb_cannot_read_names_both_settings():
    with pytest.raises(SourceConfigError) as raised:
        order_history_source(
            bucket_url="unused",
            column_mapping=MINIMAL_MAPPING,
            delimiter=";;",
            encoding="cp1252",
        )
    assert str(raised.value) == (
        "[sources.order_history] in .dlt/config.toml: delimiter = ';;' is not one character "
        'other than a quote or a line break (",", ";", "\\t" or "|"); encoding = \'cp1252\' is '
        "not one of utf-8, latin-1."
    )


def test_a_repeated_order_id_is_held_with_both_lines_and_the_file_reconciles(
    regulars_env: Settings, tmp_path: Path
):
    """Before, the second row of an order id replaced the first in the landing merge on
    `import_row_id`, and the audit still reconciled."""
    folder = tmp_path / "pos"
    mapping = MINIMAL_MAPPING | {"order_id": "receipt"}
    write_csv(
        folder,
        "export.csv",
        [
            {"receipt": "N-1", "member": "A-1", "date": "2024-03-01", "total": "1000"},
            {"receipt": "N-2", "member": "A-2", "date": "2024-03-01", "total": "2000"},
            {"receipt": "N-1", "member": "A-9", "date": "2024-03-02", "total": "9000"},
        ],
    )
    load(regulars_env, folder, mapping)
    table = promoted(regulars_env)

    assert (table.source_rows, table.promoted_rows, table.quarantined_rows) == (3, 2, 1)
    assert landed(
        regulars_env, "select order_id, customer_id from raw_order_history.orders order by 1"
    ) == [("N-1", "A-1"), ("N-2", "A-2")]
    ((key, record),) = landed(
        regulars_env, "select primary_key_value, record from raw_order_history.quarantine_orders"
    )
    assert key == "_repeated:export.csv:4"
    assert json.loads(record)["_malformed_fields"] == (
        "export.csv, line 4: order id 'N-1' is already on line 2 (that row is kept)"
    )


def test_rows_read_that_would_not_all_land_stop_the_file():
    from ingestion.order_history.helpers import MALFORMED, reconcile

    rows = pa.table({"import_row_id": ["f.csv:1", "f.csv:1"], MALFORMED: [None, None]})
    with pytest.raises(OrderHistoryFileError, match=r"^f.csv: 2 rows read, but 2 would land "):
        reconcile("f.csv", 2, rows)
    with pytest.raises(OrderHistoryFileError, match=r"^f.csv: 3 rows read"):
        reconcile("f.csv", 3, rows.slice(0, 1))


def test_an_old_file_copied_in_late_lands_and_a_copy_under_another_name_does_not(
    regulars_env: Settings, tmp_path: Path
):
    """Before, a file whose modification time was older than the cursor was skipped with
    `0 landed`, and the same file under a second name landed all its orders twice."""
    folder = tmp_path / "pos"
    write_csv(folder, "2024.csv", [{"member": "A-1", "date": "2024-03-01", "total": "1000"}])
    load(regulars_env, folder, MINIMAL_MAPPING)

    old = write_csv(folder, "2019.csv", [{"member": "B-1", "date": "2019-03-01", "total": "500"}])
    a_year_earlier = old.stat().st_mtime - 365 * 86_400
    os.utime(old, (a_year_earlier, a_year_earlier))
    shutil.copy(folder / "2024.csv", folder / "2024 (copy).csv")
    load(regulars_env, folder, MINIMAL_MAPPING)

    assert landed(
        regulars_env,
        "select source_file, customer_id from landing_order_history.orders order by 1",
    ) == [("2019.csv", "B-1"), ("2024.csv", "A-1")]


def test_the_warehouse_keeps_the_newest_state_versions_and_they_restore_the_reader(
    regulars_env: Settings, tmp_path: Path
):
    """A daily reader's state lists every file read, so each version in the warehouse is the
    largest yet. Pruned to the newest two, a machine with no local pipeline folder restores
    the newest and reads only the file it has not read: an older version would read again
    the files read since, and their rows would come back under the new load."""
    folder = tmp_path / "daily"
    dropped = []
    for day in range(1, 6):
        row = {"member": f"M-{day}", "date": f"2025-01-0{day}", "total": str(day)}
        write_csv(folder, f"0{day}.csv", [row])
        load(regulars_env, folder, MINIMAL_MAPPING)
        pipeline = landing_pipeline("order_history", regulars_env)
        dropped.append(prune_state_history(pipeline, keep=2))
    state_table = "landing_order_history._dlt_pipeline_state"
    kept = landed(regulars_env, f"select version from {state_table} order by version")

    newest = landing_pipeline("order_history", regulars_env).state["_state_version"]
    assert dropped == [0, 0, 1, 1, 1]
    assert kept == [(newest - 1,), (newest,)]

    shutil.rmtree(pipeline.working_dir)
    write_csv(folder, "06.csv", [{"member": "M-6", "date": "2025-01-06", "total": "6"}])
    load(regulars_env, folder, MINIMAL_MAPPING)

    assert landed(
        regulars_env,
        "select source_file from landing_order_history.orders where _dlt_load_id = "
        "(select max(load_id) from landing_order_history._dlt_loads)",
    ) == [("06.csv",)]
    assert landed(regulars_env, "select count(*) from landing_order_history.orders") == [(6,)]


def test_each_row_keeps_its_line_past_blank_refused_and_multi_line_rows(tmp_path: Path):
    from ingestion.order_history import read_csv

    path = write_lines(
        tmp_path,
        "export.csv",
        [
            b"member,date,total,note",
            b'A-1,2024-03-01,1000,"first line',
            b'second line"',
            b"",
            b"A-2,2024-03-02,2000",
            b"A-3,2024-03-03,3000,",
        ],
    )
    read = read_csv(str(path))
    assert read.table.column("member").to_pylist() == ["A-1", "A-3"]
    assert read.lines == [2, 6]
    assert read.rejected == [(5, "3 columns where the header has 4")]


def test_a_load_and_its_promotion_open_the_warehouse_once_each(
    regulars_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """dlt connects and disconnects for each of its operations; DuckDB opens the file again each
    time no connection of the process holds it (0.35 s of a one-row load on a year's warehouse).
    Held open for the step (regulars.warehouse.kept_open), the file is opened once per step.

    An opening is a connection that does not see what an earlier connection attached: an
    attachment lives as long as the open database, across its connections."""
    from expectations.promote import promote
    from ingestion.pipelines import landing_held_open

    warehouse_file = regulars_env.warehouse_path.resolve()
    openings: list[str] = []
    real_connect = duckdb.connect

    def connect(database=":memory:", *args, **kwargs):
        connection = real_connect(database, *args, **kwargs)
        if str(database) != ":memory:" and Path(str(database)).resolve() == warehouse_file:
            seen = connection.execute(
                "select count(*) from duckdb_databases() where database_name = 'opened_before'"
            ).fetchone()[0]
            if not seen:
                connection.execute("attach ':memory:' as opened_before")
                openings.append(str(database))
        return connection

    write_csv(
        tmp_path / "pos",
        "orders.csv",
        [{"member": f"m{n}", "date": "2024-03-0" + str(n + 1), "total": 10 + n} for n in range(3)],
    )
    monkeypatch.setattr(duckdb, "connect", connect)
    with landing_held_open(regulars_env):
        load(regulars_env, tmp_path / "pos", MINIMAL_MAPPING)
    assert len(openings) == 1
    table = promote("order_history", regulars_env).report.tables["orders"]
    assert (table.promoted_rows, table.quarantined_rows) == (3, 0)
    assert len(openings) == 2

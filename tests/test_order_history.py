"""Order-history import: the simulated POS export, a minimal file, and files with mistakes."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from ingestion.order_history import order_history_source
from ingestion.order_history.helpers import ColumnMapping, OrderHistoryFileError
from ingestion.pipelines import landing_pipeline
from regulars.settings import Settings, load_chain
from simulator import WorldConfig
from simulator.pos_export import DATE_FORMAT, pos_orders, write_pos_export

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


def test_a_minimal_file_with_three_columns_lands(regulars_env: Settings, tmp_path: Path):
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

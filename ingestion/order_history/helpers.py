"""Turn one order-history file into typed rows, or say exactly which line and column is wrong.

Pure functions over Arrow: the file is read as text, each mapped column is converted in one
vectorised pass, and the first value that does not convert becomes an error naming the file, the
line (as a spreadsheet shows it: the header is line 1) and the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.order_history.settings import (
    ISO8601,
    ISO_DATE_FORMATS,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
)

MONEY = pa.decimal128(18, 2)
# How an amount must look: in major units (a decimal point allowed), or in minor units (whole).
AMOUNT_FORMATS = {
    False: (r"^-?\d+(\.\d+)?$", MONEY, "an amount like 125000 or 125000.50"),
    True: (r"^-?\d+$", MONEY, "a whole number of minor units (cents), like 12550"),
}


class OrderHistoryFileError(ValueError):
    """A value in an order-history file that cannot be read as its field's type."""


@dataclass(frozen=True)
class ColumnMapping:
    """Regulars field -> the file's column name, e.g. {"customer_id": "No HP"}."""

    columns: Mapping[str, str]

    @classmethod
    def from_config(cls, columns: Mapping[str, str] | None) -> ColumnMapping:
        columns = dict(columns or {})
        missing = [field for field in REQUIRED_FIELDS if not columns.get(field)]
        unknown = sorted(set(columns) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        problems = []
        if missing:
            problems.append(f"map the required field(s) {', '.join(missing)}")
        if unknown:
            known = ", ".join((*REQUIRED_FIELDS, *OPTIONAL_FIELDS))
            problems.append(f"unknown field(s) {', '.join(unknown)} (known: {known})")
        if problems:
            raise ValueError(
                "sources.order_history.column_mapping in .dlt/config.toml: "
                + "; ".join(problems)
                + '. Each entry reads <field> = "<column name in your file>".'
            )
        return cls(columns)

    def source_column(self, field: str) -> str | None:
        return self.columns.get(field)


def minor_unit_digits(currency: str | None) -> int:
    """Digits of the currency's minor unit (USD 2, JPY 0, BHD 3), from the CLDR via Babel."""
    if currency is None:
        raise ValueError(
            "sources.order_history.amounts_in_minor_units is set, but the chain's currency is "
            "not: set [chain] currency in .dlt/config.toml (or CHAIN__CURRENCY), e.g. 'USD', so "
            "the amounts' minor unit is known."
        )
    from babel.numbers import get_currency_precision

    return get_currency_precision(currency)


def _line(row: int) -> int:
    return row + 2  # one for the header, one because people count lines from 1


def _first_bad(raw: pa.ChunkedArray, converted: pa.ChunkedArray) -> int | None:
    bad = pc.and_(pc.is_valid(raw), pc.is_null(converted))
    if not pc.any(bad).as_py():
        return None
    return pc.index(bad, True).as_py()


def _fail(file_name: str, row: int, column: str, field: str, value, expected: str, hint: str = ""):
    raise OrderHistoryFileError(
        f"{file_name}, line {_line(row)}, column {column!r} ({field}): {value!r} is not "
        f"{expected}.{hint}"
    )


def _blank_to_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    stripped = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)


def _timestamps(values: pa.ChunkedArray, date_format: str, timezone: str) -> pa.ChunkedArray:
    formats = ISO_DATE_FORMATS if date_format == ISO8601 else (date_format,)
    parsed = [pc.strptime(values, format=fmt, unit="us", error_is_null=True) for fmt in formats]
    naive = pc.coalesce(*parsed) if len(parsed) > 1 else parsed[0]
    # The file's clock is local to the chain unless told otherwise; the lake holds UTC instants.
    return pc.assume_timezone(naive, timezone).cast(pa.timestamp("us", tz="UTC"))


def convert(
    table: pa.Table,
    mapping: ColumnMapping,
    file_name: str,
    date_format: str = ISO8601,
    timezone: str = "UTC",
    minor_unit_digits: int = 0,
) -> pa.Table:
    """The mapped columns of `table` as typed Regulars fields, plus where each row came from.

    `minor_unit_digits` > 0: the file's amounts are in the currency's minor unit (cents are 2
    digits), and are divided into major units here, so the lake holds one unit whatever the file.
    """
    absent = [name for name in mapping.columns.values() if name not in table.column_names]
    if absent:
        raise OrderHistoryFileError(
            f"{file_name}: column(s) {', '.join(map(repr, absent))} named in "
            f"sources.order_history.column_mapping are not in the file (its columns: "
            f"{', '.join(map(repr, table.column_names))})."
        )
    text = {
        field: _blank_to_null(table.column(column)) for field, column in mapping.columns.items()
    }
    for field in REQUIRED_FIELDS:
        empty = pc.is_null(text[field])
        if pc.any(empty).as_py():
            row = pc.index(empty, True).as_py()
            _fail(file_name, row, mapping.columns[field], field, None, "set", " It is required.")

    out: dict[str, pa.ChunkedArray] = {"customer_id": text["customer_id"]}

    order_date = _timestamps(text["order_date"], date_format, timezone)
    row = _first_bad(text["order_date"], order_date)
    if row is not None:
        expected = (
            "an ISO 8601 date" if date_format == ISO8601 else f"a date in the format {date_format}"
        )
        _fail(
            file_name, row, mapping.columns["order_date"], "order_date",
            text["order_date"][row].as_py(), expected,
            " Fix the value, or set sources.order_history.date_format to the file's format.",
        )  # fmt: skip
    out["ordered_at"] = order_date

    for field, pattern, target, expected in (
        ("amount", *AMOUNT_FORMATS[bool(minor_unit_digits)]),
        ("quantity", r"^\d+$", pa.int64(), "a whole number"),
    ):
        if field not in text:
            out[field] = pa.nulls(table.num_rows, target)
            continue
        looks_right = pc.match_substring_regex(text[field], pattern)
        converted = pc.if_else(looks_right, text[field], pa.scalar(None, pa.string()))
        row = _first_bad(text[field], converted)
        if row is not None:
            _fail(file_name, row, mapping.columns[field], field, text[field][row].as_py(), expected)
        typed = converted.cast(target)
        if field == "amount" and minor_unit_digits:
            major = pc.divide(
                converted.cast(pa.decimal128(18, 0)), pa.scalar(10**minor_unit_digits, pa.int64())
            )
            # The lake keeps two decimals: a three-digit currency (BHD, KWD) rounds to them.
            typed = pc.round(major, 2, round_mode="half_to_even").cast(target)
        out[field] = typed

    # Unmapped optional fields land as nulls: every import has the same lake shape.
    for field in ("order_id", "store", "channel"):
        out[field] = text.get(field, pa.nulls(table.num_rows, pa.string()))

    lines = pa.array(range(2, table.num_rows + 2), type=pa.int64())
    out["source_file"] = pa.array([file_name] * table.num_rows, type=pa.string())
    out["source_line"] = lines
    # Re-importing a file must merge, not append: the POS order id when mapped, else its place.
    out["import_row_id"] = (
        pc.binary_join_element_wise(out["source_file"], out["order_id"], ":")
        if "order_id" in text
        else pc.binary_join_element_wise(out["source_file"], lines.cast(pa.string()), ":")
    )
    return pa.table(out)

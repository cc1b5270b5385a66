"""Turn one order-history file into typed rows, or say exactly which line and column is wrong.

Pure functions over Arrow: the file is read as text, each mapped column is converted in one
vectorised pass, and the first value that does not convert becomes an error naming the file, the
line (as a spreadsheet shows it: the header is line 1) and the column. A line that is not a row
of the file (its column count is wrong, its bytes are not in its encoding), or a second row of an
order id, lands instead as a row with the reason in `_malformed_fields`, for the gate to hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.held_lines import MALFORMED, stand_in_rows, unreadable_key
from ingestion.order_history.settings import (
    ISO8601,
    ISO_DATE_FORMATS,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
)
from ingestion.source_spec import SourceConfigError

MONEY = pa.decimal128(18, 2)
# How an amount must look: in major units (a decimal point allowed), or in minor units (whole).
AMOUNT_FORMATS = {
    False: (r"^-?\d+(\.\d+)?$", MONEY, "an amount like 125000 or 125000.50"),
    True: (r"^-?\d+$", MONEY, "a whole number of minor units (cents), like 12550"),
}


# A number whose reading depends on the separator convention: `25.500` is 25.5 with a decimal
# point and 25500 with a thousands separator (Indonesia, most of Europe); `1,250` likewise.
AMBIGUOUS_AMOUNT = r"^-?[1-9]\d{0,2}[.,]\d{3}$"
SEPARATOR_SETTINGS = (
    "sources.order_history.decimal_separator and sources.order_history.thousands_separator"
)


class OrderHistoryFileError(ValueError):
    """A value in an order-history file that cannot be read as its field's type."""


@dataclass(frozen=True)
class Separators:
    """How the file writes numbers: its decimal mark and thousands separator ("" for none)."""

    decimal: str
    thousands: str

    @classmethod
    def from_config(cls, decimal: str | None, thousands: str | None) -> Separators | None:
        """None when neither is set (amounts then must read the same under either convention)."""
        if decimal is None and thousands is None:
            return None
        if (
            decimal not in (".", ",")
            or thousands not in ("", ".", ",", " ", "'")
            or (decimal == thousands)
        ):
            raise SourceConfigError(
                f"{SEPARATOR_SETTINGS} in .dlt/config.toml: set both, the decimal separator to "
                '"." or "," and the thousands separator to another of ".", ",", " ", "\'" or "" '
                f"(none); got decimal {decimal!r}, thousands {thousands!r}."
            )
        return cls(decimal, thousands)

    @property
    def pattern(self) -> str:
        decimal = rf"({re.escape(self.decimal)}\d+)?"
        plain = rf"\d+{decimal}"
        if not self.thousands:
            return f"^-?{plain}$"
        return rf"^-?(\d{{1,3}}({re.escape(self.thousands)}\d{{3}})+{decimal}|{plain})$"


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
            raise SourceConfigError(
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
        raise SourceConfigError(
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


def _fail(file_name: str, line: int, column: str, field: str, value, expected: str, hint: str = ""):
    raise OrderHistoryFileError(
        f"{file_name}, line {line}, column {column!r} ({field}): {value!r} is not {expected}.{hint}"
    )


def canonical_amounts(
    values: pa.ChunkedArray,
    separators: Separators | None,
    file_name: str,
    column: str,
    lines: Sequence[int],
) -> pa.ChunkedArray:
    """Amounts written as `1234.5`: separators configured, as the file writes them; unset, the
    first value that reads differently under the two conventions is an error saying so."""
    if separators is None:
        ambiguous = pc.match_substring_regex(values, AMBIGUOUS_AMOUNT)
        if pc.any(ambiguous).as_py():
            row = pc.index(ambiguous, True).as_py()
            value = values[row].as_py()
            as_thousands = re.sub(r"[.,]", "", value)
            as_decimal = value.replace(",", ".")
            mark = "." if "." in value else ","
            other = "," if mark == "." else "."
            raise OrderHistoryFileError(
                f"{file_name}, line {lines[row]}, column {column!r} (amount): {value!r} is "
                f"{as_decimal} with {mark!r} as decimal separator, {as_thousands} with {mark!r} "
                f"as thousands separator. Say which the file uses: set {SEPARATOR_SETTINGS} "
                f'(for {as_thousands}: decimal_separator = "{other}", thousands_separator = '
                f'"{mark}").'
            )
        return values
    written = pc.match_substring_regex(values, separators.pattern)
    unwritten = pc.and_(pc.is_valid(values), pc.invert(written))
    if pc.any(unwritten).as_py():
        row = pc.index(unwritten, True).as_py()
        _fail(
            file_name, lines[row], column, "amount", values[row].as_py(),
            f"an amount written with decimal separator {separators.decimal!r} and thousands "
            f"separator {separators.thousands!r}",
            f" Fix the value, or {SEPARATOR_SETTINGS}.",
        )  # fmt: skip
    if separators.thousands:
        values = pc.replace_substring(values, separators.thousands, "")
    return pc.replace_substring(values, separators.decimal, ".")


def repeated_order_ids(order_ids: pa.ChunkedArray) -> dict[int, int]:
    """Row -> the row that first had its order id, for every later row of an id."""
    first: dict[str, int] = {}
    repeats = {}
    for row, order_id in enumerate(order_ids.to_pylist()):
        if order_id is None:
            continue
        if order_id in first:
            repeats[row] = first[order_id]
        else:
            first[order_id] = row
    return repeats


def unreadable_rows(
    file_name: str, rejected: Sequence[tuple[int, str]], schema: pa.Schema
) -> pa.Table:
    """Rows standing for the file's lines that are not rows (line, reason), in the lake's shape."""
    return stand_in_rows(
        schema,
        {
            "source_file": [file_name] * len(rejected),
            "source_line": [line for line, _ in rejected],
            "import_row_id": [unreadable_key(file_name, line) for line, _ in rejected],
            MALFORMED: [f"{file_name}, line {line}: {reason}" for line, reason in rejected],
        },
    )


def reconcile(file_name: str, rows_read: int, table: pa.Table) -> None:
    """Every row read is one row to land, held or not, under a key of its own: else the merge on
    `import_row_id` would lose rows with nobody told."""
    held = table.num_rows - pc.sum(pc.is_null(table.column(MALFORMED))).as_py()
    keys = pc.count_distinct(table.column("import_row_id")).as_py()
    if table.num_rows != rows_read or keys != rows_read:
        raise OrderHistoryFileError(
            f"{file_name}: {rows_read} rows read, but {table.num_rows - held} would land and "
            f"{held} be held, under {keys} distinct import_row_id values. Nothing of the file "
            "was loaded; this is a bug in the import, please report it with the file's layout."
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


def _delimiter_hint(columns: Sequence[str]) -> str:
    """What to set when the whole header reads as one column: the file has another separator."""
    if len(columns) != 1:
        return ""
    found = [mark for mark in (";", "\t", "|", ",") if mark in columns[0]]
    if not found:
        return ""
    return (
        f" The header reads as one column: if the file separates its columns with {found[0]!r}, "
        f"set sources.order_history.delimiter = {found[0]!r} (.dlt/config.toml)."
    )


def convert(
    table: pa.Table,
    mapping: ColumnMapping,
    file_name: str,
    date_format: str = ISO8601,
    timezone: str = "UTC",
    minor_unit_digits: int = 0,
    separators: Separators | None = None,
    lines: Sequence[int] | None = None,
) -> pa.Table:
    """The mapped columns of `table` as typed Regulars fields, plus where each row came from.

    `minor_unit_digits` > 0: the file's amounts are in the currency's minor unit (cents are 2
    digits), and are divided into major units here, so the lake holds one unit whatever the file.
    `lines`: each row's line in the file (unset: one line per row after the header).
    """
    if lines is None:
        lines = [_line(row) for row in range(table.num_rows)]
    absent = [name for name in mapping.columns.values() if name not in table.column_names]
    if absent:
        raise OrderHistoryFileError(
            f"{file_name}: column(s) {', '.join(map(repr, absent))} named in "
            f"sources.order_history.column_mapping are not in the file (its columns: "
            f"{', '.join(map(repr, table.column_names))}).{_delimiter_hint(table.column_names)}"
        )
    text = {
        field: _blank_to_null(table.column(column)) for field, column in mapping.columns.items()
    }
    for field in REQUIRED_FIELDS:
        empty = pc.is_null(text[field])
        if pc.any(empty).as_py():
            row = pc.index(empty, True).as_py()
            column = mapping.columns[field]
            _fail(file_name, lines[row], column, field, None, "set", " It is required.")

    out: dict[str, pa.ChunkedArray] = {"customer_id": text["customer_id"]}

    order_date = _timestamps(text["order_date"], date_format, timezone)
    row = _first_bad(text["order_date"], order_date)
    if row is not None:
        expected = (
            "an ISO 8601 date" if date_format == ISO8601 else f"a date in the format {date_format}"
        )
        _fail(
            file_name, lines[row], mapping.columns["order_date"], "order_date",
            text["order_date"][row].as_py(), expected,
            " Fix the value, or set sources.order_history.date_format to the file's format.",
        )  # fmt: skip
    out["ordered_at"] = order_date
    text["amount"] = canonical_amounts(
        text["amount"], separators, file_name, mapping.columns["amount"], lines
    )

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
            _fail(
                file_name, lines[row], mapping.columns[field], field, text[field][row].as_py(),
                expected,
            )  # fmt: skip
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

    line_numbers = pa.array(lines, type=pa.int64())
    out["source_file"] = pa.array([file_name] * table.num_rows, type=pa.string())
    out["source_line"] = line_numbers
    # Re-importing a file must merge, not append: the POS order id when mapped, else its place.
    places = pc.binary_join_element_wise(out["source_file"], line_numbers.cast(pa.string()), ":")
    reasons = [None] * table.num_rows
    if "order_id" in text:
        import_row_id = pc.binary_join_element_wise(out["source_file"], out["order_id"], ":")
        # A second row of an order id would replace the first in the merge, unseen: it is held
        # under its own place instead, and the first row lands.
        repeats = repeated_order_ids(out["order_id"])
        if repeats:
            again = pa.array([row in repeats for row in range(table.num_rows)])
            import_row_id = pc.if_else(
                again, pc.binary_join_element_wise("_repeated", places, ":"), import_row_id
            )
            for row, first in repeats.items():
                reasons[row] = (
                    f"{file_name}, line {lines[row]}: order id {out['order_id'][row].as_py()!r} "
                    f"is already on line {lines[first]} (that row is kept)"
                )
        out["import_row_id"] = import_row_id
    else:
        out["import_row_id"] = places
    out[MALFORMED] = pa.array(reasons, type=pa.string())
    return pa.table(out)

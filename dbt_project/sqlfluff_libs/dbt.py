"""Stand-ins for dbt's cross-database macros, so sqlfluff's jinja templater can render models.

Only the shape of the rendered SQL matters for linting; dbt itself renders the real thing.
"""


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + interval '{interval} {datepart}')"


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def safe_cast(field: str, data_type: str) -> str:
    return f"try_cast({field} as {data_type})"


def type_bigint() -> str:
    return "bigint"


def type_numeric() -> str:
    return "numeric(28, 6)"


def type_string() -> str:
    return "varchar"


def type_int() -> str:
    return "integer"


def type_float() -> str:
    return "double"


def type_timestamp() -> str:
    return "timestamp"


def last_day(date: str, datepart: str) -> str:
    return f"last_day({date})"


def concat(fields: list[str]) -> str:
    return " || ".join(fields)


def hash(field: str) -> str:
    return f"md5(cast({field} as varchar))"

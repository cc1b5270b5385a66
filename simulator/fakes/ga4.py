"""A local fake of the Google Analytics 4 Data API (v1beta) `runReport`, over the simulated world's
`ga4/sessions.parquet` (one row per session), aggregated with DuckDB on every request.

Shapes follow Google's reference: RunReportRequest / RunReportResponse, values as strings,
`rowCount` before paging, proto3 JSON (empty lists and zero counts are left out), errors as
`{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from simulator.fakes.common import (
    Faults,
    Request,
    Response,
    connect,
    format_money,
    parquet_sql,
    world_today,
)

DEFAULT_TOKEN = "fake-ga4-token"
DEFAULT_PROPERTY_ID = "123456789"

# The client this fake stands in for, named as the client names itself (dlt's `sources.ga4`),
# the world file it serves, and the account it answers for besides DEFAULT_TOKEN: how the demo
# finds it and points that client here.
STANDS_IN_FOR = "ga4"
DATA_FILE = "ga4/sessions.parquet"
ACCOUNT_SETTING = ("property_id", DEFAULT_PROPERTY_ID)


DEFAULT_LIMIT = 10_000
MAX_LIMIT = 250_000
MAX_DIMENSIONS, MAX_METRICS, MAX_DATE_RANGES = 9, 10, 4
CURRENCY, TIME_ZONE = "IDR", "Asia/Jakarta"
SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
FAULT_KINDS = ("quota", "quota_daily", "unavailable", "expired_token")


def _str_column(column: str) -> str:
    return f"coalesce(nullif({column}, ''), '(not set)')"


# API name -> (SQL over the sessions table, UI name).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "date": ("date", "Date"),
    "sessionSource": (_str_column("session_source"), "Session source"),
    "sessionMedium": (_str_column("session_medium"), "Session medium"),
    "sessionCampaignName": (_str_column("session_campaign_name"), "Session campaign"),
    "deviceCategory": (_str_column("device_category"), "Device category"),
    "region": (_str_column("region"), "Region"),
    "platform": (_str_column("platform"), "Platform"),
}
# API name -> (aggregate SQL, metric type, UI name).
METRICS: dict[str, tuple[str, str, str]] = {
    "sessions": ("count(*)", "TYPE_INTEGER", "Sessions"),
    "totalUsers": ("count(DISTINCT user_pseudo_id)", "TYPE_INTEGER", "Total users"),
    "newUsers": (
        "count(DISTINCT user_pseudo_id) FILTER (WHERE is_new_user)",
        "TYPE_INTEGER",
        "New users",
    ),
    "engagedSessions": ("count(*) FILTER (WHERE is_engaged)", "TYPE_INTEGER", "Engaged sessions"),
    "keyEvents": ("coalesce(sum(key_events), 0)", "TYPE_FLOAT", "Key events"),
    "purchaseRevenue": (
        "coalesce(sum(purchase_revenue), 0)",
        "TYPE_CURRENCY",
        "Purchase revenue",
    ),
}
REQUEST_FIELDS = {
    "property",
    "dimensions",
    "metrics",
    "dateRanges",
    "dimensionFilter",
    "metricFilter",
    "offset",
    "limit",
    "metricAggregations",
    "orderBys",
    "currencyCode",
    "cohortSpec",
    "keepEmptyRows",
    "returnPropertyQuota",
    "comparisons",
}
UNSUPPORTED_FIELDS = ("metricFilter", "cohortSpec", "comparisons")
AGGREGATIONS = {"TOTAL": "totals", "MAXIMUM": "maximums", "MINIMUM": "minimums"}
RUN_REPORT = re.compile(r"^/v1beta/properties/([^/:]+):runReport$")
METADATA = re.compile(r"^/v1beta/properties/([^/:]+)/metadata$")
RELATIVE_DAYS = re.compile(r"^(\d+)daysAgo$")


class ApiError(Exception):
    """An error Google would answer with: HTTP status, gRPC status name, message."""

    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return Response(self.code, body)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date
    name: str


@dataclass(frozen=True)
class Report:
    """A validated runReport request."""

    dimensions: list[str]
    metrics: list[str]
    date_ranges: list[DateRange]
    offset: int
    limit: int
    order_sql: list[str]
    where_sql: str
    where_params: list[Any]
    aggregations: list[str]
    return_quota: bool


class GA4Fake:
    """The GA4 Data API for one property. `handle` answers one request; the server does HTTP."""

    name = "ga4"

    def __init__(
        self,
        data_dir: Path | str,
        *,
        property_id: str = DEFAULT_PROPERTY_ID,
        token: str = DEFAULT_TOKEN,
        today: date | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.property_id = str(property_id)
        self.token = token
        self.fixed_today = today
        self.faults = Faults(FAULT_KINDS)
        self._tokens_used = 0

    @property
    def sessions_path(self) -> Path:
        return self.data_dir / "ga4" / "sessions.parquet"

    def today(self) -> date:
        """Relative dates ('today', 'NdaysAgo') count from the world's as-of date."""
        if self.fixed_today is not None:
            return self.fixed_today
        fallback = None
        if self.sessions_path.is_file():
            fallback = (
                f"SELECT max(strptime(date, '%Y%m%d'))::DATE FROM {parquet_sql(self.sessions_path)}"
            )
        return world_today(self.data_dir, fallback)

    def matches(self, path: str) -> bool:
        return path.startswith("/v1beta/")

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except ApiError as error:
            return error.response()

    def _handle(self, request: Request) -> Response:
        run, meta = RUN_REPORT.match(request.path), METADATA.match(request.path)
        if not run and not meta:
            raise ApiError(404, "NOT_FOUND", f"Method not found: {request.path}")
        self._authenticate(request)
        fault = self.faults.take(request.path, ("quota", "quota_daily", "unavailable"))
        if fault:
            raise _fault_error(fault)
        property_id = (run or meta).group(1)
        if property_id != self.property_id:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                "User does not have sufficient permissions for this property. To learn more about "
                "Property ID, see "
                "https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
            )
        if meta:
            if request.method != "GET":
                raise ApiError(404, "NOT_FOUND", f"Method not found: {request.method}")
            return Response(200, self._metadata())
        if request.method != "POST":
            raise ApiError(404, "NOT_FOUND", f"Method not found: {request.method} {request.path}")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as error:
            raise _invalid(f"Invalid JSON payload received. {error}") from None
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        report = self._parse(body)
        return Response(200, self._run(report))

    def _authenticate(self, request: Request) -> None:
        token = request.bearer_token()
        if token != self.token or self.faults.take(request.path, ("expired_token",)):
            raise ApiError(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )

    # --- request ---------------------------------------------------------------------------

    def _parse(self, body: dict[str, Any]) -> Report:
        for key in body:
            if key not in REQUEST_FIELDS:
                raise _invalid(
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        for key in UNSUPPORTED_FIELDS:
            if body.get(key):
                raise _invalid(f"{key} is not supported by the local GA4 fake.")
        if body.get("currencyCode") not in (None, "", CURRENCY):
            raise _invalid(f"The local GA4 fake reports in {CURRENCY} only.")

        dimensions = [_name(d, "dimension") for d in body.get("dimensions") or []]
        metrics = [_name(m, "metric") for m in body.get("metrics") or []]
        for name in dimensions:
            if name not in DIMENSIONS:
                raise _invalid(
                    f"Field {name} is not a valid dimension. For a list of valid dimensions and "
                    f"metrics, see {SCHEMA_URL}"
                )
        for name in metrics:
            if name not in METRICS:
                raise _invalid(
                    f"Field {name} is not a valid metric. For a list of valid dimensions and "
                    f"metrics, see {SCHEMA_URL}"
                )
        if not metrics and not dimensions:
            raise _invalid("At least one dimension or metric is required.")
        for label, names, most in (
            ("dimensions", dimensions, MAX_DIMENSIONS),
            ("metrics", metrics, MAX_METRICS),
        ):
            if len(names) > most:
                raise _invalid(f"Requests are limited to {most} {label}; {len(names)} requested.")
            if len(set(names)) < len(names):
                raise _invalid(f"Duplicate {label[:-1]} names in the request.")

        date_ranges = self._date_ranges(body.get("dateRanges") or [])
        if len(date_ranges) > 1:
            dimensions = [*dimensions, "dateRange"]

        offset = _int64(body.get("offset", 0), "offset")
        limit = _int64(body.get("limit", 0), "limit")
        if offset < 0:
            raise _invalid(f"offset must be non-negative; got {offset}.")
        if limit < 0:
            raise _invalid(f"limit must be positive; got {limit}.")
        limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)

        where_sql, where_params = _filter_sql(body.get("dimensionFilter"))
        aggregations = []
        for name in body.get("metricAggregations") or []:
            if name not in AGGREGATIONS:
                raise _invalid(f"Invalid value at 'metric_aggregations': {name}")
            aggregations.append(name)
        return Report(
            dimensions=dimensions,
            metrics=metrics,
            date_ranges=date_ranges,
            offset=offset,
            limit=limit,
            order_sql=_order_sql(body.get("orderBys") or [], dimensions, metrics),
            where_sql=where_sql,
            where_params=where_params,
            aggregations=aggregations,
            return_quota=bool(body.get("returnPropertyQuota")),
        )

    def _date_ranges(self, raw: list[Any]) -> list[DateRange]:
        if not raw:
            raise _invalid("A date range is required: set dateRanges.")
        if len(raw) > MAX_DATE_RANGES:
            raise _invalid(f"Requests are limited to {MAX_DATE_RANGES} dateRanges.")
        today = self.today()
        ranges = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise _invalid("Invalid JSON payload received. dateRanges must hold objects.")
            start = _parse_date(item.get("startDate"), today, "startDate")
            end = _parse_date(item.get("endDate"), today, "endDate")
            if start > end:
                raise _invalid(
                    f"Invalid date range: startDate {start.isoformat()} is after endDate "
                    f"{end.isoformat()}."
                )
            name = item.get("name")
            if name and name.startswith(("date_range_", "RESERVED_")):
                raise _invalid(f"Date range name {name!r} is reserved.")
            ranges.append(DateRange(start, end, name or f"date_range_{i}"))
        return ranges

    # --- report ----------------------------------------------------------------------------

    def _run(self, report: Report) -> dict[str, Any]:
        grouped_sql, params = self._grouped_sql(report)
        order = ", ".join(report.order_sql) or "1"
        paged_sql = (
            f"WITH g AS ({grouped_sql}) "
            f"SELECT *, (SELECT count(*) FROM g) AS __row_count FROM g "
            f"ORDER BY {order} LIMIT {report.limit} OFFSET {report.offset}"
        )
        with connect() as con:
            if self.sessions_path.is_file():
                rows = con.execute(paged_sql, params).fetchall()
                row_count = rows[0][-1] if rows else _count(con, grouped_sql, params)
                aggregates = self._aggregates(con, report, grouped_sql, params)
            else:
                rows, row_count, aggregates = [], 0, {}

        n_dims = len(report.dimensions)
        body: dict[str, Any] = {}
        if report.dimensions:
            body["dimensionHeaders"] = [{"name": name} for name in report.dimensions]
        if report.metrics:
            body["metricHeaders"] = [
                {"name": name, "type": METRICS[name][1]} for name in report.metrics
            ]
        if rows:
            body["rows"] = [_row(r[:n_dims], r[n_dims:-1], report.metrics) for r in rows]
        body.update(aggregates)
        if row_count:
            body["rowCount"] = row_count
        body["metadata"] = {"currencyCode": CURRENCY, "timeZone": TIME_ZONE}
        if report.return_quota:
            body["propertyQuota"] = self._quota()
        body["kind"] = "analyticsData#runReport"
        return body

    def _grouped_sql(self, report: Report) -> tuple[str, list[Any]]:
        """One grouped SELECT per date range (UNION ALL): dimension columns, then metrics."""
        parts, params = [], []
        dims = [d for d in report.dimensions if d != "dateRange"]
        for date_range in report.date_ranges:
            select = [f'{DIMENSIONS[d][0]} AS "{d}"' for d in dims]
            if "dateRange" in report.dimensions:
                select.append('? AS "dateRange"')
                params.append(date_range.name)
            n_keys = len(select)
            select += [f'{METRICS[m][0]} AS "{m}"' for m in report.metrics]
            # Metrics only: one row, and none at all when no session matches (HAVING).
            group = f"GROUP BY {', '.join(str(i + 1) for i in range(n_keys))}" if n_keys else ""
            parts.append(
                f"SELECT {', '.join(select)} FROM {parquet_sql(self.sessions_path)} "
                f"WHERE date BETWEEN ? AND ? AND ({report.where_sql}) {group} "
                "HAVING count(*) > 0"
            )
            params += [
                date_range.start.strftime("%Y%m%d"),
                date_range.end.strftime("%Y%m%d"),
                *report.where_params,
            ]
        return " UNION ALL ".join(parts), params

    def _aggregates(
        self,
        con: duckdb.DuckDBPyConnection,
        report: Report,
        grouped_sql: str,
        params: list[Any],
    ) -> dict[str, Any]:
        """`totals` (recomputed over the sessions, so distinct users stay distinct),
        `maximums` and `minimums` (over the report's rows), one row per date range."""
        out: dict[str, Any] = {}
        if not report.metrics:
            return out
        for name in report.aggregations:
            key, rows = AGGREGATIONS[name], []
            for date_range in report.date_ranges:
                if name == "TOTAL":
                    sql = (
                        f"SELECT {', '.join(METRICS[m][0] for m in report.metrics)} "
                        f"FROM {parquet_sql(self.sessions_path)} "
                        f"WHERE date BETWEEN ? AND ? AND ({report.where_sql})"
                    )
                    values = con.execute(
                        sql,
                        [
                            date_range.start.strftime("%Y%m%d"),
                            date_range.end.strftime("%Y%m%d"),
                            *report.where_params,
                        ],
                    ).fetchone()
                else:
                    fn = "max" if name == "MAXIMUM" else "min"
                    where = "TRUE"
                    sql_params = list(params)
                    if "dateRange" in report.dimensions:
                        where = '"dateRange" = ?'
                        sql_params.append(date_range.name)
                    select = ", ".join(f'coalesce({fn}("{m}"), 0)' for m in report.metrics)
                    values = con.execute(
                        f"SELECT {select} FROM ({grouped_sql}) WHERE {where}", sql_params
                    ).fetchone()
                dims = [
                    date_range.name if d == "dateRange" else f"RESERVED_{name}"
                    for d in report.dimensions
                ]
                rows.append(_row(dims, values, report.metrics))
            out[key] = rows
        return out

    def _quota(self) -> dict[str, Any]:
        self._tokens_used += 1
        used = self._tokens_used

        def status(limit: int) -> dict[str, int]:
            return {"consumed": 1, "remaining": max(limit - used, 0)}

        return {
            "tokensPerDay": status(200_000),
            "tokensPerHour": status(40_000),
            "concurrentRequests": {"consumed": 0, "remaining": 10},
            "serverErrorsPerProjectPerHour": {"consumed": 0, "remaining": 10},
            "potentiallyThresholdedRequestsPerHour": {"consumed": 0, "remaining": 120},
            "tokensPerProjectPerHour": status(14_000),
        }

    def _metadata(self) -> dict[str, Any]:
        return {
            "name": f"properties/{self.property_id}/metadata",
            "dimensions": [
                {"apiName": name, "uiName": ui, "description": ui, "category": "Fake"}
                for name, (_, ui) in DIMENSIONS.items()
            ],
            "metrics": [
                {"apiName": name, "uiName": ui, "description": ui, "type": t, "category": "Fake"}
                for name, (_, t, ui) in METRICS.items()
            ],
        }


# --- helpers ------------------------------------------------------------------------------------


def _fault_error(kind: str) -> ApiError:
    if kind == "quota":
        return ApiError(
            429,
            "RESOURCE_EXHAUSTED",
            "Exhausted property tokens per hour for a project per property. These quota tokens "
            "will return in under an hour. To learn more, see "
            "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
        )
    if kind == "quota_daily":
        return ApiError(
            429,
            "RESOURCE_EXHAUSTED",
            "Exhausted property tokens per day. These quota tokens will return in under 24 hours. "
            "To learn more, see "
            "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
        )
    return ApiError(503, "UNAVAILABLE", "The service is currently unavailable.")


def _name(item: Any, kind: str) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise _invalid(f"Each {kind} needs a name.")
    if set(item) - {"name"}:
        raise _invalid(f"{kind.capitalize()} expressions are not supported by the local GA4 fake.")
    return item["name"]


def _int64(value: Any, field: str) -> int:
    """int64 fields arrive as JSON numbers or as strings (proto3 JSON)."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid value at '{field}' (TYPE_INT64), {value!r}") from None


def _parse_date(value: Any, today: date, field: str) -> date:
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    if isinstance(value, str):
        relative = RELATIVE_DAYS.match(value)
        if relative:
            return today - timedelta(days=int(relative.group(1)))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    raise _invalid(f"Invalid {field} {value!r}: use YYYY-MM-DD, NdaysAgo, yesterday, or today.")


def _order_sql(order_bys: list[Any], dimensions: list[str], metrics: list[str]) -> list[str]:
    """ORDER BY terms: the request's orderBys, then every dimension ascending so the order is
    total (and paging stable)."""
    terms = []
    for order in order_bys:
        if not isinstance(order, dict):
            raise _invalid("orderBys must hold objects.")
        direction = " DESC" if order.get("desc") else " ASC"
        if "dimension" in order:
            name = (order["dimension"] or {}).get("dimensionName")
            if name not in dimensions:
                raise _invalid(f"OrderBy dimension {name} is not in the request's dimensions.")
            order_type = (order["dimension"] or {}).get("orderType", "ALPHANUMERIC")
            if order_type == "CASE_INSENSITIVE_ALPHANUMERIC":
                term = f'lower("{name}")'
            elif order_type == "NUMERIC":
                term = f'TRY_CAST("{name}" AS DOUBLE)'
            elif order_type in ("ALPHANUMERIC", "ORDER_TYPE_UNSPECIFIED"):
                term = f'"{name}"'
            else:
                raise _invalid(f"Invalid orderType {order_type}.")
            terms.append(term + direction)
        elif "metric" in order:
            name = (order["metric"] or {}).get("metricName")
            if name not in metrics:
                raise _invalid(f"OrderBy metric {name} is not in the request's metrics.")
            terms.append(f'"{name}"{direction}')
        else:
            raise _invalid("Each orderBy needs a dimension or a metric.")
    terms += [f'"{d}" ASC' for d in dimensions]
    return terms


def _filter_sql(expression: Any) -> tuple[str, list[Any]]:
    """A dimensionFilter (andGroup / orGroup / notExpression / filter with stringFilter or
    inListFilter) as a SQL condition with parameters."""
    if not expression:
        return "TRUE", []
    if not isinstance(expression, dict):
        raise _invalid("dimensionFilter must be an object.")
    for group, joiner in (("andGroup", " AND "), ("orGroup", " OR ")):
        if group in expression:
            parts, params = [], []
            for sub in (expression[group] or {}).get("expressions") or []:
                sql, sub_params = _filter_sql(sub)
                parts.append(f"({sql})")
                params += sub_params
            return (joiner.join(parts) or "TRUE"), params
    if "notExpression" in expression:
        sql, params = _filter_sql(expression["notExpression"])
        return f"NOT ({sql})", params
    flt = expression.get("filter")
    if not isinstance(flt, dict):
        raise _invalid("Unsupported dimensionFilter expression.")
    name = flt.get("fieldName")
    if name not in DIMENSIONS:
        raise _invalid(f"Field {name} is not a valid dimension for a dimensionFilter.")
    column = DIMENSIONS[name][0]
    if "stringFilter" in flt:
        spec = flt["stringFilter"] or {}
        value, match = str(spec.get("value", "")), spec.get("matchType", "EXACT")
        sensitive = bool(spec.get("caseSensitive"))
        col, val = (column, value) if sensitive else (f"lower({column})", value.lower())
        if match in ("EXACT", "MATCH_TYPE_UNSPECIFIED"):
            return f"{col} = ?", [val]
        if match == "BEGINS_WITH":
            return f"starts_with({col}, ?)", [val]
        if match == "ENDS_WITH":
            return f"ends_with({col}, ?)", [val]
        if match == "CONTAINS":
            return f"contains({col}, ?)", [val]
        if match in ("FULL_REGEXP", "PARTIAL_REGEXP"):
            fn = "regexp_full_match" if match == "FULL_REGEXP" else "regexp_matches"
            flags = "" if sensitive else "i"
            return f"{fn}({column}, ?, '{flags}')", [value]
        raise _invalid(f"Invalid matchType {match}.")
    if "inListFilter" in flt:
        spec = flt["inListFilter"] or {}
        values = [str(v) for v in spec.get("values") or []]
        if not values:
            return "FALSE", []
        if spec.get("caseSensitive"):
            return f"{column} IN ({', '.join('?' * len(values))})", values
        return (
            f"lower({column}) IN ({', '.join('?' * len(values))})",
            [v.lower() for v in values],
        )
    raise _invalid("Only stringFilter and inListFilter are supported by the local GA4 fake.")


def _count(con: duckdb.DuckDBPyConnection, grouped_sql: str, params: list[Any]) -> int:
    return con.execute(f"SELECT count(*) FROM ({grouped_sql})", params).fetchone()[0]


def _metric_value(value: Any, metric: str) -> str:
    if METRICS[metric][1] == "TYPE_CURRENCY":
        return format_money(value)
    if METRICS[metric][1] == "TYPE_FLOAT":
        number = float(value or 0)
        return str(int(number)) if number.is_integer() else repr(number)  # GA4: "12", "2.5"
    return str(int(value or 0))


def _row(dimension_values: Any, metric_values: Any, metrics: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if len(dimension_values):
        row["dimensionValues"] = [{"value": str(v)} for v in dimension_values]
    if metrics:
        row["metricValues"] = [
            {"value": _metric_value(v, m)} for v, m in zip(metric_values, metrics, strict=True)
        ]
    return row

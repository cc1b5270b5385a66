"""Pure functions for the GA4 source: request bodies, typed rows, and errors a person can act on.

GA4 sends every value as a string; rows land typed (date as a date, counts as integers, revenue
as a two-place decimal) under snake_case names, plus `report_row_id`, the row's dimension values
as one JSON string: a single-column key for the validation gate and its quarantine.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from requests import Response

from ingestion.ga4.settings import (
    API_VERSION,
    METRIC_KINDS,
    MONEY_PRECISION,
    MONEY_SCALE,
    Report,
)

ROW_ID = "report_row_id"
CENT = Decimal("0.01")
QUOTA_DOC = "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas"


class GA4Error(RuntimeError):
    """The GA4 Data API refused a request in a way a retry will not fix."""


class GA4CredentialsError(GA4Error):
    """The token is missing, expired, or has no access to the property."""


class GA4QuotaError(GA4Error):
    """The property's quota is spent; it refills by the hour or by the day."""


def snake(name: str) -> str:
    """GA4's camelCase API name as a lake column: sessionCampaignName -> session_campaign_name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def run_report_path(property_id: str) -> str:
    return f"/{API_VERSION}/properties/{property_id}:runReport"


def check_report(report: Report) -> None:
    """Fail before any request if a report cannot be landed as declared."""
    if not report.dimensions or report.dimensions[0] != "date":
        raise ValueError(f"GA4 report {report.name}: its first dimension must be `date`.")
    unknown = [metric for metric in report.metrics if metric not in METRIC_KINDS]
    if unknown:
        raise ValueError(
            f"GA4 report {report.name}: no landing type for metric(s) {', '.join(unknown)}; "
            "add them to METRIC_KINDS in ingestion/ga4/settings.py."
        )


def run_report_body(
    report: Report, start: date, end: date | str, currency_code: str | None = None
) -> dict[str, Any]:
    """The RunReportRequest for one report and date range; the paginator adds offset and limit.

    Google promises no row order, so the body orders by every dimension: offset paging is only
    stable over a total order. Revenue comes in `currency_code` whatever the property's own
    currency, so it sums with the chain's order revenue; None leaves the property's.
    """
    body = {
        "dateRanges": [
            {"startDate": start.isoformat(), "endDate": end if isinstance(end, str) else str(end)}
        ],
        "dimensions": [{"name": name} for name in report.dimensions],
        "metrics": [{"name": name} for name in report.metrics],
        "orderBys": [{"dimension": {"dimensionName": name}} for name in report.dimensions],
    }
    return body | ({"currencyCode": currency_code} if currency_code else {})


def report_columns(report: Report) -> dict[str, dict[str, Any]]:
    """The landing table's declared columns: the schema contract for this report."""
    columns: dict[str, dict[str, Any]] = {
        snake(name): {"data_type": "date" if name == "date" else "text", "nullable": False}
        for name in report.dimensions
    }
    for name in report.metrics:
        kind = METRIC_KINDS[name]
        if kind == "money":
            column = {"data_type": "decimal", "precision": MONEY_PRECISION, "scale": MONEY_SCALE}
        else:
            column = {"data_type": "bigint" if kind == "integer" else "double"}
        columns[snake(name)] = column
    columns[ROW_ID] = {"data_type": "text", "nullable": False, "unique": True}
    return columns


def primary_key(report: Report) -> list[str]:
    return [snake(name) for name in report.dimensions]


def _metric(value: str, kind: str) -> int | float | Decimal:
    if kind == "integer":
        return int(Decimal(value))  # "12" and, defensively, "12.0"
    if kind == "money":
        return Decimal(value).quantize(CENT)  # Google may send float noise: 145591.30000000002
    return float(value)


def typed_rows(report: Report, response: dict[str, Any]) -> list[dict[str, Any]]:
    """One runReport page as typed lake rows, columns looked up by header name, not position."""
    dimension_at = {h["name"]: i for i, h in enumerate(response.get("dimensionHeaders", []))}
    metric_at = {h["name"]: i for i, h in enumerate(response.get("metricHeaders", []))}
    missing = [n for n in report.dimensions if n not in dimension_at] + [
        n for n in report.metrics if n not in metric_at
    ]
    rows = response.get("rows", [])
    if rows and missing:
        raise GA4Error(f"GA4 report {report.name}: the response lacks {', '.join(missing)}.")
    out = []
    for row in rows:
        dimensions = [row["dimensionValues"][dimension_at[n]]["value"] for n in report.dimensions]
        metrics = [row["metricValues"][metric_at[n]]["value"] for n in report.metrics]
        record: dict[str, Any] = {}
        for name, value in zip(report.dimensions, dimensions, strict=True):
            record[snake(name)] = (
                datetime.strptime(value, "%Y%m%d").date() if name == "date" else value
            )
        try:
            for name, value in zip(report.metrics, metrics, strict=True):
                record[snake(name)] = _metric(value, METRIC_KINDS[name])
        except (InvalidOperation, ValueError):
            raise GA4Error(
                f"GA4 report {report.name}: metric {name} is {value!r} on row {dimensions}, "
                "which is not a number."
            ) from None
        record[ROW_ID] = json.dumps(
            [record["date"].isoformat(), *dimensions[1:]], ensure_ascii=False
        )
        out.append(record)
    return out


# --- errors and retries -------------------------------------------------------------------------


def _api_error(response: Response) -> tuple[str, str]:
    """(gRPC status name, message) from Google's error body; empty strings if there is none."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", response.text[:200]
    return str(error.get("status", "")), str(error.get("message", ""))


def is_daily_quota(response: Response) -> bool:
    return response.status_code == 429 and "per day" in _api_error(response)[1]


def should_retry(response: Response | None, exception: BaseException | None) -> bool:
    """Retry 5xx and hourly-quota 429s; a spent daily quota will not come back within a run."""
    if response is None:
        return False
    return response.status_code >= 500 or (
        response.status_code == 429 and not is_daily_quota(response)
    )


def api_error(property_id: str, response: Response, max_attempts: int) -> GA4Error:
    """An error naming the property, what GA4 said, and what to do about it."""
    attempts = max_attempts if should_retry(response, None) else 1
    status, message = _api_error(response)
    said = f"{response.status_code} {status}: {message}".strip()
    where = f"GA4 property {property_id}"
    if response.status_code == 401:
        return GA4CredentialsError(
            f"{where}: the access token was refused ({said}). Check sources.ga4.access_token in "
            ".dlt/secrets.toml (or SOURCES__GA4__ACCESS_TOKEN): tokens last an hour, so mint a "
            "fresh one from the service account before each run (ingestion/ga4/README.md)."
        )
    if response.status_code == 403:
        return GA4CredentialsError(
            f"{where}: permission denied ({said}). Check sources.ga4.property_id, and give the "
            "service account Viewer access to the property (GA4 Admin > Property access "
            "management); check sources.ga4.access_token in .dlt/secrets.toml is its token."
        )
    if response.status_code == 429:
        when = "after midnight Pacific time" if is_daily_quota(response) else "within the hour"
        return GA4QuotaError(
            f"{where}: quota exhausted, still after {attempts} attempt(s) ({said}). Wait for the "
            f"quota to refill ({when}) and run again; see {QUOTA_DOC}."
        )
    if response.status_code >= 500:
        return GA4Error(
            f"{where}: the Data API kept failing after {attempts} attempt(s) ({said}). "
            "Run again later."
        )
    return GA4Error(
        f"{where}: the request was rejected ({said}). Check the report definitions in "
        "ingestion/ga4/settings.py against the property's dimensions and metrics."
    )

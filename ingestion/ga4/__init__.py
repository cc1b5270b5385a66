"""Google Analytics 4: daily traffic reports from the Data API's runReport.

One resource per report in `settings.REPORTS`, each a POST to
`/v1beta/properties/{property_id}:runReport` through dlt's RESTClient, paged by `offset` / `limit`
in the JSON body until `rowCount` rows have come. GA4 revises the last ~72 hours, so every run
re-pulls from the newest loaded date minus `lookback_days` (dlt's incremental on `date` with a
lag in days) and replaces those days whole: rows merge on the report's dimensions, and a day in
the new load deletes that day's old rows first, so a row GA4 has since dropped goes too.

429 (hourly quota) and 5xx are retried with exponential back-off; a quota still spent after
that, a spent daily quota, and a refused token stop the load with an error naming the property
and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import dlt
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

from ingestion.ga4.helpers import (
    api_error,
    check_report,
    primary_key,
    report_columns,
    run_report_body,
    run_report_path,
    should_retry,
    typed_rows,
)
from ingestion.ga4.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_PAGE_SIZE,
    REPORTS,
    REQUEST_BACKOFF_FACTOR,
    REQUEST_MAX_ATTEMPTS,
    REQUEST_MAX_RETRY_DELAY,
    REQUEST_TIMEOUT,
    SCHEMA_CONTRACT,
    Report,
)
from ingestion.source_spec import http_api
from regulars.apis.rest import as_date, bearer_client, explained, require_settings
from regulars.settings import load_chain

SOURCE_NAME = "ga4"


def _report_resource(
    report: Report,
    client: RESTClient,
    property_id: str,
    start_date: date,
    lookback_days: int,
    end: date | str,
    page_size: int,
    max_attempts: int,
    currency_code: str | None,
) -> DltResource:
    check_report(report)

    def report_rows(
        day: dlt.sources.incremental[date] = dlt.sources.incremental(
            "date", initial_value=start_date, lag=lookback_days
        ),
    ) -> Iterator[list[dict[str, Any]]]:
        # With a lag, last_value is the newest loaded date minus lookback_days (never before
        # start_date): the revised days are asked for again.
        body = run_report_body(report, day.last_value, end, currency_code)
        paginator = OffsetPaginator(
            limit=page_size,
            offset_body_path="offset",
            limit_body_path="limit",
            total_path="rowCount",
        )
        with explained(lambda response: api_error(property_id, response, max_attempts)):
            for page in client.paginate(
                run_report_path(property_id), method="POST", json=body, paginator=paginator
            ):
                yield typed_rows(report, page.response.json())

    return dlt.resource(
        report_rows,
        name=report.name,
        primary_key=primary_key(report),
        merge_key="date",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=report_columns(report),
        schema_contract=SCHEMA_CONTRACT,
    )


@dlt.source(name=SOURCE_NAME)
def ga4_source(
    property_id: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    start_date: str = dlt.config.value,
    base_url: str = DEFAULT_BASE_URL,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    page_size: int = DEFAULT_PAGE_SIZE,
    today: str | None = None,
    request_max_attempts: int = REQUEST_MAX_ATTEMPTS,
    request_backoff_factor: float = REQUEST_BACKOFF_FACTOR,
    request_max_retry_delay: float = REQUEST_MAX_RETRY_DELAY,
    request_timeout: float = REQUEST_TIMEOUT,
    # The ISO 4217 code revenue is reported in; unset, the chain's (`[chain] currency`).
    currency_code: str | None = None,
) -> Iterator[DltResource]:
    """Every report in settings.REPORTS for one GA4 property, re-pulling the last days each run.

    `today` pins the range's last day (tests; a backfill); unset, GA4's own `today` in the
    property's time zone. Revenue is asked for in the chain's currency; with none configured,
    GA4 reports it in the property's own.
    """
    require_settings("GA4", SOURCE_NAME, {"property_id": property_id, "access_token": access_token})
    property_id = str(property_id).strip().removeprefix("properties/")
    client = bearer_client(
        base_url,
        str(access_token).strip(),
        retry_condition=should_retry,
        # No blanket 429 retry: a spent daily quota will not refill within a run.
        retry_status_codes=(),
        max_attempts=request_max_attempts,
        backoff_factor=request_backoff_factor,
        max_retry_delay=request_max_retry_delay,
        timeout=request_timeout,
        data_selector="rows",
    )
    end: date | str = as_date(today) if today else "today"
    currency_code = currency_code or load_chain().currency
    for report in REPORTS:
        yield _report_resource(
            report,
            client,
            property_id,
            as_date(start_date),
            int(lookback_days),
            end,
            int(page_size),
            int(request_max_attempts),
            currency_code,
        )


SOURCE = http_api(
    SOURCE_NAME,
    "Google Analytics 4: the property's daily traffic report (Data API).",
    "googleanalytics",
    ga4_source,
    account_key="property_id",  # pragma: allowlist secret
    base_url=DEFAULT_BASE_URL,
)

"""Meta (Facebook / Instagram) ads: the ad account's campaigns, ad sets, ads and daily insights.

Reads the Marketing API (Graph API) through dlt's RESTClient, following `paging.next` links.
Campaigns, ad sets and ads are small: every run reads them all (archived and deleted included,
since their past spend stays in the insights) and merges on `id`. Insights are ad x day x
publisher platform; Meta keeps attributing purchases to a day for `attribution_window_days`
after it, so every run re-pulls from the newest loaded day minus that window (dlt's incremental
on `date_start` with a lag in days) and replaces those days whole.

Meta throttles with HTTP 400 and a rate-limit code (4, 17, 32, 613, 80000-80014): the session
retries those, and 5xx, with exponential back-off. An expired or missing token (190, 104), a
throttle that outlasts the retries, or any other refusal stops the load with an error naming the
account and what to do.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dlt
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator

from ingestion.meta_ads.helpers import (
    INSIGHT_KEY,
    account_node,
    api_error,
    budget_offset,
    date_slices,
    has_budgets,
    insight_columns,
    insights_params,
    object_columns,
    object_params,
    typed_insight,
    typed_object,
)
from ingestion.meta_ads.settings import (
    DEFAULT_ATTRIBUTION_WINDOW_DAYS,
    DEFAULT_INSIGHTS_DAYS_PER_REQUEST,
    DEFAULT_INSIGHTS_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    OBJECT_FIELDS,
    REQUEST_BACKOFF_FACTOR,
    REQUEST_MAX_ATTEMPTS,
    REQUEST_MAX_RETRY_DELAY,
    REQUEST_TIMEOUT,
    SCHEMA_CONTRACT,
)
from ingestion.source_spec import http_api
from regulars.apis.meta_graph import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    is_rate_limited,
    versioned_root,
)
from regulars.apis.rest import as_date, bearer_client, explained, require_settings

SOURCE_NAME = "meta_ads"


@dlt.source(name=SOURCE_NAME)
def meta_ads_source(
    ad_account_id: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    start_date: str = dlt.config.value,
    base_url: str = DEFAULT_BASE_URL,
    api_version: str = DEFAULT_API_VERSION,
    attribution_window_days: int = DEFAULT_ATTRIBUTION_WINDOW_DAYS,
    page_size: int = DEFAULT_PAGE_SIZE,
    insights_page_size: int = DEFAULT_INSIGHTS_PAGE_SIZE,
    insights_days_per_request: int = DEFAULT_INSIGHTS_DAYS_PER_REQUEST,
    today: str | None = None,
    request_max_attempts: int = REQUEST_MAX_ATTEMPTS,
    request_backoff_factor: float = REQUEST_BACKOFF_FACTOR,
    request_max_retry_delay: float = REQUEST_MAX_RETRY_DELAY,
    request_timeout: float = REQUEST_TIMEOUT,
) -> Iterator[DltResource]:
    """Campaigns, ad sets, ads (merged on id) and ad insights (re-pulled over the attribution
    window) of one ad account.

    `today` pins the last day of the insights range (tests; a backfill); unset, today in the ad
    account's time zone.
    """
    require_settings(
        "Meta ads",
        SOURCE_NAME,
        {"ad_account_id": ad_account_id, "access_token": access_token},
    )
    node = account_node(ad_account_id)
    max_attempts = int(request_max_attempts)
    client = bearer_client(
        versioned_root(base_url, api_version),
        str(access_token).strip(),
        # Beside dlt's default 429 / 5xx / connection errors: Meta throttles with a 400.
        retry_condition=is_rate_limited,
        max_attempts=max_attempts,
        backoff_factor=request_backoff_factor,
        max_retry_delay=request_max_retry_delay,
        timeout=request_timeout,
        paginator=JSONLinkPaginator(next_url_path="paging.next"),
        data_selector="data",
    )

    def explained_errors() -> AbstractContextManager[None]:
        return explained(lambda response: api_error(node, response, max_attempts))

    @functools.cache
    def account() -> dict[str, Any]:
        # Asked once, when a resource first needs it (defining the assets makes no request).
        with explained_errors():
            response = client.get(node, params={"fields": "currency,timezone_name"})
            response.raise_for_status()
        return response.json()

    def budget_unit() -> int:
        # Meta counts budgets in the offset unit of the account's currency.
        return budget_offset(account()["currency"])

    def last_day() -> date:
        # Insights are days of the account's time zone: its today, not this machine's (a UTC
        # server is a day behind Jakarta each evening, a day ahead of Los Angeles).
        if today:
            return as_date(today)
        return datetime.now(ZoneInfo(account()["timezone_name"])).date()

    def object_resource(edge: str) -> DltResource:
        def objects() -> Iterator[list[dict[str, Any]]]:
            offset = budget_unit() if has_budgets(edge) else 1
            with explained_errors():
                for page in client.paginate(
                    f"{node}/{edge}", params=object_params(edge, page_size)
                ):
                    yield [typed_object(edge, obj, offset) for obj in page]

        return dlt.resource(
            objects,
            name=edge,
            primary_key="id",
            write_disposition="merge",
            columns=object_columns(edge),
            schema_contract=SCHEMA_CONTRACT,
        )

    for edge in OBJECT_FIELDS:
        yield object_resource(edge)

    @dlt.resource(
        name="insights",
        primary_key=list(INSIGHT_KEY),
        merge_key="date_start",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=insight_columns(),
        schema_contract=SCHEMA_CONTRACT,
    )
    def insights(
        day: dlt.sources.incremental[date] = dlt.sources.incremental(
            "date_start", initial_value=as_date(start_date), lag=int(attribution_window_days)
        ),
    ) -> Iterator[list[dict[str, Any]]]:
        # With a lag, last_value is the newest loaded day minus the attribution window (never
        # before start_date).
        with explained_errors():
            end = last_day()
            for since, until in date_slices(day.last_value, end, int(insights_days_per_request)):
                params = insights_params(since, until, insights_page_size)
                for page in client.paginate(f"{node}/insights", params=params):
                    yield [typed_insight(row) for row in page]

    yield insights


SOURCE = http_api(
    SOURCE_NAME,
    "Instagram Ads through the Meta Marketing API: objects and insights.",
    "meta",
    meta_ads_source,
    account_key="ad_account_id",  # pragma: allowlist secret
    base_url=DEFAULT_BASE_URL,
)

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
from contextlib import contextmanager
from datetime import date
from typing import Any

import dlt
from dlt.sources import DltResource
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from requests import HTTPError

from ingestion.meta_ads.helpers import (
    INSIGHT_KEY,
    account_node,
    api_error,
    as_date,
    budget_offset,
    date_slices,
    has_budgets,
    insight_columns,
    insights_params,
    is_rate_limited,
    object_columns,
    object_params,
    typed_insight,
    typed_object,
)
from ingestion.meta_ads.settings import (
    DEFAULT_API_VERSION,
    DEFAULT_ATTRIBUTION_WINDOW_DAYS,
    DEFAULT_BASE_URL,
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

SOURCE_NAME = "meta_ads"


def _client(
    base_url: str,
    api_version: str,
    access_token: str,
    max_attempts: int,
    backoff_factor: float,
    max_retry_delay: float,
    timeout: float,
) -> RESTClient:
    """A RESTClient on the versioned Graph root whose session also retries Meta's throttling."""
    session = Client(
        request_timeout=timeout,
        raise_for_status=False,
        retry_condition=is_rate_limited,  # beside the default 429 / 5xx / connection errors
        request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor,
        request_max_retry_delay=max_retry_delay,
    ).session
    return RESTClient(
        base_url=f"{base_url.rstrip('/')}/{api_version.strip('/')}",
        # In the header, not the query: the token stays out of URLs (Meta still repeats it in
        # `paging.next` links when it was sent in the query).
        auth=BearerTokenAuth(token=access_token),
        session=session,
        paginator=JSONLinkPaginator(next_url_path="paging.next"),
        data_selector="data",
    )


@contextmanager
def _explained(ad_account_id: str, max_attempts: int) -> Iterator[None]:
    """Turn an HTTP error from the Graph API into an error a person can act on."""
    try:
        yield
    except HTTPError as error:
        if error.response is None:
            raise
        raise api_error(ad_account_id, error.response, max_attempts) from error


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

    `today` pins the last day of the insights range (tests; a backfill); unset, this machine's
    date.
    """
    missing = [
        key
        for key, value in (("ad_account_id", ad_account_id), ("access_token", access_token))
        if not str(value or "").strip()
    ]
    if missing:
        raise ValueError(
            "Meta ads: set "
            + " and ".join(f"sources.meta_ads.{key}" for key in missing)
            + " (.dlt/config.toml for the account id, .dlt/secrets.toml for the token, or "
            "SOURCES__META_ADS__AD_ACCOUNT_ID / SOURCES__META_ADS__ACCESS_TOKEN)."
        )
    node = account_node(ad_account_id)
    max_attempts = int(request_max_attempts)
    client = _client(
        base_url,
        api_version,
        str(access_token).strip(),
        max_attempts,
        request_backoff_factor,
        request_max_retry_delay,
        request_timeout,
    )

    @functools.cache
    def budget_unit() -> int:
        # The account's currency, asked once: Meta counts budgets in its offset unit.
        with _explained(node, max_attempts):
            response = client.get(node, params={"fields": "currency"})
            response.raise_for_status()
        return budget_offset(response.json()["currency"])

    def object_resource(edge: str) -> DltResource:
        def objects() -> Iterator[list[dict[str, Any]]]:
            offset = budget_unit() if has_budgets(edge) else 1
            with _explained(node, max_attempts):
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

    end = as_date(today) if today else date.today()

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
        with _explained(node, max_attempts):
            for since, until in date_slices(day.last_value, end, int(insights_days_per_request)):
                params = insights_params(since, until, insights_page_size)
                for page in client.paginate(f"{node}/insights", params=params):
                    yield [typed_insight(row) for row in page]

    yield insights

"""dlt's RESTClient as every API of Regulars uses it: a bearer token in the header, a session that
retries what the API says is worth retrying, errors turned into a paragraph a person can act on,
and the configuration checked before the first request."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import HTTPError, Response

RetryCondition = Callable[[Response | None, BaseException | None], bool]


def as_date(value: date | str) -> date:
    """A config date (`2025-03-01`, a datetime, or a date already) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def require_settings(api: str, source: str, values: Mapping[str, Any]) -> None:
    """Stop before any request when a setting is blank, naming where each is set.

    `values` maps setting names (`property_id`, `access_token`) to what dlt resolved; the token
    goes in .dlt/secrets.toml, the rest in .dlt/config.toml, either as SOURCES__<SOURCE>__<KEY>.
    """
    missing = [key for key, value in values.items() if not str(value or "").strip()]
    if not missing:
        return
    places = [
        f".dlt/{'secrets' if key == 'access_token' else 'config'}.toml for the "
        f"{'token' if key == 'access_token' else key.replace('_', ' ')}"
        for key in values
    ]
    variables = " / ".join(f"SOURCES__{source.upper()}__{key.upper()}" for key in values)
    raise ValueError(
        f"{api}: set "
        + " and ".join(f"sources.{source}.{key}" for key in missing)
        + f" ({', '.join(places)}, or {variables})."
    )


def bearer_client(
    base_url: str,
    access_token: str,
    *,
    retry_condition: RetryCondition,
    max_attempts: int,
    backoff_factor: float,
    timeout: float,
    max_retry_delay: float | None = None,
    retry_status_codes: tuple[int, ...] | None = None,
    paginator: BasePaginator | None = None,
    data_selector: str | None = None,
) -> RESTClient:
    """A RESTClient with the token in the Authorization header (never in URLs, which servers log
    and some repeat in their paging links) over a session that retries `retry_condition`,
    besides dlt's default of 429, 5xx and connection errors unless `retry_status_codes` narrows
    the status codes."""
    options: dict[str, Any] = {
        "request_timeout": timeout,
        "raise_for_status": False,
        "retry_condition": retry_condition,
        "request_max_attempts": max_attempts,
        "request_backoff_factor": backoff_factor,
    }
    if max_retry_delay is not None:
        options["request_max_retry_delay"] = max_retry_delay
    if retry_status_codes is not None:
        options["status_codes"] = retry_status_codes
    return RESTClient(
        base_url=base_url,
        auth=BearerTokenAuth(token=access_token),
        session=Client(**options).session,
        paginator=paginator,
        data_selector=data_selector,
    )


@contextmanager
def explained(error_for: Callable[[Response], Exception]) -> Iterator[None]:
    """An HTTP error the API answered becomes `error_for(response)`: one paragraph that names the
    account and what to do, instead of dlt's retries traceback. Errors without a response
    (connection refused, DNS) keep their own message."""
    try:
        yield
    except HTTPError as error:
        if error.response is None:
            raise
        raise error_for(error.response) from error

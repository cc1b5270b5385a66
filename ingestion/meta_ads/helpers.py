"""Pure functions for the Meta ads source: request parameters, typed rows, errors and retries.

Meta sends insight numbers as strings and purchases inside `actions` / `action_values`; rows land
typed (dates as dates, counts as integers, money as two-place decimals) with only the declared
fields, and insights get `insight_id`, their key as one JSON string, for the validation gate.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from requests import Response

from ingestion.meta_ads.settings import (
    EFFECTIVE_STATUSES,
    INSIGHT_FIELDS,
    INSIGHT_TEXT_FIELDS,
    INSIGHTS_BREAKDOWN,
    INSIGHTS_LEVEL,
    MONEY_PRECISION,
    MONEY_SCALE,
    OBJECT_FIELDS,
    PURCHASE_ACTION_TYPES,
    WHOLE_UNIT_CURRENCIES,
)
from regulars.apis.meta_graph import (
    TOKEN_ERROR_CODES,
    graph_error,
    is_rate_limited,
    minutes_to_regain_access,
)
from regulars.apis.rest import as_date

INSIGHT_ID = "insight_id"
INSIGHT_KEY = ("date_start", "ad_id", INSIGHTS_BREAKDOWN)
CENT = Decimal("0.01")
GRAPH_TIME = "%Y-%m-%dT%H:%M:%S%z"
DATA_TYPES = {"text": "text", "budget": "decimal", "timestamp": "timestamp"}


class MetaAdsError(RuntimeError):
    """The Marketing API refused a request in a way a retry will not fix."""


class MetaAdsTokenError(MetaAdsError):
    """The access token is missing, invalid or expired."""


class MetaAdsRateLimitError(MetaAdsError):
    """Still throttled after every retry."""


def account_node(ad_account_id: str) -> str:
    """`act_<id>` whether the config holds `123` or `act_123`."""
    return "act_" + str(ad_account_id).strip().removeprefix("act_")


def date_slices(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive ranges of at most `days` days; empty if start > end."""
    slices, since = [], start
    while since <= end:
        until = min(since + timedelta(days=days - 1), end)
        slices.append((since, until))
        since = until + timedelta(days=1)
    return slices


# --- requests -----------------------------------------------------------------------------------


def object_params(edge: str, page_size: int) -> dict[str, Any]:
    return {
        "fields": ",".join(OBJECT_FIELDS[edge]),
        "effective_status": json.dumps(list(EFFECTIVE_STATUSES[edge])),
        "limit": page_size,
    }


def insights_params(since: date, until: date, page_size: int) -> dict[str, Any]:
    return {
        "level": INSIGHTS_LEVEL,
        "fields": ",".join(INSIGHT_FIELDS),
        "breakdowns": INSIGHTS_BREAKDOWN,
        "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
        "time_increment": 1,
        "limit": page_size,
    }


# --- rows ---------------------------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _count(value: Any) -> int:
    return int(Decimal(str(value)).to_integral_value())


def graph_time(value: str) -> datetime:
    """A Graph time (2025-03-01T10:00:00+0700) as a UTC instant."""
    return datetime.strptime(value, GRAPH_TIME).astimezone(UTC)


def object_columns(edge: str) -> dict[str, dict[str, Any]]:
    return {name: _object_column(name, kind) for name, kind in OBJECT_FIELDS[edge].items()}


def _object_column(name: str, kind: str) -> dict[str, Any]:
    column: dict[str, Any] = {"data_type": DATA_TYPES[kind]}
    if kind == "budget":
        column |= {"precision": MONEY_PRECISION, "scale": MONEY_SCALE}
    if name == "id":
        column["nullable"] = False
    return column


def has_budgets(edge: str) -> bool:
    return "budget" in OBJECT_FIELDS[edge].values()


def budget_offset(currency: str) -> int:
    """Meta's budget units in one unit of the account currency: 100 for USD, 1 for IDR or JPY."""
    return 1 if currency.strip().upper() in WHOLE_UNIT_CURRENCIES else 100


def typed_object(edge: str, obj: dict[str, Any], offset: int) -> dict[str, Any]:
    """A campaign, ad set or ad with exactly its declared fields, typed; absent fields are null.

    Budgets are divided by `offset` (budget_offset of the account currency) into major units.
    """
    row: dict[str, Any] = {}
    for name, kind in OBJECT_FIELDS[edge].items():
        value = obj.get(name)
        if value is None or value == "":
            row[name] = None
        elif kind == "budget":
            row[name] = _money(Decimal(_count(value)) / offset)
        elif kind == "timestamp":
            row[name] = graph_time(value)
        else:
            row[name] = str(value)
    return row


def action_value(actions: list[dict[str, Any]] | None, action_type: str) -> str | None:
    """The value of one action type in an `actions` / `action_values` list, None if absent."""
    for action in actions or []:
        if action.get("action_type") == action_type:
            return action.get("value")
    return None


def purchase_action_type(row: dict[str, Any]) -> str | None:
    """The purchase action type a row's purchases are read from (PURCHASE_ACTION_TYPES order),
    None when it reports none. The value comes from the same type, so count and value agree."""
    reported = {action.get("action_type") for action in row.get("actions") or []}
    reported |= {action.get("action_type") for action in row.get("action_values") or []}
    return next((kind for kind in PURCHASE_ACTION_TYPES if kind in reported), None)


INSIGHT_TEXT = (*INSIGHT_TEXT_FIELDS, INSIGHTS_BREAKDOWN)
INSIGHT_COUNTS = ("impressions", "reach", "clicks", "purchases")
INSIGHT_MONEY = ("spend", "purchase_value")


def insight_columns() -> dict[str, dict[str, Any]]:
    money = {"data_type": "decimal", "precision": MONEY_PRECISION, "scale": MONEY_SCALE}
    # A fresh dict per column: dlt writes each column's name into its hint.
    columns: dict[str, dict[str, Any]] = {
        INSIGHT_ID: {"data_type": "text", "unique": True},
        "date_start": {"data_type": "date"},
        "date_stop": {"data_type": "date"},
        **{name: {"data_type": "text"} for name in INSIGHT_TEXT},
        **{name: {"data_type": "bigint"} for name in INSIGHT_COUNTS},
        **{name: dict(money) for name in INSIGHT_MONEY},
    }
    for name in (INSIGHT_ID, *INSIGHT_KEY):
        columns[name]["nullable"] = False
    return columns


def typed_insight(row: dict[str, Any]) -> dict[str, Any]:
    """One insights row (ad x day x platform) typed, with purchases from one action type.

    Meta leaves out `actions` on rows without purchases (and any metric that is zero): absent is
    zero.
    """
    key = [row.get(name) for name in INSIGHT_KEY]
    purchase = purchase_action_type(row)
    values = {
        **row,
        "purchases": action_value(row.get("actions"), purchase) if purchase else None,
        "purchase_value": action_value(row.get("action_values"), purchase) if purchase else None,
    }
    out: dict[str, Any] = {
        INSIGHT_ID: json.dumps(key),
        "date_start": as_date(row["date_start"]),
        "date_stop": as_date(row["date_stop"]) if row.get("date_stop") else None,
    }
    for name in INSIGHT_TEXT:
        out[name] = None if values.get(name) in (None, "") else str(values[name])
    for names, convert in ((INSIGHT_COUNTS, _count), (INSIGHT_MONEY, _money)):
        for name in names:
            try:
                out[name] = convert(values.get(name) or 0)
            except (InvalidOperation, ValueError):
                raise MetaAdsError(
                    f"Meta insights row {key}: {name} is {values[name]!r}, not a number."
                ) from None
    return out


# --- errors and retries -------------------------------------------------------------------------


def api_error(ad_account_id: str, response: Response, max_attempts: int) -> MetaAdsError:
    """An error naming the ad account, what Meta said, and what to do about it."""
    error = graph_error(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    said = f"code {code}{f'/{subcode}' if subcode else ''}: {error.get('message', response.text)}"
    where = f"Meta ads account {account_node(ad_account_id)}"
    if code in TOKEN_ERROR_CODES:
        return MetaAdsTokenError(
            f"{where}: the access token was refused ({said}). Renew sources.meta_ads.access_token "
            "in .dlt/secrets.toml (or SOURCES__META_ADS__ACCESS_TOKEN); a system-user token from "
            "Business Settings does not expire (ingestion/meta_ads/README.md)."
        )
    if is_rate_limited(response, None):
        wait = minutes_to_regain_access(response)
        when = f"Meta expects access back in about {wait} minute(s)" if wait else "wait a while"
        return MetaAdsRateLimitError(
            f"{where}: still rate limited after {max_attempts} attempt(s) ({said}). {when}, then "
            "run again; if it recurs, run less often or lower insights_days_per_request."
        )
    if response.status_code >= 500:
        return MetaAdsError(
            f"{where}: the Graph API kept failing after {max_attempts} attempt(s) ({said}). "
            "Run again later."
        )
    return MetaAdsError(
        f"{where}: the request was rejected ({said}). Check sources.meta_ads.ad_account_id and "
        "the fields in ingestion/meta_ads/settings.py."
    )

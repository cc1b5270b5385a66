"""What the Meta Marketing API source asks for, how it lands, and its defaults."""

from __future__ import annotations

# Where the Graph API is, and its version: regulars/apis/meta_graph.py, shared with activation.

# Meta attributes a purchase to the ad up to 7 days after the click (its default window), so a
# day's figures keep changing for a week: every run re-pulls from the newest loaded day minus this.
DEFAULT_ATTRIBUTION_WINDOW_DAYS = 7

# Objects per page of campaigns / ad sets / ads, and insight rows per page (Meta's default is 25).
DEFAULT_PAGE_SIZE = 200
DEFAULT_INSIGHTS_PAGE_SIZE = 500
# Days per insights request: ad x day x platform rows over a long range time out synchronously
# (error 100/1504018, "try a smaller date range"), so a first load walks the range in slices.
DEFAULT_INSIGHTS_DAYS_PER_REQUEST = 30

# Retries on throttling (HTTP 400 with a rate-limit code) and 5xx: attempts in all, exponential
# back-off factor in seconds, the longest single wait. Meta's ad-account throttles lift within
# minutes, so the production back-off is longer than GA4's.
REQUEST_MAX_ATTEMPTS = 6
REQUEST_BACKOFF_FACTOR = 5.0
REQUEST_MAX_RETRY_DELAY = 300.0
REQUEST_TIMEOUT = 120.0

# Meta lists the same purchases under several overlapping action types, so they are never
# summed: a row's purchases (and their value) are those of the first type here that it reports.
# omni_purchase is Meta's de-duplicated total over web, app and offline; `purchase` is the
# standard event name newer accounts report; then the channel-specific types, for accounts
# that track only one channel.
PURCHASE_ACTION_TYPES = (
    "omni_purchase",
    "purchase",
    "offsite_conversion.fb_pixel_purchase",
    "onsite_web_purchase",
    "app_custom_event.fb_mobile_purchase",
    "offline_conversion.purchase",
)

# Fields asked for per object edge (always with `id`) and how they land: "text", "budget" (Meta
# sends budgets as whole numbers of the account currency's offset unit, landed as decimal(18, 2)
# in major units) or "timestamp" (Graph times like 2025-03-01T10:00:00+0700, landed in UTC).
OBJECT_FIELDS: dict[str, dict[str, str]] = {
    "campaigns": {
        "id": "text",
        "account_id": "text",
        "name": "text",
        "objective": "text",
        "status": "text",
        "effective_status": "text",
        "daily_budget": "budget",
        "lifetime_budget": "budget",
        "created_time": "timestamp",
        "updated_time": "timestamp",
        "start_time": "timestamp",
        "stop_time": "timestamp",
    },
    "adsets": {
        "id": "text",
        "account_id": "text",
        "campaign_id": "text",
        "name": "text",
        "status": "text",
        "effective_status": "text",
        "optimization_goal": "text",
        "daily_budget": "budget",
        "lifetime_budget": "budget",
        "created_time": "timestamp",
        "updated_time": "timestamp",
        "start_time": "timestamp",
        "end_time": "timestamp",
    },
    "ads": {
        "id": "text",
        "account_id": "text",
        "campaign_id": "text",
        "adset_id": "text",
        "name": "text",
        "status": "text",
        "effective_status": "text",
        "created_time": "timestamp",
        "updated_time": "timestamp",
    },
}

# Every effective status per edge: without them Meta hides ARCHIVED and DELETED objects, whose
# past spend the insights still carry.
EFFECTIVE_STATUSES: dict[str, tuple[str, ...]] = {
    "campaigns": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"),
    "adsets": (
        "ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "CAMPAIGN_PAUSED", "IN_PROCESS",
        "WITH_ISSUES",
    ),
    "ads": (
        "ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "PENDING_REVIEW", "DISAPPROVED",
        "PREAPPROVED", "PENDING_BILLING_INFO", "CAMPAIGN_PAUSED", "ADSET_PAUSED", "IN_PROCESS",
        "WITH_ISSUES",
    ),
}  # fmt: skip

# Insights at ad level, one row per ad x day x publisher platform.
INSIGHTS_LEVEL = "ad"
INSIGHTS_BREAKDOWN = "publisher_platform"
# The fields asked for: the ids and names that land as text, the delivery figures, and the action
# lists purchases are read from (helpers.purchase_action_type).
INSIGHT_TEXT_FIELDS = (
    "account_id",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
)
INSIGHT_FIELDS = (
    *INSIGHT_TEXT_FIELDS,
    "impressions",
    "reach",
    "clicks",
    "spend",
    "actions",
    "action_values",
)

# Money columns: decimal(18, 2) in the account currency.
MONEY_PRECISION, MONEY_SCALE = 18, 2

# Budgets come as whole numbers of Meta's offset unit: a hundredth of the currency, except for
# these, counted in whole units (https://developers.facebook.com/docs/marketing-api/currencies).
# Meta's own table, not ISO 4217's minor units: it counts TWD and CRC whole, BHD in hundredths.
WHOLE_UNIT_CURRENCIES = frozenset(
    {"CLP", "COP", "CRC", "HUF", "IDR", "ISK", "JPY", "KRW", "PYG", "TWD", "VND"}
)

# Rows are built from the fields above only (helpers), so nothing undeclared reaches dlt; a value
# that does not fit its declared type stops the load rather than landing as a variant column.
# Columns evolve so that a field added above lands as a new column (dlt's `freeze` and
# `discard_value` refuse columns declared in code too).
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}

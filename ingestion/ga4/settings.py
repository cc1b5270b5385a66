"""The GA4 reports Regulars pulls, how their fields land, and the source's defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE_URL = "https://analyticsdata.googleapis.com"
API_VERSION = "v1beta"

# GA4 keeps processing (and revising) the last ~72 hours: every run re-pulls this many days
# before the newest date already loaded, and merges.
DEFAULT_LOOKBACK_DAYS = 3

# Rows per runReport call (GA4 allows up to 250,000; quota tokens grow with rows per call).
DEFAULT_PAGE_SIZE = 10_000

# Retries on 429 (hourly quota) and 5xx: attempts in all, and the exponential back-off factor in
# seconds (waits 1x, 2x, 4x ... the factor, each at most the max delay).
REQUEST_MAX_ATTEMPTS = 5
REQUEST_BACKOFF_FACTOR = 2.0
REQUEST_MAX_RETRY_DELAY = 60.0
REQUEST_TIMEOUT = 60.0

# Rows are built from the declared fields only (helpers.typed_rows), so nothing undeclared can
# reach dlt; a value that does not fit its declared type stops the load rather than landing as a
# variant column. Columns evolve so that a metric added to a report below lands as a new column
# (dlt's `freeze` and `discard_value` refuse columns declared in code too).
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}

# How each metric lands: "integer" (bigint), "money" (decimal, 2 places, in the currency the
# request names) or "number" (double). A report may only ask for metrics listed here.
METRIC_KINDS: dict[str, str] = {
    "sessions": "integer",
    "totalUsers": "integer",
    "newUsers": "integer",
    "engagedSessions": "integer",
    # A float in GA4's metadata (TYPE_FLOAT): a key event can count fractionally (per-session
    # counting, data-driven conversion credit). Landed as bigint before; ingestion/starting_over
    # restarts a lake built then.
    "keyEvents": "number",
    "purchaseRevenue": "money",
}

# Money columns: decimal(18, 2). Rupiah amounts of a property's day fit with room to spare.
MONEY_PRECISION, MONEY_SCALE = 18, 2


@dataclass(frozen=True)
class Report:
    """One runReport request, landed as one table keyed by its dimensions.

    `date` must be the first dimension: it is the incremental cursor and the lookback's unit.
    """

    name: str
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]


REPORTS: tuple[Report, ...] = (
    Report(
        name="traffic_daily",
        dimensions=(
            "date",
            "sessionSource",
            "sessionMedium",
            "sessionCampaignName",
            "deviceCategory",
            "region",
        ),
        metrics=(
            "sessions",
            "totalUsers",
            "newUsers",
            "engagedSessions",
            "keyEvents",
            "purchaseRevenue",
        ),
    ),
)

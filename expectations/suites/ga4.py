"""What bad data from the GA4 Data API looks like."""

from __future__ import annotations

import pandas as pd

from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import (
    between,
    day_at,
    in_set,
    keyed,
    not_null,
    timestamps_in_chain_lifetime,
)

TRAFFIC_KEYS = [
    "date",
    "session_source",
    "session_medium",
    "session_campaign_name",
    "device_category",
    "region",
]
TRAFFIC_COUNTS = ["sessions", "total_users", "new_users", "engaged_sessions", "key_events"]
# GA4's deviceCategory values: the platform a session came from.
DEVICE_CATEGORIES = ["desktop", "mobile", "tablet", "smart tv"]


def _traffic_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        _date_at=day_at(frame, "date"),
        _purchase_revenue=frame["purchase_revenue"].astype(float),
    )


def table_suites() -> dict[str, TableSuite]:
    # No currency column to check: the source asks GA4 for revenue in the chain's currency
    # whatever the property's own (ingestion/ga4/__init__.py).
    return {
        "traffic_daily": TableSuite(
            table_name="traffic_daily",
            primary_key="report_row_id",
            required_columns=[*TRAFFIC_KEYS, *TRAFFIC_COUNTS, "purchase_revenue", "report_row_id"],
            expectations=[
                *keyed("report_row_id"),
                *not_null(*TRAFFIC_KEYS),
                in_set("device_category", DEVICE_CATEGORIES),
                *timestamps_in_chain_lifetime("_date_at"),
                *(between(c, 0) for c in TRAFFIC_COUNTS),
                between("_purchase_revenue", 0),
                # No rule between the counts (new users within total users, engaged sessions
                # within sessions): GA4 estimates each distinct count on its own (HyperLogLog++),
                # so small rows break those orders now and then and are still GA4's figures.
                # The staging model warns about them instead (models/staging/ga4).
            ],
            derive=_traffic_arithmetic,
            # Every run re-pulls GA4's processing window and the days since: comparable batches.
            volume=VolumeRule(),
        )
    }

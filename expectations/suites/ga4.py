"""What bad data from the GA4 Data API looks like."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from expectations.suites import TableSuite
from expectations.suites.ordering import timestamps_in_chain_lifetime

TRAFFIC_KEYS = [
    "date",
    "session_source",
    "session_medium",
    "session_campaign_name",
    "device_category",
    "region",
]
TRAFFIC_COUNTS = ["sessions", "total_users", "new_users", "engaged_sessions", "key_events"]


def day_at(frame: pd.DataFrame, column: str) -> pd.Series:
    """A date column as UTC midnights, so the chain-lifetime bounds (timestamps) apply to it."""
    return pd.to_datetime(frame[column]).dt.tz_localize("UTC")


def _traffic_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    # GA4 counts an engaged session once among the sessions, and a new user among the users.
    return frame.assign(
        _date_at=day_at(frame, "date"),
        _engaged_minus_sessions=frame["engaged_sessions"] - frame["sessions"],
        _new_minus_total_users=frame["new_users"] - frame["total_users"],
        _purchase_revenue=frame["purchase_revenue"].astype(float),
    )


def _at_most_zero(column: str):
    return gx.expectations.ExpectColumnValuesToBeBetween(column=column, max_value=0)


def table_suites() -> dict[str, TableSuite]:
    return {
        "traffic_daily": TableSuite(
            table_name="traffic_daily",
            primary_key="report_row_id",
            required_columns=[*TRAFFIC_KEYS, *TRAFFIC_COUNTS, "purchase_revenue", "report_row_id"],
            expectations=[
                gx.expectations.ExpectColumnValuesToNotBeNull(column="report_row_id"),
                gx.expectations.ExpectColumnValuesToBeUnique(column="report_row_id"),
                *(gx.expectations.ExpectColumnValuesToNotBeNull(column=c) for c in TRAFFIC_KEYS),
                *timestamps_in_chain_lifetime("_date_at"),
                *(
                    gx.expectations.ExpectColumnValuesToBeBetween(column=c, min_value=0)
                    for c in TRAFFIC_COUNTS
                ),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="_purchase_revenue", min_value=0
                ),
                _at_most_zero("_engaged_minus_sessions"),
                _at_most_zero("_new_minus_total_users"),
            ],
            derive=_traffic_arithmetic,
        )
    }

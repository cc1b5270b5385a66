"""What bad data from the Meta Marketing API looks like."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from expectations.suites import TableSuite
from expectations.suites.ga4 import day_at
from expectations.suites.ordering import timestamps_in_chain_lifetime

# Where a Meta ad can run (the publisher_platform breakdown's values).
PUBLISHER_PLATFORMS = [
    "facebook",
    "instagram",
    "messenger",
    "audience_network",
    "threads",
    "whatsapp",
]
INSIGHT_COUNTS = ["impressions", "reach", "clicks", "purchases"]


def _keyed(column: str):
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=column),
        gx.expectations.ExpectColumnValuesToBeUnique(column=column),
    ]


def _not_null(*columns: str):
    return [gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in columns]


def _insight_checks(frame: pd.DataFrame) -> pd.DataFrame:
    spend = frame["spend"].astype(float)
    return frame.assign(
        _date_at=day_at(frame, "date_start"),
        _spend=spend,
        _purchase_value=frame["purchase_value"].astype(float),
        # Money spent on an ad Regulars cannot tie to a campaign cannot be attributed.
        _spend_without_campaign=frame["campaign_id"].isna() & (spend > 0),
        _clicks_minus_impressions=frame["clicks"] - frame["impressions"],
    )


def table_suites() -> dict[str, TableSuite]:
    return {
        "campaigns": TableSuite(
            table_name="campaigns",
            primary_key="id",
            required_columns=["id", "account_id", "name", "effective_status"],
            expectations=[*_keyed("id"), *_not_null("account_id")],
        ),
        "adsets": TableSuite(
            table_name="adsets",
            primary_key="id",
            required_columns=["id", "account_id", "campaign_id", "name", "effective_status"],
            expectations=[*_keyed("id"), *_not_null("account_id", "campaign_id")],
        ),
        "ads": TableSuite(
            table_name="ads",
            primary_key="id",
            required_columns=["id", "account_id", "campaign_id", "adset_id", "effective_status"],
            expectations=[*_keyed("id"), *_not_null("account_id", "campaign_id", "adset_id")],
        ),
        "insights": TableSuite(
            table_name="insights",
            primary_key="insight_id",
            required_columns=[
                "insight_id",
                "date_start",
                "campaign_id",
                "ad_id",
                "publisher_platform",
                *INSIGHT_COUNTS,
                "spend",
                "purchase_value",
            ],
            expectations=[
                *_keyed("insight_id"),
                *_not_null("date_start", "ad_id", "publisher_platform"),
                *timestamps_in_chain_lifetime("_date_at"),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="publisher_platform", value_set=PUBLISHER_PLATFORMS
                ),
                *(
                    gx.expectations.ExpectColumnValuesToBeBetween(column=c, min_value=0)
                    for c in (*INSIGHT_COUNTS, "_spend", "_purchase_value")
                ),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="_spend_without_campaign", value_set=[False]
                ),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="_clicks_minus_impressions", max_value=0
                ),
            ],
            derive=_insight_checks,
        ),
    }

"""What bad data from the Meta Marketing API looks like."""

from __future__ import annotations

import pandas as pd

from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import (
    between,
    day_at,
    in_chain_currency,
    in_set,
    keyed,
    not_null,
    timestamps_in_chain_lifetime,
)
from ingestion.meta_ads.settings import EFFECTIVE_STATUSES

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
# One ad's day on one platform above a billion rupiah is a currency or decimal-point slip.
ABSURD_DAILY_SPEND_IDR = 1_000_000_000


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


def _object_suite(edge: str, parents: tuple[str, ...]) -> TableSuite:
    """Campaigns, ad sets and ads: small lists read whole every run, so no volume rule."""
    budgets = () if edge == "ads" else ("daily_budget", "lifetime_budget")
    return TableSuite(
        table_name=edge,
        primary_key="id",
        required_columns=["id", "account_id", *parents, "effective_status"],
        expectations=[
            *keyed("id"),
            *not_null("account_id", *parents, "effective_status"),
            in_set("effective_status", EFFECTIVE_STATUSES[edge]),
            *(between(budget, 0) for budget in budgets),
            *timestamps_in_chain_lifetime("created_time"),
        ],
    )


def table_suites() -> dict[str, TableSuite]:
    return {
        "campaigns": _object_suite("campaigns", ()),
        "adsets": _object_suite("adsets", ("campaign_id",)),
        "ads": _object_suite("ads", ("campaign_id", "adset_id")),
        "insights": TableSuite(
            table_name="insights",
            primary_key="insight_id",
            required_columns=[
                "insight_id",
                "date_start",
                "campaign_id",
                "ad_id",
                "publisher_platform",
                "account_currency",
                *INSIGHT_COUNTS,
                "spend",
                "purchase_value",
            ],
            expectations=[
                *keyed("insight_id"),
                *not_null("date_start", "ad_id", "publisher_platform", "account_currency"),
                *timestamps_in_chain_lifetime("_date_at"),
                in_set("publisher_platform", PUBLISHER_PLATFORMS),
                # An ad account billing in another currency than the chain's.
                *in_chain_currency("account_currency"),
                *(between(c, 0) for c in (*INSIGHT_COUNTS, "_purchase_value")),
                between("_spend", 0, ABSURD_DAILY_SPEND_IDR),
                in_set("_spend_without_campaign", [False]),
                between("_clicks_minus_impressions", high=0),
            ],
            derive=_insight_checks,
            # Every run re-pulls the attribution window and the days since: comparable batches.
            volume=VolumeRule(),
        ),
    }

"""What bad data from the messaging provider's webhooks looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import (
    in_set,
    keyed,
    not_null,
    platform_ids,
    timestamps_in_chain_lifetime,
)

OBJECT_TYPES = ["email", "sms"]
METRICS = [
    "sent",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "unsubscribed",
    "bounced",
    "dropped",
    "failed",
    "spammed",
    "undeliverable",
    "attempted",
]


def table_suites() -> dict[str, TableSuite]:
    return {
        "delivery_events": TableSuite(
            table_name="delivery_events",
            primary_key="event_id",
            required_columns=["event_id", "object_type", "metric", "occurred_at", "data"],
            expectations=[
                *keyed("event_id"),
                # A landing line that could not be read, with its file and line (ingestion).
                gx.expectations.ExpectColumnValuesToBeNull(column="_malformed_fields"),
                *not_null("object_type", "metric", "delivery_id", "occurred_at"),
                in_set("object_type", OBJECT_TYPES),
                in_set("metric", METRICS),
                *platform_ids("customer_id", "campaign_id"),
                *timestamps_in_chain_lifetime("occurred_at"),
            ],
            # Webhooks land on the collector's schedule; a collapsed batch is lost deliveries.
            volume=VolumeRule(),
        )
    }

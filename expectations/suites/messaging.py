"""What bad data from the messaging provider's webhooks looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite
from expectations.suites.ordering import timestamps_in_chain_lifetime

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
                gx.expectations.ExpectColumnValuesToNotBeNull(column="event_id"),
                gx.expectations.ExpectColumnValuesToBeUnique(column="event_id"),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="object_type", value_set=OBJECT_TYPES
                ),
                gx.expectations.ExpectColumnValuesToBeInSet(column="metric", value_set=METRICS),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="delivery_id"),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="occurred_at"),
                *timestamps_in_chain_lifetime("occurred_at"),
            ],
        )
    }

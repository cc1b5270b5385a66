"""What bad data from the apps' API-call records looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite
from expectations.suites.ordering import timestamps_in_chain_lifetime

# A call slower than ten minutes is a clock or logging fault, not a slow service.
ABSURD_LATENCY_MS = 600_000
TELEMETRY_PLATFORMS = ["ios", "android", "web"]


def table_suites() -> dict[str, TableSuite]:
    return {
        "api_calls": TableSuite(
            table_name="api_calls",
            primary_key="request_id",
            required_columns=["request_id", "service", "status_code", "latency_ms", "occurred_at"],
            expectations=[
                gx.expectations.ExpectColumnValuesToNotBeNull(column="request_id"),
                gx.expectations.ExpectColumnValuesToBeUnique(column="request_id"),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="service"),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="platform", value_set=TELEMETRY_PLATFORMS
                ),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="status_code", min_value=100, max_value=599
                ),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="latency_ms", min_value=0, max_value=ABSURD_LATENCY_MS
                ),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="occurred_at"),
                *timestamps_in_chain_lifetime("occurred_at"),
            ],
        )
    }

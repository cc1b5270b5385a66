"""What bad data from the apps' API-call records looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import (
    between,
    in_set,
    keyed,
    not_null,
    timestamps_in_chain_lifetime,
)

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
                *keyed("request_id"),
                # A landing line that could not be read, with its file and line (ingestion).
                gx.expectations.ExpectColumnValuesToBeNull(column="_malformed_fields"),
                # A present but unreadable occurred_at lands as null (ingestion's try_cast); a
                # timed-out call has no status code.
                *not_null("service", "platform", "latency_ms", "occurred_at"),
                in_set("platform", TELEMETRY_PLATFORMS),
                between("status_code", 100, 599),
                between("latency_ms", 0, ABSURD_LATENCY_MS),
                *timestamps_in_chain_lifetime("occurred_at"),
            ],
            # The gateway ships records hourly: a batch far below the usual is lost records.
            volume=VolumeRule(),
        )
    }

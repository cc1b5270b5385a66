"""App service telemetry: one record per API call the apps made, from the landing zone.

The apps' API gateway writes a record per call (service, endpoint, platform, latency, status,
timeout) to the landing zone's `telemetry` stream; service-level marts read them. Each record
carries a request id, its key: a record shipped twice lands once.
"""

from __future__ import annotations

import dlt
from dlt.sources import DltSource

from ingestion.landing_zone import landing_table
from ingestion.source_spec import landing_stream

SOURCE_NAME = "telemetry"
STREAM = "telemetry"

CALL_FIELDS = {
    "request_id": "VARCHAR",
    "occurred_at": "VARCHAR",
    "service": "VARCHAR",
    "endpoint": "VARCHAR",
    "platform": "VARCHAR",
    "app_version": "VARCHAR",
    "store_id": "BIGINT",
    "status_code": "INTEGER",
    "latency_ms": "INTEGER",
    "is_timeout": "BOOLEAN",
}

SELECT_SQL = """
select
    request_id,
    try_cast(occurred_at as timestamptz) as occurred_at,
    service,
    endpoint,
    platform,
    app_version,
    store_id,
    status_code,
    latency_ms,
    is_timeout,
    -- Unreadable lines land beside the rows with their reason here (ingestion.landing_zone).
    cast(null as varchar) as _malformed_fields,
    _landing_file
from {raw}
qualify row_number() over (partition by request_id order by _landing_file) = 1
"""


@dlt.source(name=SOURCE_NAME)
def telemetry_source(bucket_url: str = dlt.config.value) -> DltSource:
    """Every API-call record of the telemetry stream, once per request id."""
    yield landing_table(bucket_url, STREAM, "api_calls", "request_id", CALL_FIELDS, SELECT_SQL)


SOURCE = landing_stream(
    SOURCE_NAME, "App API-call records from the gateway, landed hourly.", "json", telemetry_source
)

"""Email and SMS delivery events: the provider's reporting webhooks, from the landing zone.

The chain's messaging provider (Customer.io in the demo) posts one JSON event per delivery step
(sent, delivered, opened, clicked, converted, unsubscribed, bounced, dropped, failed ...) for email
and SMS alike. The webhook receiver drops them into the landing zone's `messaging` stream. Webhooks
are retried, so the same event arrives more than once: it lands once, keyed by the provider's
`event_id`. The event's own `data` stays JSON (its fields differ by metric); the ids every mart
joins on are lifted into columns.
"""

from __future__ import annotations

import dlt
from dlt.sources import DltSource

from ingestion.landing_zone import landing_table
from ingestion.source_spec import landing_stream

SOURCE_NAME = "messaging"
STREAM = "messaging"

WEBHOOK_FIELDS = {
    "event_id": "VARCHAR",
    "object_type": "VARCHAR",
    "metric": "VARCHAR",
    "timestamp": "BIGINT",
    "data": "JSON",
}

SELECT_SQL = """
select
    event_id,
    object_type,
    metric,
    to_timestamp("timestamp") as occurred_at,
    data->>'newsletter_id' as campaign_id,
    data->>'delivery_id' as delivery_id,
    coalesce(data->>'customer_id', data->'identifiers'->>'id') as customer_id,
    cast(data as varchar) as data,
    -- Unreadable lines land beside the rows with their reason here (ingestion.landing_zone).
    cast(null as varchar) as _malformed_fields,
    _landing_file
from {raw}
qualify row_number() over (partition by event_id order by _landing_file) = 1
"""


@dlt.source(name=SOURCE_NAME)
def messaging_source(bucket_url: str = dlt.config.value) -> DltSource:
    """Every webhook event of the messaging stream, once per event_id."""
    yield landing_table(
        bucket_url,
        STREAM,
        "delivery_events",
        "event_id",
        WEBHOOK_FIELDS,
        SELECT_SQL,
        {"data": {"data_type": "json"}},
    )


SOURCE = landing_stream(
    SOURCE_NAME,
    "Email and SMS delivery events: the provider's webhooks, landed.",
    "customerio",
    messaging_source,
)

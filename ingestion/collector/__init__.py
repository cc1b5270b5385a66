"""The real-time event collector: Segment's HTTP Tracking API in front of the landing zone.

The apps and the website send events with the Segment SDKs they already use, pointed at this
host; each acknowledged event is on disk before the 200 and lands, in the simulator's layout, in
the `events` stream that the events pipeline reads. See README.md.
"""

from ingestion.collector.app import create_app, serve
from ingestion.collector.settings import CollectorSettings, load_collector_settings

__all__ = ["CollectorSettings", "create_app", "load_collector_settings", "serve"]

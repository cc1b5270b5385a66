"""The collector's Prometheus metrics, on a registry of its own (one per app, so tests can
start several).

The ledger: for every request the collector takes (authenticated, within the limits, not rate
limited), `events_received = events_accepted + events_failed`, per source. Requests refused as a
whole are counted by `requests_total{status}` and `requests_rejected_total{code}`: the client was
told, nothing of them is stored, and their events are not "received".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "collector_events_received", "Events in requests the collector took.", ["source"],
            registry=r,
        )  # fmt: skip
        self.events_accepted = Counter(
            "collector_events_accepted", "Events written to the events stream.", ["source"],
            registry=r,
        )  # fmt: skip
        self.events_suppressed = Counter(
            "collector_events_suppressed",
            "Events of guests `regulars forget` suppressed: acknowledged, never stored.",
            ["source"],
            registry=r,
        )
        self.events_failed = Counter(
            "collector_events_failed",
            "Events written to the _failed stream instead, by reason code.",
            ["source", "code"],
            registry=r,
        )
        self.requests = Counter(
            "collector_requests", "HTTP requests by endpoint and status.", ["endpoint", "status"],
            registry=r,
        )  # fmt: skip
        self.requests_rejected = Counter(
            "collector_requests_rejected",
            "Requests refused as a whole (nothing stored), by reason code.",
            ["code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "collector_request_seconds",
            "Time from the request's arrival to its answer (a 200 only once on disk).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "collector_commit_seconds",
            "One group commit: one synced write (O_DSYNC) of every request waiting for the disk.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_requests = Histogram(
            "collector_commit_requests",
            "Requests acknowledged by one group commit (one sync).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.files_published = Counter(
            "collector_files_published", "Spool files published into the landing zone.",
            ["stream"], registry=r,
        )  # fmt: skip
        self.lines_published = Counter(
            "collector_lines_published", "Lines in the files published.", ["stream"], registry=r
        )
        self.lines_recovered = Counter(
            "collector_lines_recovered",
            "Complete lines found in a spool left by a crash and published at start-up.",
            registry=r,
        )
        self.lines_torn = Counter(
            "collector_lines_torn",
            "Half-written last lines of a crashed spool, moved to the _failed stream.",
            registry=r,
        )
        self.spool_files = Gauge(
            "collector_spool_files", "Spool files open or waiting to be published.", registry=r
        )

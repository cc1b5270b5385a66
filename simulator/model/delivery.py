"""When each app and web event reaches Segment's collector: the SDKs' delivery behaviour.

analytics.js sends at once; the mobile libraries batch (up to 30 s), and an offline phone flushes
its queue minutes to days later (at most 3 days). About 1% of messages are delivered twice with
the same messageId (retries). Every draw is keyed by (session, event ordinal), so a longer horizon
reproduces a shorter one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model.clock import HOUR_US, MINUTE_US
from simulator.model.rand import Stream, counter_uniform

MAX_DELAY_US = 72 * HOUR_US  # nothing arrives more than 3 days after it happened
OFFLINE_SHARE = 0.10  # app sessions whose phone was offline when they ended
DUPLICATE_SHARE = 0.01  # messages delivered twice (client retries)
APP_BATCH_US = 30 * 1_000_000  # the mobile libraries flush every 30 s
DELIVERY_SLICE = 2_000_000  # events whose arrival is drawn at a time


@dataclass(frozen=True)
class Deliveries:
    """Every delivery of every event (a retried event is delivered twice), unsorted."""

    event: np.ndarray  # row in Events
    dup: np.ndarray  # 0 first delivery, 1 the retry
    sent_us: np.ndarray
    recv_us: np.ndarray


def deliveries(
    seed: int,
    session_key: np.ndarray,
    is_app: np.ndarray,
    session_end: np.ndarray,
    ev_sess: np.ndarray,
    ev_ordinal: np.ndarray,
    ev_ts: np.ndarray,
) -> Deliveries:
    """When each event reaches the collector: sentAt and receivedAt, plus retried duplicates.
    Every draw is keyed by (session, event ordinal); events are taken a slice at a time."""
    su = lambda lane: counter_uniform(seed, Stream.WEB_DELIVERY, session_key, 0, lane)  # noqa: E731
    # Offline phones flush the whole session's queue later: minutes (60%), hours (30%), days.
    offline = is_app & (su(1) < OFFLINE_SHARE)
    band = su(2)
    v = su(3)
    delay = np.where(
        band < 0.6,
        MINUTE_US + v * 59 * MINUTE_US,
        np.where(band < 0.9, HOUR_US + v * 23 * HOUR_US, 24 * HOUR_US + v * 47 * HOUR_US),
    ).astype(np.int64)
    flush = np.where(offline, session_end + delay, -1)
    n = ev_ts.size
    sent = np.empty(n, dtype=np.int64)
    recv = np.empty(n, dtype=np.int64)
    dup_parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for lo in range(0, n, DELIVERY_SLICE):
        hi = min(lo + DELIVERY_SLICE, n)
        sess, ordinal, ts = ev_sess[lo:hi], ev_ordinal[lo:hi], ev_ts[lo:hi]
        key = session_key[sess]
        u = lambda lane, k=key, o=ordinal: counter_uniform(  # noqa: E731
            seed, Stream.WEB_DELIVERY, k, o, lane
        )
        app = is_app[sess]
        u1 = u(1)
        batch = (u1 * APP_BATCH_US).astype(np.int64)
        web_send = (20_000 + u1 * 1_480_000).astype(np.int64)
        queued = flush[sess]
        s_ = np.where(app, np.where(queued >= 0, queued, ts + batch), ts + web_send)
        u2 = u(2)
        network = np.where(app, 100_000 + u2 * 1_900_000, 30_000 + u2 * 370_000).astype(np.int64)
        r_ = np.minimum(s_ + network, ts + MAX_DELAY_US)
        sent[lo:hi] = np.minimum(s_, r_)
        recv[lo:hi] = r_
        # Retries: the same message again, seconds to hours later.
        twice = np.flatnonzero(u(3) < DUPLICATE_SHARE)
        k2, o2 = key[twice], ordinal[twice]
        u4 = counter_uniform(seed, Stream.WEB_DELIVERY, k2, o2, 4)
        u5 = counter_uniform(seed, Stream.WEB_DELIVERY, k2, o2, 5)
        retry = np.where(
            u4 < 0.7, 1_000_000 + u5 * 299e6, 5 * MINUTE_US + u5 * 355 * MINUTE_US
        ).astype(np.int64)
        recv2 = np.minimum(r_[twice] + retry, ts[twice] + MAX_DELAY_US)
        sent2 = np.maximum(recv2 - network[twice], sent[lo:hi][twice])
        dup_parts.append((twice + lo, sent2, recv2))
    d_event, d_sent, d_recv = (np.concatenate(p) for p in zip(*dup_parts, strict=True))
    return Deliveries(
        event=np.concatenate([np.arange(n), d_event]).astype(np.int32),
        dup=np.concatenate([np.zeros(n, np.int8), np.ones(d_event.size, np.int8)]),
        sent_us=np.concatenate([sent, d_sent]),
        recv_us=np.concatenate([recv, d_recv]),
    )

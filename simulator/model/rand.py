"""Deterministic random streams keyed by purpose and position.

Every draw is addressed by (seed, stream, key...) rather than taken from one shared generator, so
the part of the timeline up to any date comes out the same however far it was generated: that is
what makes a build advanced by N days equal a build N days longer.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    STORES = 1
    MENU_REVIEW = 2
    COHORT = 3
    PURCHASE_GAP = 4
    ORDERS = 5
    PROFILE_EDIT = 6
    # Messaging helper (40-49): campaigns, their webhooks, feedback, service telemetry.
    CAMPAIGN_HOLDOUT = 40
    MESSAGE_OUTCOME = 41
    CAMPAIGN_UPLIFT = 42
    CAMPAIGN_ORDERS = 43
    WEBHOOK = 44
    FEEDBACK = 45
    TELEMETRY = 46
    # Web helper (20-29): identities and sessions, funnels, ads delivery, experiments, delivery.
    WEB_DEVICES = 20
    WEB_SESSIONS = 21
    WEB_VISITORS = 22
    WEB_FUNNEL = 23
    WEB_DELIVERY = 24
    WEB_ADS = 25
    WEB_EXPERIMENTS = 26


def keyed_rng(seed: int, stream: Stream, *key: int) -> np.random.Generator:
    """A generator for one (stream, key) cell, e.g. the sign-ups of day 41."""
    return np.random.default_rng([seed, int(stream), *key])


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _mix_int(x: int) -> int:
    x &= _MASK
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser; uint64 array arithmetic wraps silently, which is the point.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def counter_uniform(
    seed: int, stream: Stream, key: np.ndarray, index: int | np.ndarray, lane: int = 0
) -> np.ndarray:
    """Uniform(0, 1) draws that depend only on (seed, stream, lane, key, index), element-wise.

    Used where one entity needs an open-ended sequence of draws (a guest's n-th purchase gap), so
    the n-th draw never depends on how many entities or draws came before it.
    """
    base = np.uint64(_mix_int(_mix_int(seed * _GOLDEN + int(stream)) + lane * _M1))
    key64 = np.asarray(key, dtype=np.int64).astype(np.uint64)
    index64 = np.broadcast_to(np.asarray(index, dtype=np.int64), key64.shape).astype(np.uint64)
    h = _mix(_mix(key64 * np.uint64(_GOLDEN) ^ base) + index64 * np.uint64(_M2))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

"""The latent purchase process (BG/NBD, Fader, Hardie & Lee 2005), on the day grid.

A guest's first (trial) order comes at sign-up or a few days later. While alive, repeat purchases
arrive as a Poisson process with rate lambda; after each repeat the guest drops out with
probability p, i.e. dropout happens at the J-th repeat, J ~ Geometric(p). A guest places at most
one order a day, so a purchase that would land on the day of the previous one moves to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model.clock import NEVER
from simulator.model.population import Population
from simulator.model.rand import Stream, counter_uniform


@dataclass(frozen=True)
class Purchases:
    """Purchases up to the horizon, in no particular order, plus each guest's dropout day."""

    customer_idx: np.ndarray
    k: np.ndarray  # 0 = trial, 1.. = repeats
    day: np.ndarray
    placed_us: np.ndarray  # set for same-day trial orders (after sign-up); else NEVER, drawn later
    dropout_day: np.ndarray  # per guest: day of the last purchase, NEVER if alive at the horizon
    last_day: int  # the horizon: purchases are known up to this day


def simulate_purchases(seed: int, pop: Population, last_day: int) -> Purchases:
    """Walk every guest's purchase sequence up to `last_day`, vectorised over guests per step."""
    first_day = pop.signup_day + pop.first_lag_days
    idx = np.flatnonzero(~pop.never_orders & (first_day <= last_day))
    trial_us = np.where(
        pop.first_lag_days[idx] == 0, pop.signup_us[idx] + pop.first_delay_us[idx], NEVER
    )
    found = [(idx, np.zeros(idx.size, np.int64), first_day[idx], trial_us)]
    dropout_day = np.full(len(pop), NEVER, dtype=np.int64)
    t = first_day[idx] + 0.5  # continuous clock of the Poisson process, in days
    prev_day = first_day[idx]
    k = 1
    while idx.size:
        # Keyed by (guest, k): the k-th gap is the same whatever the horizon.
        u = counter_uniform(seed, Stream.PURCHASE_GAP, pop.customer_id[idx], k)
        t = t - np.log(u) / pop.lam[idx]
        day = np.maximum(np.floor(np.minimum(t, 1e15)).astype(np.int64), prev_day + 1)
        inside = day <= last_day
        idx, t, day = idx[inside], t[inside], day[inside]
        found.append((idx, np.full(idx.size, k, np.int64), day, np.full(idx.size, NEVER)))
        drops = pop.repeats[idx] == k
        dropout_day[idx[drops]] = day[drops]
        idx, t, prev_day = idx[~drops], t[~drops], day[~drops]
        k += 1
    customer_idx, ks, days, placed = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return Purchases(
        customer_idx=customer_idx,
        k=ks,
        day=days,
        placed_us=placed.astype(np.int64),
        dropout_day=dropout_day,
        last_day=last_day,
    )


DAY_KEY = 1 << 20  # (guest, day) keys: customer_idx * DAY_KEY + day


def day_keys(customer_idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    return customer_idx.astype(np.int64) * DAY_KEY + day


def _isin_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def settle_extra_purchases(
    taken: list[np.ndarray], customer_idx: np.ndarray, day: np.ndarray, last_allowed: np.ndarray
) -> np.ndarray:
    """Days of purchases made outside the BG/NBD process (the orders a campaign brings).

    A guest orders at most once a day, so a purchase landing on a day the guest already ordered
    moves to the next free day, but no later than `last_allowed`; -1 when no day is free. `taken`
    holds sorted day_keys of the days already taken (base purchases, earlier extra ones).
    """
    day = day.astype(np.int64).copy()
    pending = np.ones(day.size, dtype=bool)
    while True:
        keys = day_keys(customer_idx, day)
        busy = pending & np.logical_or.reduce([_isin_sorted(t, keys) for t in taken])
        busy &= day <= last_allowed
        if not busy.any():
            break
        day[busy] += 1
        pending = busy
    return np.where(day <= last_allowed, day, -1)

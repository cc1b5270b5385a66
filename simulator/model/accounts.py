"""What guests do to their accounts over time: profile and consent edits, and closing the account.

Edits arrive as a Poisson process per guest (mean gap `profile_edit_days`), each keyed by
(guest, n) so the n-th edit is the same whatever the horizon. A share of guests who dropped out
close their account a few weeks later; closing scrubs personal data and ends all edits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import WorldConfig
from simulator.model.clock import DAY_US, NEVER, day_start_us
from simulator.model.population import Population
from simulator.model.purchases import Purchases
from simulator.model.rand import Stream, counter_uniform

EDIT_KINDS = ("email_consent", "sms_consent", "phone", "name")
EDIT_SHARE = (0.35, 0.25, 0.25, 0.15)
EMAIL_CONSENT, SMS_CONSENT, PHONE, NAME = range(len(EDIT_KINDS))


@dataclass(frozen=True)
class AccountEvents:
    closed_us: np.ndarray  # per guest; NEVER if not closed (or not yet known at the horizon)
    edit_customer_idx: np.ndarray  # edits in time order
    edit_us: np.ndarray
    edit_kind: np.ndarray
    edit_value: np.ndarray  # seed of the new value (a phone number, a family name)


def simulate_accounts(
    config: WorldConfig, pop: Population, purchases: Purchases, end_us: int
) -> AccountEvents:
    """Closures and edits up to `end_us` (inclusive)."""
    dropped = purchases.dropout_day != NEVER
    closed_us = np.where(
        pop.closes & dropped,
        day_start_us(config.start_date, np.where(dropped, purchases.dropout_day, 0) + 1)
        + pop.closure_delay_us,
        NEVER,
    )
    idx = np.arange(len(pop))
    t = pop.signup_us.astype(np.float64)
    empty = np.zeros(0, dtype=np.int64)
    found = [(empty, empty, empty, empty)]
    n = 0
    while idx.size:
        key = pop.customer_id[idx]
        gap = -np.log(counter_uniform(config.seed, Stream.PROFILE_EDIT, key, n, lane=0))
        t = t + gap * config.profile_edit_days * DAY_US
        at = np.rint(t).astype(np.int64)
        inside = (at <= end_us) & (at < closed_us[idx])
        idx, t, at = idx[inside], t[inside], at[inside]
        key = key[inside]
        kind_u = counter_uniform(config.seed, Stream.PROFILE_EDIT, key, n, lane=1)
        value_u = counter_uniform(config.seed, Stream.PROFILE_EDIT, key, n, lane=2)
        kind = np.searchsorted(np.cumsum(EDIT_SHARE), kind_u * sum(EDIT_SHARE), side="right")
        found.append((idx, at, kind, (value_u * 2**40).astype(np.int64)))
        n += 1
    cust, at, kind, value = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.lexsort((cust, at))
    return AccountEvents(
        closed_us=closed_us,
        edit_customer_idx=cust[order],
        edit_us=at[order],
        edit_kind=np.minimum(kind[order], len(EDIT_KINDS) - 1),
        edit_value=value[order],
    )

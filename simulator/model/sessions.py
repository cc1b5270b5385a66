"""Who uses the chain's app and website, on which devices, and when: identities and sessions.

A guest owns up to three devices (the phone app, a browser, maybe a second browser), each with
its own Segment anonymousId and GA client id. Guests browse anonymously in the week before they
sign up, sign up at checkout, and then come back: one session per order (the order's converting
session) and a few browsing sessions after each visit. Anonymous visitors who never sign up come
and go too. Every session is keyed by what caused it (a guest's sign-up, an order, a visitor of a
day), so the sessions up to any date are the same however far the world was generated; the only
look into the future is the week of browsing before a sign-up, drawn from the sign-up cohorts of
the coming week (which are themselves fixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model.ads import PUBLISHER_SHARE, AdPlan, pick_ads
from simulator.model.catalog import PROVINCES
from simulator.model.clock import DAY_US, HOUR_US, MINUTE_US, day_start_us
from simulator.model.population import CHANNELS, Population, make_population, signup_rate
from simulator.model.rand import Stream, counter_uniform, keyed_rng
from simulator.model.timeline import Timeline

LOOKAHEAD_DAYS = 7  # guests browse anonymously up to a week before signing up
PRESIGNUP_COUNT_SHARE = (0.35, 0.35, 0.20, 0.10)  # 0, 1, 2 or 3 anonymous sessions
PRESIGNUP_PRIMARY_DEVICE = 0.6  # ... on the device they later sign up with; else another one
BROWSE_PER_VISIT = 0.5  # browsing sessions after each sign-up or order (Poisson mean, max 3)
BROWSE_LAG_DAYS = 4.0  # mean days from the visit to each browsing session (1 + exponential)
WEB2_SHARE = 0.3  # guests with a second browser (a work laptop, a tablet) ...
WEB2_USE = 0.35  # ... used for this share of their web sessions
VISITOR_RATIO = 1.0  # anonymous visitors who never sign up, per expected sign-up
VISITOR_APP_SHARE = 0.15
VISITOR_CHANNEL_SHARE = (0.40, 0.30, 0.20, 0.05, 0.05)  # in CHANNELS order
VISITOR_RETURNS = (0.65, 0.25, 0.10)  # 0, 1 or 2 more sessions

PRESIGNUP, SIGNUP, ORDER, BROWSE, VISITOR = range(5)
KINDS = ("presignup", "signup", "order", "browse", "visitor")
# paid_social is a click on one of the chain's Meta ads, on whichever platform Meta placed it
# (ad_platform).
SOURCES = ("direct", "organic", "google_cpc", "paid_social", "email", "referral")
DIRECT, ORGANIC, GOOGLE_CPC, PAID_SOCIAL, EMAIL, REFERRAL = range(len(SOURCES))
# Later sessions of known guests (not their first), by platform: where they come from.
RETURN_SOURCE_SHARE = {
    "web": (0.45, 0.25, 0.08, 0.10, 0.12, 0.0),
    "app": (0.80, 0.0, 0.0, 0.08, 0.12, 0.0),
}
APP_SLOT, WEB_SLOT, WEB2_SLOT = range(3)
VISITOR_DEVICE_BASE = 1 << 50
# Browsing hours, local time: (weight, mean hour, sd), clipped to 08:30-22:00 so that every
# session sits well inside one UTC date (Indonesia is UTC+7/+8).
BROWSE_PARTS = ((0.15, 10.0, 1.2), (0.35, 12.5, 1.0), (0.15, 16.0, 1.5), (0.35, 20.0, 1.3))


def session_key(kind: int, entity: np.ndarray, j: int | np.ndarray) -> np.ndarray:
    """A unique 64-bit key per session: what caused it (kind, entity id) and its ordinal."""
    return (np.int64(kind) << np.int64(58)) | (np.asarray(entity, np.int64) << np.int64(3)) | j


def guest_device(customer_id: np.ndarray, slot: np.ndarray) -> np.ndarray:
    return np.asarray(customer_id, np.int64) * 4 + slot


@dataclass(frozen=True)
class Sessions:
    """Candidate sessions (before funnels and overlaps are settled), one row each."""

    key: np.ndarray
    kind: np.ndarray
    cust: np.ndarray  # guest index (into the look-ahead population), -1 for visitors
    device: np.ndarray  # device key
    is_app: np.ndarray
    day: np.ndarray
    anchor_us: np.ndarray  # start (browsing), sign-up instant (sign-up) or order placement
    order_row: np.ndarray  # -1 if the session places no order
    province: np.ndarray  # index into PROVINCES
    source: np.ndarray
    ad: np.ndarray  # -1 unless a Meta ad click
    ad_platform: np.ndarray  # index into ads.PUBLISHER_PLATFORMS where Meta placed it, else -1
    utm_variant: np.ndarray  # which search / email campaign

    def __len__(self) -> int:
        return self.key.size

    def take(self, idx: np.ndarray) -> Sessions:
        return Sessions(**{f: getattr(self, f)[idx] for f in self.__dataclass_fields__})


def _u(seed: int, key: np.ndarray, index: int | np.ndarray, lane: int) -> np.ndarray:
    return counter_uniform(seed, Stream.WEB_SESSIONS, key, index, lane)


def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def browse_start_us(
    seed: int, key: np.ndarray, start_date, day: np.ndarray, utc_offset: np.ndarray
) -> np.ndarray:
    """A browsing session's start: a local hour peaking at lunch and in the evening."""
    weights = np.array([w for w, _, _ in BROWSE_PARTS])
    part = np.searchsorted(np.cumsum(weights) / weights.sum(), _u(seed, key, 0, 40))
    part = np.minimum(part, len(BROWSE_PARTS) - 1)
    mean = np.array([m for _, m, _ in BROWSE_PARTS])[part]
    sd = np.array([s for _, _, s in BROWSE_PARTS])[part]
    hours = np.clip(mean + sd * _normal(_u(seed, key, 0, 41), _u(seed, key, 0, 42)), 8.5, 22.0)
    return day_start_us(start_date, day) + np.rint((hours - utc_offset) * HOUR_US).astype(np.int64)


def _choice(u: np.ndarray, shares) -> np.ndarray:
    cum = np.cumsum(shares) / np.sum(shares)
    return np.minimum(np.searchsorted(cum, u, side="right"), len(shares) - 1)


def _web_slot(seed: int, key: np.ndarray, has_web2: np.ndarray) -> np.ndarray:
    return np.where(has_web2 & (_u(seed, key, 0, 43) < WEB2_USE), WEB2_SLOT, WEB_SLOT)


def future_population(tl: Timeline) -> Population:
    """The guests of the timeline plus those who sign up in the next LOOKAHEAD_DAYS days (their
    anonymous browsing may come before the horizon); a prefix-stable extension."""
    last_day = (tl.horizon - tl.config.start_date).days
    return make_population(tl.config, tl.stores, last_day + LOOKAHEAD_DAYS)


def _same_day_orders(tl: Timeline, n_known: int) -> np.ndarray:
    """Per known guest, the row of the trial order placed minutes after signing up, or -1."""
    pop, orders = tl.population, tl.orders
    same = np.flatnonzero(~pop.never_orders & (pop.first_lag_days == 0))
    target = pop.signup_us[same] + pop.first_delay_us[same]
    out = np.full(n_known, -1, dtype=np.int64)
    pos = np.searchsorted(orders.placed_us, target)
    for shift in range(4):  # orders placed in the same microsecond are rare
        p = np.minimum(pos + shift, max(orders.placed_us.size - 1, 0))
        if orders.placed_us.size == 0:
            break
        hit = (orders.placed_us[p] == target) & (orders.customer_idx[p] == same)
        out[same[hit]] = np.where(out[same[hit]] < 0, p[hit], out[same[hit]])
    return out


class _GuestSessions:
    """The guests' sessions as they are drawn, kind by kind, with what every kind needs to know
    about the guests."""

    def __init__(self, tl: Timeline, pop: Population):
        self.seed, self.start = tl.config.seed, tl.config.start_date
        self.pop, self.cid = pop, pop.customer_id
        home = pop.home_store
        self.province = tl.stores.province_idx[home]
        self.utc_offset = tl.stores.utc_offset[home]
        self.has_web2 = _u(self.seed, self.cid, 0, 1) < WEB2_SHARE
        self.primary_slot = np.where(pop.prefers_app, APP_SLOT, WEB_SLOT)
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, kind, key, cust, slot, is_app, day, anchor, order_row=None) -> None:
        n = key.size
        self.parts.append(
            {
                "key": key,
                "kind": np.full(n, kind, dtype=np.int64),
                "cust": cust,
                "device": guest_device(self.cid[cust], slot),
                "is_app": is_app,
                "day": day,
                "anchor_us": anchor,
                "order_row": np.full(n, -1, dtype=np.int64) if order_row is None else order_row,
                "province": self.province[cust],
            }
        )

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate([p[name] for p in self.parts]) for name in self.parts[0]}


def _presignup(gs: _GuestSessions) -> None:
    """Anonymous browsing in the week before signing up, on distinct days."""
    seed, start, pop, cid = gs.seed, gs.start, gs.pop, gs.cid
    n_pre = _choice(_u(seed, cid, 0, 2), PRESIGNUP_COUNT_SHARE)
    lag_keys = _u(seed, np.repeat(cid, 7), np.tile(np.arange(7), cid.size), 3).reshape(-1, 7)
    lags = np.argsort(lag_keys, axis=1)[:, :3]
    for j in range(3):
        g = np.flatnonzero(n_pre > j)
        key = session_key(PRESIGNUP, cid[g], j)
        lag = lags[g, j]
        day = pop.signup_day[g] - lag
        # Same-day browsing must end well before the sign-up session starts; if there is no
        # room that morning, it happened a week earlier.
        room_lo = day_start_us(start, day) + 30 * MINUTE_US
        room_hi = pop.signup_us[g] - 100 * MINUTE_US
        no_room = (lag == 0) & (room_hi - room_lo < 10 * MINUTE_US)
        day = np.where(no_room, day - 7, day)
        anchor = browse_start_us(seed, key, start, day, gs.utc_offset[g])
        same_day = (lag == 0) & ~no_room
        squeezed = room_lo + (_u(seed, key, 0, 4) * (room_hi - room_lo)).astype(np.int64)
        anchor = np.where(same_day, squeezed, anchor)
        pick = _u(seed, key, 0, 5)
        other = np.where(pop.prefers_app[g], WEB_SLOT, APP_SLOT)
        second = np.where(gs.has_web2[g], WEB2_SLOT, other)
        slot = np.where(
            pick < PRESIGNUP_PRIMARY_DEVICE,
            gs.primary_slot[g],
            np.where(pick < 0.9, other, second),
        )
        keep = day >= 0
        gs.add(PRESIGNUP, key[keep], g[keep], slot[keep], slot[keep] == APP_SLOT, day[keep],
               anchor[keep])  # fmt: skip


def _signups_and_orders(gs: _GuestSessions, tl: Timeline) -> None:
    """Sign-up sessions (with the trial order when it follows within minutes), then one
    converting session per other order."""
    seed, pop, cid, orders = gs.seed, gs.pop, gs.cid, tl.orders
    g = np.arange(len(tl.population))
    same_day = _same_day_orders(tl, g.size)
    key = session_key(SIGNUP, cid[g], 0)
    is_app = np.where(same_day >= 0, orders.is_app[np.maximum(same_day, 0)], pop.prefers_app[g])
    slot = np.where(is_app, APP_SLOT, _web_slot(seed, key, gs.has_web2[g]))
    gs.add(SIGNUP, key, g, slot, is_app, pop.signup_day[g], pop.signup_us[g], same_day)

    rows = np.setdiff1d(np.arange(orders.placed_us.size), same_day[same_day >= 0])
    cust = orders.customer_idx[rows]
    key = session_key(ORDER, rows + 1, 0)
    is_app = orders.is_app[rows]
    slot = np.where(is_app, APP_SLOT, _web_slot(seed, key, gs.has_web2[cust]))
    o_day = (orders.placed_us[rows] // DAY_US) - (day_start_us(gs.start, 0) // DAY_US)
    gs.add(ORDER, key, cust, slot, is_app, o_day, orders.placed_us[rows], rows)


def _browsing(gs: _GuestSessions, tl: Timeline, last_day: int) -> None:
    """Browsing after each sign-up and each order, on later days, until the account closes."""
    seed, start, pop, orders = gs.seed, gs.start, gs.pop, tl.orders
    g = np.arange(len(tl.population))
    anchor_cust = np.concatenate([g, orders.customer_idx])
    anchor_day = np.concatenate(
        [pop.signup_day[g], (orders.placed_us // DAY_US) - (day_start_us(start, 0) // DAY_US)]
    )
    anchor_id = np.concatenate([gs.cid[g], np.arange(orders.placed_us.size) + 1 + (1 << 40)])
    u_n = _u(seed, anchor_id, 0, 6)
    poisson_cdf = np.cumsum([np.exp(-BROWSE_PER_VISIT) * BROWSE_PER_VISIT**k / np.prod(
        np.arange(1, k + 1)) for k in range(3)])  # fmt: skip
    n_browse = np.searchsorted(poisson_cdf, u_n, side="right")
    closed = tl.accounts.closed_us
    for j in range(3):
        a = np.flatnonzero(n_browse > j)
        key = session_key(BROWSE, anchor_id[a], j)
        cust = anchor_cust[a]
        day = anchor_day[a] + 1 + np.floor(-np.log(_u(seed, key, 0, 7)) * BROWSE_LAG_DAYS)
        day = day.astype(np.int64)
        anchor = browse_start_us(seed, key, start, day, gs.utc_offset[cust])
        is_app = _u(seed, key, 0, 8) < np.where(pop.prefers_app[cust], 0.85, 0.15)
        slot = np.where(is_app, APP_SLOT, _web_slot(seed, key, gs.has_web2[cust]))
        keep = (anchor < closed[cust]) & (day <= last_day)
        gs.add(BROWSE, key[keep], cust[keep], slot[keep], is_app[keep], day[keep], anchor[keep])


def make_sessions(tl: Timeline, pop: Population, plan: AdPlan) -> Sessions:
    """Every candidate session up to the horizon (see the module docstring)."""
    last_day = (tl.horizon - tl.config.start_date).days
    gs = _GuestSessions(tl, pop)
    _presignup(gs)
    _signups_and_orders(gs, tl)
    _browsing(gs, tl, last_day)
    guest = gs.columns()
    guest["visitor_channel"] = np.full(guest["key"].size, -1, dtype=np.int64)
    visitors = _visitors(tl, last_day)
    cols = {name: np.concatenate([guest[name], visitors[name]]) for name in visitors}
    keep = cols["day"] <= last_day
    cols = {name: values[keep] for name, values in cols.items()}
    order = np.lexsort((cols["key"], cols["anchor_us"]))
    cols = {name: values[order] for name, values in cols.items()}
    _sources(tl.config.seed, cols, pop, plan)
    return Sessions(**cols)


def _visitors(tl: Timeline, last_day: int) -> dict[str, np.ndarray]:
    """Anonymous visitors who never sign up: each day's arrivals and their return visits."""
    cfg = tl.config
    rate = signup_rate(cfg, tl.stores, last_day) * VISITOR_RATIO
    provinces = cfg.chosen_provinces
    p_weight = np.array([p.weight for p in provinces])
    p_index = np.array([PROVINCES.index(p) for p in provinces])
    p_offset = np.array([p.utc_offset_hours for p in provinces])
    parts = []
    for day in range(last_day + 1):
        rng = keyed_rng(cfg.seed, Stream.WEB_VISITORS, day)
        n = int(rng.poisson(rate[day]))
        visitor = day * (1 << 20) + np.arange(n, dtype=np.int64)
        is_app = rng.random(n) < VISITOR_APP_SHARE
        province = rng.choice(len(provinces), size=n, p=p_weight / p_weight.sum())
        channel = rng.choice(len(CHANNELS), size=n, p=VISITOR_CHANNEL_SHARE)
        returns = rng.choice(len(VISITOR_RETURNS), size=n, p=VISITOR_RETURNS)
        lag1 = 1 + np.floor(rng.exponential(3.0, size=n)).astype(np.int64)
        lag2 = lag1 + 1 + np.floor(rng.exponential(5.0, size=n)).astype(np.int64)
        for j, lag in enumerate((np.zeros(n, np.int64), lag1, lag2)):
            v = np.flatnonzero(returns >= j)
            key = session_key(VISITOR, visitor[v], j)
            d = day + lag[v]
            anchor = browse_start_us(cfg.seed, key, cfg.start_date, d, p_offset[province[v]])
            parts.append(
                {
                    "key": key,
                    "kind": np.full(v.size, VISITOR, dtype=np.int64),
                    "cust": np.full(v.size, -1, dtype=np.int64),
                    "device": VISITOR_DEVICE_BASE + visitor[v] * 4 + np.where(is_app[v], 0, 1),
                    "is_app": is_app[v],
                    "day": d,
                    "anchor_us": anchor,
                    "order_row": np.full(v.size, -1, dtype=np.int64),
                    "province": p_index[province[v]],
                    "visitor_channel": np.where(j == 0, channel[v], -1),
                }
            )
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return cols


def _sources(seed: int, cols: dict[str, np.ndarray], pop: Population, plan: AdPlan) -> None:
    """Where each session came from (in place): a guest's first session from their acquisition
    channel, a visitor's first from theirs, later ones from a mix; ad clicks pick an ad."""
    n = cols["key"].size
    key = cols["key"]
    kind, cust = cols["kind"], cols["cust"]
    channel = np.full(n, -1, dtype=np.int64)
    guest = cust >= 0
    # Sessions are in time order: a guest's first anonymous-or-sign-up session is the first one.
    early = np.flatnonzero(guest & ((kind == PRESIGNUP) | (kind == SIGNUP)))
    _, first = np.unique(cust[early], return_index=True)
    channel[early[first]] = pop.channel[cust[early[first]]]
    channel = np.where(kind == VISITOR, cols.pop("visitor_channel"), channel)
    u = _u(seed, key, 0, 9)
    by_channel = np.array([DIRECT, PAID_SOCIAL, GOOGLE_CPC, REFERRAL, EMAIL])  # CHANNELS order
    acquired = np.where(u < 0.5, ORGANIC, by_channel[np.maximum(channel, 0)])
    acquired = np.where(channel == CHANNELS.index("organic"), acquired, by_channel[channel])
    web_mix = _choice(u, RETURN_SOURCE_SHARE["web"])
    app_mix = _choice(u, RETURN_SOURCE_SHARE["app"])
    later = np.where(cols["is_app"], app_mix, web_mix)
    accepts_email = np.where(guest, pop.accepts_email[np.maximum(cust, 0)], False)
    later = np.where((later == EMAIL) & ~accepts_email, DIRECT, later)
    visitor_later = np.where(u < 0.6, DIRECT, ORGANIC)
    source = np.where(kind == VISITOR, visitor_later, later)
    source = np.where(channel >= 0, acquired, source)
    source = np.where((kind == VISITOR) & cols["is_app"] & (source == ORGANIC), DIRECT, source)
    source = np.where(cols["is_app"] & (source == ORGANIC), DIRECT, source)
    cols["source"] = source.astype(np.int64)

    ad = np.full(n, -1, dtype=np.int64)
    clicks = np.flatnonzero(source == PAID_SOCIAL)
    retarget = (kind[clicks] == ORDER) | (kind[clicks] == BROWSE)
    ad[clicks] = pick_ads(
        plan,
        cols["day"][clicks],
        cols["province"][clicks],  # the chosen provinces are the first of PROVINCES
        retarget,
        _u(seed, key[clicks], 0, 10),
        _u(seed, key[clicks], 0, 11),
    )
    cols["ad"] = ad
    # Meta places most of the chain's ads on Instagram, some on Facebook, a few in Audience
    # Network apps; the click's placement decides its utm_source (web.utm_sources).
    cols["ad_platform"] = np.where(ad >= 0, _choice(_u(seed, key, 0, 12), PUBLISHER_SHARE), -1)
    cols["utm_variant"] = (_u(seed, key, 0, 13) < 0.4).astype(np.int64)

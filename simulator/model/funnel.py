"""What happens inside each session: screens and pages, dishes viewed and added to the cart, the
checkout, the sign-up and the order, each with its timestamp.

Every product view leads to an add with probability p (the session's add rate, which the menu
experiment moves). Converting sessions add exactly the order's lines, with the views before them
drawn so that adds per view are still p (negative binomial extra views), so the ratio of adds to
views estimates p over any mix of sessions. Sessions that place no order stop at each funnel step
at realistic rates. Converting sessions end at the order's placement instant; sign-up sessions
identify the guest at the sign-up instant; the others start at their session start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simulator.model.clock import MINUTE_US, day_start_us
from simulator.model.rand import Stream, counter_uniform
from simulator.model.sessions import (
    BROWSE,
    EMAIL,
    PAID_SOCIAL,
    PRESIGNUP,
    SIGNUP,
    VISITOR,
    Sessions,
)
from simulator.model.timeline import Timeline

P_ADD = 0.55  # a product view leads to adding the dish to the cart
BOUNCE = 0.4  # sessions without an order that leave after the landing page
VIEWS_MEAN = 0.8  # further product views of a browsing session (Poisson, at most 5)
CHECKOUT_SHARE = 0.35  # browsing sessions with a cart that start checkout (and abandon it)
SIGNUP_CART_MEAN = 0.8  # dishes beyond the first in the cart of a sign-up that orders later
SECOND_PORTION = 0.15  # adds of two portions (sessions without an order)
SESSION_GAP_US = 30 * MINUTE_US  # a new session after 30 minutes without events
OVERLAP_MARGIN_US = MINUTE_US

(
    APP_OPENED,
    DEEP_LINK,
    VIEW,
    EXPERIMENT_VIEWED,
    LOGIN,
    PRODUCT_VIEWED,
    PRODUCT_ADDED,
    CHECKOUT_STARTED,
    IDENTIFY,
    SIGNED_UP,
    ORDER_COMPLETED,
) = range(11)
HOME, MENU, CHECKOUT = range(3)  # pages (web) and screens (app)
# Seconds from the previous event, by kind: (low, high).
GAP_S = {
    DEEP_LINK: (0.1, 0.6),
    VIEW: (0.5, 2.5),  # the landing view after Application Opened; later views below
    PRODUCT_VIEWED: (4.0, 60.0),
    PRODUCT_ADDED: (3.0, 25.0),
    CHECKOUT_STARTED: (0.5, 3.0),
    IDENTIFY: (30.0, 150.0),  # filling in the sign-up form
    SIGNED_UP: (0.2, 1.0),
    ORDER_COMPLETED: (20.0, 180.0),
}
LATER_VIEW_GAP_S = {MENU: (3.0, 25.0), CHECKOUT: (5.0, 40.0)}

# Segment's names of the track events (others are identify, page or screen calls).
TRACK_EVENTS = {
    APP_OPENED: "Application Opened",
    DEEP_LINK: "Deep Link Opened",
    EXPERIMENT_VIEWED: "Experiment Viewed",
    PRODUCT_VIEWED: "Product Viewed",
    PRODUCT_ADDED: "Product Added",
    CHECKOUT_STARTED: "Checkout Started",
    SIGNED_UP: "Signed Up",
    ORDER_COMPLETED: "Order Completed",
}


@dataclass(frozen=True)
class Events:
    """Events of the sessions, sorted by (session, order within the session)."""

    sess: np.ndarray  # row in Sessions
    kind: np.ndarray
    okey: np.ndarray  # order within the session
    ordinal: np.ndarray  # stable index of the event within its session (for messageIds)
    ts: np.ndarray
    page: np.ndarray  # VIEW: the page/screen; else -1
    item: np.ndarray  # menu index (product events), -1 otherwise
    qty: np.ndarray
    price: np.ndarray
    exp: np.ndarray  # EXPERIMENT_VIEWED: experiment index; else -1
    variant: np.ndarray

    def take(self, idx: np.ndarray) -> Events:
        return Events(**{f: getattr(self, f)[idx] for f in self.__dataclass_fields__})

    def __len__(self) -> int:
        return self.sess.size


def _u(seed: int, key: np.ndarray, index, lane: int) -> np.ndarray:
    return counter_uniform(seed, Stream.WEB_FUNNEL, key, index, lane)


def _poisson_capped(u: np.ndarray, mean: float, cap: int) -> np.ndarray:
    k = np.arange(cap + 1)
    pmf = np.exp(-mean) * mean**k / np.cumprod(np.maximum(k, 1))
    return np.minimum(np.searchsorted(np.cumsum(pmf), u, side="right"), cap)


def _random_items(tl: Timeline, day: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dishes on sale on `day`, drawn by popularity, and their price that day."""
    menu, start = tl.menu, tl.config.start_date
    item = np.zeros(day.size, dtype=np.int64)
    price = np.zeros(day.size, dtype=np.int64)
    order = np.argsort(day, kind="stable")
    days, first = np.unique(day[order], return_index=True)
    bounds = np.append(first, order.size)
    for d, lo, hi in zip(days, bounds[:-1], bounds[1:], strict=True):
        on_sale = menu.available_on(int(d))
        cum = np.cumsum(menu.popularity[on_sale])
        rows = order[lo:hi]
        pick = on_sale[np.minimum(np.searchsorted(cum, u[rows] * cum[-1]), on_sale.size - 1)]
        item[rows] = pick
        price[rows] = menu.prices_at(day_start_us(start, int(d) + 1) - 1)[pick]
    return item, price


SESSION_CHUNK = 150_000  # sessions built at a time (bounds the temporaries at scale)


def build_events(tl: Timeline, s: Sessions, p_add: np.ndarray) -> Events:
    """The event skeleton of every session, timed, before overlaps are settled. Built a range
    of sessions at a time; every draw is keyed by the session, so the split changes nothing."""
    parts = []
    for lo in range(0, len(s), SESSION_CHUNK):
        rows = np.arange(lo, min(lo + SESSION_CHUNK, len(s)))
        part = _build_range(tl, s.take(rows), p_add[rows])
        parts.append(dataclasses.replace(part, sess=part.sess + np.int32(lo)))
    if not parts:
        return _build_range(tl, s, p_add)
    return Events(
        **{f: np.concatenate([getattr(p, f) for p in parts]) for f in Events.__dataclass_fields__}
    )


def _views(tl: Timeline, s: Sessions, p_add: np.ndarray) -> dict[str, np.ndarray]:
    """Per session, how its cart fills: the order's lines, or a sign-up's dishes, or adds drawn
    view by view; and every product view with its dish and whether it was added."""
    seed, key, lines = tl.config.seed, s.key, tl.lines
    n = len(s)
    converting = s.order_row >= 0
    signup = s.kind == SIGNUP
    free = ~converting & ~signup
    browsing = ~(free & (_u(seed, key, 0, 1) < BOUNCE))
    line_lo = np.searchsorted(lines.order_row, np.maximum(s.order_row, 0))
    line_hi = np.searchsorted(lines.order_row, np.maximum(s.order_row, 0), side="right")
    n_lines = np.where(converting, line_hi - line_lo, 0)
    signup_cart = np.where(
        signup & ~converting, 1 + _poisson_capped(_u(seed, key, 0, 2), SIGNUP_CART_MEAN, 3), 0
    )
    target = n_lines + signup_cart
    # Extra views before the target adds: negative binomial(target, p), one geometric per add.
    t_sess = np.repeat(np.arange(n), target)
    t_idx = np.arange(t_sess.size) - np.repeat(np.cumsum(target) - target, target)
    fails = np.floor(np.log(_u(seed, key[t_sess], t_idx, 3)) / np.log1p(-p_add[t_sess]))
    extra = np.bincount(t_sess, weights=fails, minlength=n).astype(np.int64)
    free_views = np.where(
        free & browsing, 1 + _poisson_capped(_u(seed, key, 0, 4), VIEWS_MEAN, 5), 0
    )
    n_views = target + extra + free_views

    # Product views: the first `target` of a session are the cart's dishes, in random order.
    v_sess = np.repeat(np.arange(n), n_views)
    v_idx = np.arange(v_sess.size) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    v_key = key[v_sess]
    is_line = v_idx < n_lines[v_sess]
    random_item, random_price = _random_items(tl, s.day[v_sess], _u(seed, v_key, v_idx, 5))
    line_row = line_lo[v_sess] + np.where(is_line, v_idx, 0)
    line_row = np.minimum(line_row, max(lines.order_row.size - 1, 0))
    two = _u(seed, v_key, v_idx, 6) < SECOND_PORTION
    added = np.where(
        free[v_sess], _u(seed, v_key, v_idx, 7) < p_add[v_sess], v_idx < target[v_sess]
    )
    has_cart = np.bincount(v_sess[added], minlength=n) > 0
    return {
        "browsing": browsing,
        "checkout": converting
        | signup
        | (free & has_cart & (_u(seed, key, 0, 9) < CHECKOUT_SHARE)),
        "v_sess": v_sess,
        "item": np.where(is_line, lines.menu_idx[line_row], random_item),
        "price": np.where(is_line, lines.unit_price[line_row], random_price),
        "qty": np.where(is_line, lines.quantity[line_row], np.where(two, 2, 1)),
        "added": added,
        "v_okey": 10.0 + _u(seed, v_key, v_idx, 8),
    }


def _sequence(s: Sessions, v: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every event of the sessions as (sess, kind, okey, page, item, qty, price) columns, sorted
    by session and then okey, the event's place in the session."""
    parts = []

    def add(sess, kind, okey, page=-1, item=-1, qty=0, price=0):
        m = sess.size
        parts.append(
            (
                sess,
                np.full(m, kind, np.int64),
                np.broadcast_to(okey, m).astype(float),
                np.broadcast_to(page, m),
                np.broadcast_to(item, m),
                np.broadcast_to(qty, m),
                np.broadcast_to(price, m),
            )
        )

    landing_menu = np.isin(s.source, (PAID_SOCIAL, EMAIL))
    campaign = s.source != 0
    v_sess, item, qty, price, v_okey = (v[k] for k in ("v_sess", "item", "qty", "price", "v_okey"))
    add(np.flatnonzero(s.is_app), APP_OPENED, 0.0)
    add(np.flatnonzero(s.is_app & campaign), DEEP_LINK, 1.0)
    add(np.arange(len(s)), VIEW, 2.0, np.where(landing_menu, MENU, HOME))
    add(np.flatnonzero(v["browsing"] & ~landing_menu), VIEW, 3.0, MENU)
    add(v_sess, PRODUCT_VIEWED, v_okey, -1, item, qty, price)
    a = np.flatnonzero(v["added"])
    add(v_sess[a], PRODUCT_ADDED, v_okey[a] + 1e-6, -1, item[a], qty[a], price[a])
    c = np.flatnonzero(v["checkout"])
    add(c, VIEW, 20.0, CHECKOUT)
    add(c, CHECKOUT_STARTED, 21.0)
    g = np.flatnonzero(s.kind == SIGNUP)
    add(g, IDENTIFY, 22.0)
    add(g, SIGNED_UP, 23.0)
    add(np.flatnonzero(s.order_row >= 0), ORDER_COMPLETED, 24.0)
    columns = [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(7)]
    order = np.lexsort((columns[2], columns[0]))
    return [x[order] for x in columns]


def _timestamps(
    tl: Timeline, s: Sessions, sess: np.ndarray, kind: np.ndarray, okey, page
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's ordinal in its session and its time: gaps from the previous event, then
    times anchored per kind of session (the start, the identify, or the end at the order)."""
    n, m = len(s), sess.size
    first = np.r_[True, sess[1:] != sess[:-1]]
    starts = np.flatnonzero(first)
    ordinal = np.arange(m) - np.repeat(starts, np.diff(np.append(starts, m)))
    u = _u(tl.config.seed, s.key[sess], ordinal, 10)
    lo = np.zeros(m)
    hi = np.zeros(m)
    for k, (a_lo, a_hi) in GAP_S.items():
        lo[kind == k], hi[kind == k] = a_lo, a_hi
    for p, (a_lo, a_hi) in LATER_VIEW_GAP_S.items():
        later = (kind == VIEW) & (page == p) & (okey > 2.5)
        lo[later], hi[later] = a_lo, a_hi
    gap = np.where(first, 0, np.rint((lo + (hi - lo) * u) * 1e6).astype(np.int64))
    cum = np.cumsum(gap)
    offset = cum - np.repeat(cum[starts], np.diff(np.append(starts, m)))
    duration = offset[np.append(starts[1:], m) - 1]
    off_identify = np.zeros(n, dtype=np.int64)
    off_identify[sess[kind == IDENTIFY]] = offset[kind == IDENTIFY]
    anchor = s.anchor_us[sess]
    start_anchored = np.isin(s.kind, (PRESIGNUP, BROWSE, VISITOR))[sess]
    ts = np.where(
        start_anchored,
        anchor + offset,
        np.where(
            s.kind[sess] == SIGNUP,
            anchor + offset - off_identify[sess],
            anchor - (duration[sess] - offset),
        ),
    )
    placed = tl.orders.placed_us[np.maximum(s.order_row[sess], 0)]
    return ordinal, np.where(kind == ORDER_COMPLETED, placed, ts)


def _build_range(tl: Timeline, s: Sessions, p_add: np.ndarray) -> Events:
    sess, kind, okey, page, item, qty, price = _sequence(s, _views(tl, s, p_add))
    ordinal, ts = _timestamps(tl, s, sess, kind, okey, page)
    m = sess.size
    return Events(
        sess=sess.astype(np.int32),
        kind=kind.astype(np.int8),
        okey=okey,
        ordinal=ordinal.astype(np.int32),
        ts=ts.astype(np.int64),
        page=page.astype(np.int8),
        item=item.astype(np.int16),
        qty=qty.astype(np.int16),
        price=price.astype(np.int32),
        exp=np.full(m, -1, dtype=np.int8),
        variant=np.full(m, -1, dtype=np.int8),
    )


def session_bounds(ev: Events, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last event time of each session."""
    start = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    end = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(start, ev.sess, ev.ts)
    np.maximum.at(end, ev.sess, ev.ts)
    return start, end


def settle_overlaps(s: Sessions, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sessions to keep: a session without an order or sign-up is dropped when it comes within
    30 minutes of another session on the same device (it would be the same session). Sessions
    never span a UTC midnight, so this looks at one day at a time and never at the future."""
    order = np.lexsort((start, s.device))
    dev, st, en = s.device[order], start[order], end[order]
    same_prev = np.r_[False, dev[1:] == dev[:-1]]
    close_prev = same_prev & (st - np.r_[0, en[:-1]] <= SESSION_GAP_US + OVERLAP_MARGIN_US)
    close_next = np.r_[close_prev[1:], False]
    protected = ((s.order_row >= 0) | (s.kind == SIGNUP))[order]
    drop = ~protected & (close_prev | close_next)
    keep = np.ones(len(s), dtype=bool)
    keep[order[drop]] = False
    return keep

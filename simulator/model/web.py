"""The chain's app and website traffic, drawn from the timeline: sessions on devices, the events
inside them, experiment exposures, and when each event reaches the collector.

Everything up to the timeline's horizon is settled here; the writers turn it into Segment
messages, the GA4 property's sessions and the Meta ads account.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.model.ads import PUBLISHER_PLATFORMS, AdPlan, make_plan
from simulator.model.clock import DAY_US, HOUR_US
from simulator.model.delivery import Deliveries, deliveries
from simulator.model.devices import (
    Devices,
    make_devices,
)
from simulator.model.experiments import (
    Exposures,
    add_rates,
    experiments_truth,
    exposures,
)
from simulator.model.funnel import (
    EXPERIMENT_VIEWED,
    IDENTIFY,
    LOGIN,
    ORDER_COMPLETED,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
    TRACK_EVENTS,
    VIEW,
    Events,
    build_events,
    session_bounds,
    settle_overlaps,
)
from simulator.model.population import Population
from simulator.model.rand import Stream, counter_uniform
from simulator.model.sessions import (
    BROWSE,
    GOOGLE_CPC,
    KINDS,
    ORDER,
    PAID_SOCIAL,
    PRESIGNUP,
    SIGNUP,
    SOURCES,
    VISITOR,
    Sessions,
    future_population,
    make_sessions,
)
from simulator.model.timeline import Timeline

SEARCH_CAMPAIGNS = (
    ("search_generic_makanan_delivery", "nasi goreng delivery"),
    ("search_brand_kedai_nusantara", "kedai nusantara"),
)
EMAIL_CAMPAIGNS = ("weekly_newsletter", "partner_newsletter")


@dataclass(frozen=True)
class WebWorld:
    """Settled sessions and events of the app and website up to the timeline's horizon."""

    plan: AdPlan
    pop: Population
    s: Sessions
    start: np.ndarray
    end: np.ndarray
    known: np.ndarray  # signed in when the session starts
    login: np.ndarray  # signs in during the session
    devices: Devices
    dev: np.ndarray  # row in devices, per session
    ev: Events
    ev_known: np.ndarray  # userId set on the event
    ev_state: np.ndarray  # page the event happened on (0 landing, 1 menu, 2 checkout)
    ex: Exposures
    dl: Deliveries


def _reindex_events(ev: Events, keep: np.ndarray) -> Events:
    rows = np.flatnonzero(keep[ev.sess])
    remap = np.cumsum(keep) - 1
    out = ev.take(rows)
    return dataclasses.replace(out, sess=remap[out.sess])


def _identities(s: Sessions, n_guests: int) -> tuple[np.ndarray, np.ndarray]:
    """Who is signed in: sessions after sign-up are signed in from the start on the device the
    guest signed up with, and on any other device after a login (an identify) in the device's
    first session after sign-up."""
    post = (s.cust >= 0) & np.isin(s.kind, (ORDER, BROWSE))
    signup_device = np.full(n_guests, -1, dtype=np.int64)
    g = s.kind == SIGNUP
    signup_device[s.cust[g]] = s.device[g]
    same = post & (s.device == signup_device[np.maximum(s.cust, 0)])
    rows = np.flatnonzero(post & ~same)
    order = rows[np.lexsort((s.anchor_us[rows], s.device[rows]))]
    first = np.r_[True, s.device[order][1:] != s.device[order][:-1]][: order.size]
    login = np.zeros(len(s), dtype=bool)
    login[order[first]] = True
    return post & ~login, login


def simulate_web(tl: Timeline) -> WebWorld:
    seed = tl.config.seed
    plan = make_plan(tl.config, tl.stores)
    pop = future_population(tl)
    cand = make_sessions(tl, pop, plan)
    ev = build_events(tl, cand, add_rates(seed, cand))
    start, end = session_bounds(ev, len(cand))
    keep = settle_overlaps(cand, start, end)
    s = cand.take(np.flatnonzero(keep))
    start, end = start[keep], end[keep]
    ev = _reindex_events(ev, keep)
    known, login = _identities(s, len(pop))
    ex = exposures(seed, s, start, known)

    # Inserted calls: Experiment Viewed just after the landing view, then the login identify.
    landing = (ev.kind == VIEW) & (ev.okey == 2.0)
    landing_ts = np.zeros(len(s), dtype=np.int64)
    landing_ts[ev.sess[landing]] = ev.ts[landing]
    shown = np.flatnonzero(ex.logged)
    x_sess, x_exp = ex.sess[shown], ex.exp[shown]
    x_key = s.key[x_sess]
    jitter = counter_uniform(seed, Stream.WEB_FUNNEL, x_key, 1000 + x_exp, 30)
    x_ts = landing_ts[x_sess] + 100_000 + x_exp * 60_000 + (jitter * 50_000).astype(np.int64)
    l_sess = np.flatnonzero(login)
    l_u = counter_uniform(seed, Stream.WEB_FUNNEL, s.key[l_sess], 2000, 31)
    l_ts = landing_ts[l_sess] + 500_000 + (l_u * 2_000_000).astype(np.int64)
    n_x, n_l = x_sess.size, l_sess.size
    extra = Events(
        sess=np.concatenate([x_sess, l_sess]),
        kind=np.concatenate([np.full(n_x, EXPERIMENT_VIEWED), np.full(n_l, LOGIN)]),
        okey=np.concatenate([2.5 + 0.01 * x_exp, np.full(n_l, 2.8)]),
        ordinal=np.concatenate([1000 + x_exp, np.full(n_l, 2000)]),
        ts=np.concatenate([x_ts, l_ts]),
        page=np.full(n_x + n_l, -1),
        item=np.full(n_x + n_l, -1),
        qty=np.zeros(n_x + n_l, dtype=np.int64),
        price=np.zeros(n_x + n_l, dtype=np.int64),
        exp=np.concatenate([x_exp, np.full(n_l, -1)]),
        variant=np.concatenate([ex.variant[shown], np.full(n_l, -1)]),
    )
    order = np.lexsort(
        (np.concatenate([ev.okey, extra.okey]), np.concatenate([ev.sess, extra.sess]))
    )
    fields = {}
    for f in Events.__dataclass_fields__:  # one field at a time: bounded memory at scale
        base = getattr(ev, f)
        fields[f] = np.concatenate([base, getattr(extra, f).astype(base.dtype)])[order]
    del ev, order
    ev = Events(**fields)

    signup = s.kind[ev.sess] == SIGNUP
    ev_known = known[ev.sess] | (signup & (ev.okey >= 22.0)) | (login[ev.sess] & (ev.okey >= 2.8))
    # The page each event happened on: the latest view so far in the session.
    is_view = ev.kind == VIEW
    state_here = np.where(is_view, np.where(ev.okey == 2.0, 0, ev.page), -1)
    idx = np.where(is_view, np.arange(len(ev)), 0)
    np.maximum.accumulate(idx, out=idx)
    ev_state = np.maximum(state_here[idx], 0)
    ev_state = np.where(ev.okey < 2.0, 0, ev_state)

    devices = make_devices(seed, s.device)
    dev = np.searchsorted(devices.key, s.device)
    dl = deliveries(seed, s.key, s.is_app, end, ev.sess, ev.ordinal, ev.ts)
    return WebWorld(plan, pop, s, start, end, known, login, devices, dev, ev, ev_known,
                    ev_state, ex, dl)  # fmt: skip


def utm_values(w: WebWorld, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """utm_campaign, utm_term and utm_content (the ad id) of sessions, None where absent."""
    s, plan = w.s, w.plan
    source, variant = s.source[rows], s.utm_variant[rows]
    ad = s.ad[rows]
    first = np.isin(s.kind[rows], (PRESIGNUP, SIGNUP, VISITOR))
    campaign = np.full(rows.size, None, dtype=object)
    term = np.full(rows.size, None, dtype=object)
    search = source == GOOGLE_CPC
    campaign[search] = np.take([c for c, _ in SEARCH_CAMPAIGNS], variant[search])
    term[search] = np.take([t for _, t in SEARCH_CAMPAIGNS], variant[search])
    paid = source == PAID_SOCIAL
    ad_campaign = plan.adset_campaign[plan.ad_adset[np.maximum(ad, 0)]]
    campaign[paid] = plan.campaign_name[ad_campaign[paid]]
    email = source == SOURCES.index("email")
    campaign[email] = np.where(first[email], EMAIL_CAMPAIGNS[1], EMAIL_CAMPAIGNS[0])
    campaign[source == SOURCES.index("referral")] = "refer_a_friend"
    content = np.where(paid, plan.ad_id[np.maximum(ad, 0)], None)
    return campaign, term, content


def ad_platforms(w: WebWorld, rows: np.ndarray) -> np.ndarray:
    """The publisher platform an ad-click session came from (its utm_source: the chain's ad
    links name the placement's platform), None for other sessions."""
    platform = w.s.ad_platform[rows]
    names = np.array(PUBLISHER_PLATFORMS, dtype=object)
    return np.where(platform >= 0, names[np.maximum(platform, 0)], None)


def web_truth(tl: Timeline, w: WebWorld, until_us: int, delivery_truth: dict) -> dict[str, Any]:
    s, ev, dl = w.s, w.ev, w.dl
    happened = w.start <= until_us
    n_guests = len(tl.population)
    # Identity: guests seen under more than one anonymousId before (and at) sign-up.
    signed = (s.cust >= 0) & (s.cust < n_guests) & happened
    early = signed & np.isin(s.kind, (PRESIGNUP, SIGNUP))
    pairs = np.unique(np.stack([s.cust[early], s.device[early]]), axis=1)
    per_guest = np.bincount(pairs[0], minlength=n_guests)
    pre = signed & (s.kind == PRESIGNUP)
    logged_in = happened & w.login
    arrived = dl.recv_us <= until_us
    e_arr = dl.event[arrived]
    delay = dl.recv_us[arrived] - ev.ts[e_arr]
    first = arrived & (dl.dup == 0)
    kinds = ev.kind[dl.event[first]].astype(np.int64)
    screen = (kinds == VIEW) & s.is_app[ev.sess[dl.event[first]]]
    codes = np.bincount(np.where(screen, 11, kinds), minlength=12)
    label = [
        "identify" if k in (IDENTIFY, LOGIN) else TRACK_EVENTS.get(k, "page") for k in range(11)
    ]
    by_name: dict[str, int] = {}
    for k, name in enumerate([*label, "screen"]):
        if codes[k]:
            by_name[name] = by_name.get(name, 0) + int(codes[k])
    occurred = ev.ts <= until_us
    converting = s.order_row >= 0
    source_label = np.where(
        s.source == PAID_SOCIAL,
        ad_platforms(w, np.arange(len(s))),
        np.array(SOURCES, dtype=object)[s.source],
    )
    return {
        "identities": {
            "guests_signed_up": int(n_guests),
            "guests_with_anonymous_sessions_before_signup": int(np.unique(s.cust[pre]).size),
            "guests_seen_under_several_anonymous_ids_before_signup": int((per_guest > 1).sum()),
            "anonymous_visitor_devices": int(
                np.unique(s.device[happened & (s.kind == VISITOR)]).size
            ),
            "devices_seen": int(np.unique(s.device[happened]).size),
            "logins_on_new_devices": int(logged_in.sum()),
        },
        "sessions": {
            "total": int(happened.sum()),
            "app": int((happened & s.is_app).sum()),
            "web": int((happened & ~s.is_app).sum()),
            "converting": int((happened & converting).sum()),
            "by_kind": {KINDS[k]: int((happened & (s.kind == k)).sum()) for k in range(len(KINDS))},
            # Ad clicks (paid_social) by the publisher platform they came from, their utm_source.
            "by_source": {
                name: int((happened & (source_label == name)).sum())
                for name in (*(k for k in SOURCES if k != "paid_social"), *PUBLISHER_PLATFORMS)
            },
        },
        "events": {
            "occurred": int(occurred.sum()),
            "delivered_lines": int(arrived.sum()),
            "distinct_message_ids": int(first.sum()),
            "duplicate_lines": int((arrived & (dl.dup == 1)).sum()),
            "not_yet_arrived": int((occurred.sum()) - first.sum()),
            "arrived_over_5_minutes_late": int((delay > 5 * 60_000_000).sum()),
            "arrived_over_1_hour_late": int((delay > HOUR_US).sum()),
            "arrived_over_1_day_late": int((delay > DAY_US).sum()),
            "max_delay_hours": round(float(delay.max(initial=0)) / HOUR_US, 3),
            "by_name": dict(sorted(by_name.items())),
            "order_completed_orders": int(
                np.unique(ev.sess[dl.event[first][kinds == ORDER_COMPLETED]]).size
            ),
        },
        **delivery_truth,
    }


def experiment_figures(tl: Timeline, w: WebWorld, until_us: int) -> list[dict[str, Any]]:
    ev, ex = w.ev, w.ex
    views = np.bincount(ev.sess[ev.kind == PRODUCT_VIEWED], minlength=len(w.s))
    adds = np.bincount(ev.sess[ev.kind == PRODUCT_ADDED], minlength=len(w.s))
    exposed_by = w.start[ex.sess] <= until_us
    return experiments_truth(tl.config.start_date, ex, exposed_by, views[ex.sess], adds[ex.sess])

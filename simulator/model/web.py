"""The chain's digital channels in one call: app and web events (Segment), the GA4 property's
sessions, and the Meta (Instagram) ads account, all drawn from the timeline.

`emit` writes the `events` landing stream incrementally (the arrival hours in (since, until]) and
rewrites the GA4 and Meta report sources whole; it returns the truth of everything up to until.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from simulator.model.ads import PUBLISHER_PLATFORMS, AdPlan, make_plan
from simulator.model.catalog import PROMOS
from simulator.model.clock import DAY_US, HOUR_US, epoch_day
from simulator.model.devices import (
    APP_DEVICES,
    BROWSERS,
    OS_VERSIONS,
    Devices,
    make_devices,
)
from simulator.model.experiments import (
    EXPERIMENTS,
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
from simulator.writers.segment import (
    CHUNK_EVENTS,
    LIBRARIES,
    TRACK_EVENTS,
    Deliveries,
    clear,
    compress_hours,
    deliveries,
    iso_timestamps,
    lookup_tables,
    message_ids,
    new_pool,
    render,
    write_compressed,
)

SEARCH_CAMPAIGNS = (
    ("search_generic_makanan_delivery", "nasi goreng delivery"),
    ("search_brand_kedai_nusantara", "kedai nusantara"),
)
EMAIL_CAMPAIGNS = ("weekly_newsletter", "partner_newsletter")
APP_RELEASE_EPOCH = date(2024, 1, 1)  # the app ships a release every 4 weeks since then
IP_PREFIXES = (  # Indonesian carrier and ISP ranges (first two octets)
    (36, 72), (36, 80), (114, 124), (114, 125), (110, 136), (110, 137), (180, 241),
    (180, 252), (182, 253), (103, 147), (139, 192), (120, 188),
)  # fmt: skip


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
    first = np.r_[True, s.device[order][1:] != s.device[order][:-1]]
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


def _menu_table(tl: Timeline) -> pa.Table:
    m = tl.menu
    return pa.table(
        {
            "item": pa.array(np.arange(m.sku.size), pa.int64()),
            "product_id": [str(i) for i in m.menu_item_id],
            "sku": list(m.sku),
            "name": list(m.name),
            "category": list(m.category),
        }
    )


def _experiments_table() -> pa.Table:
    rows = [
        (i, v, e.experiment_id, e.name, vid, vname)
        for i, e in enumerate(EXPERIMENTS)
        for v, (vid, vname) in enumerate(zip(e.variation_ids, e.variation_names, strict=True))
    ]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "exp": pa.array(cols[0], pa.int64()),
            "variant": pa.array(cols[1], pa.int64()),
            "experiment_id": list(cols[2]),
            "experiment_name": list(cols[3]),
            "variation_id": list(cols[4]),
            "variation_name": list(cols[5]),
        }
    )


def _obj(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


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


def _sessions_table(tl: Timeline, w: WebWorld, rows: np.ndarray) -> pa.Table:
    """What the render query needs to know about these sessions."""
    seed = tl.config.seed
    s, pop, d = w.s, w.pop, w.devices
    dev = w.dev[rows]
    model = d.model[dev]
    is_app = s.is_app[rows]
    app_model = np.where(is_app, model, 0)
    os_name = np.take(np.array([m[0] for m in APP_DEVICES], dtype=object), app_model)
    versions = np.where(
        os_name == "iOS",
        np.take(np.array(OS_VERSIONS["iOS"], dtype=object), np.minimum(d.os_version[dev], 2)),
        np.take(np.array(OS_VERSIONS["Android"], dtype=object), d.os_version[dev]),
    )
    ios = os_name == "iOS"
    lib_name = np.where(
        is_app,
        np.where(ios, LIBRARIES["iOS"][0], LIBRARIES["Android"][0]),
        LIBRARIES["web"][0],
    )
    lib_version = np.where(
        is_app,
        np.where(ios, LIBRARIES["iOS"][1], LIBRARIES["Android"][1]),
        LIBRARIES["web"][1],
    )
    day = s.day[rows]
    lag = (counter_uniform(seed, Stream.WEB_DEVICES, s.device[rows], 5, 0) * 3).astype(np.int64)
    release = np.maximum(
        (epoch_day(tl.config.start_date) + day - epoch_day(APP_RELEASE_EPOCH)) // 28 - lag, 0
    )
    ip_u = counter_uniform(seed, Stream.WEB_SESSIONS, s.key[rows], 0, 50)
    prefix = np.array(IP_PREFIXES)[(ip_u * len(IP_PREFIXES)).astype(np.int64)]
    low = (counter_uniform(seed, Stream.WEB_SESSIONS, s.key[rows], 0, 51) * 65_534).astype(int)
    ip = (prefix[:, 0] << 24) | (prefix[:, 1] << 16) | (low + 1)
    campaign, term, content = utm_values(w, rows)
    platform = ad_platforms(w, rows)
    cust = s.cust[rows]
    guest = np.maximum(cust, 0)
    order_row = s.order_row[rows]
    o = tl.orders
    orow = np.maximum(order_row, 0)
    has_order = order_row >= 0
    codes = np.array([p.code for p in PROMOS] + [None], dtype=object)
    coupon = np.where(has_order, codes[o.promo[orow]], None)
    stores = tl.stores
    has_guest = cust >= 0
    return pa.table(
        {
            "sess": pa.array(rows, pa.int64()),
            "anon": d.anonymous_id.take(pa.array(dev)),
            "device_id": d.device_id.take(pa.array(dev)),
            "user_id": pa.array(np.where(has_guest, pop.customer_id[guest], 0)).cast(pa.string()),
            "is_app": pa.array(is_app),
            "release": pa.array(release, pa.int64()),
            "manufacturer": _obj(np.take([m[1] for m in APP_DEVICES], app_model)),
            "model": _obj(np.take([m[2] for m in APP_DEVICES], app_model)),
            "device_name": _obj(np.take([m[3] for m in APP_DEVICES], app_model)),
            "os_name": _obj(os_name),
            "os_version": _obj(versions),
            "library_name": _obj(lib_name),
            "library_version": _obj(lib_version),
            "ip_number": pa.array(ip, pa.int64()),
            "user_agent": _obj(np.take([b[3] for b in BROWSERS], np.where(is_app, 0, model))),
            "source": pa.array(s.source[rows], pa.int64()),
            "utm_campaign": _obj(campaign),
            "utm_term": _obj(term),
            "ad_id": _obj(content),
            "landing": pa.array(
                np.where(np.isin(s.source[rows], (PAID_SOCIAL, SOURCES.index("email"))), 1, 0),
                pa.int64(),
            ),
            "cart_id": message_ids(seed, s.key[rows], np.full(rows.size, 3000)),
            "order_id": pa.array(np.where(has_order, orow + 1, 0)).cast(pa.string()),
            "total": pa.array(np.where(has_order, o.total[orow], 0), pa.int64()),
            "revenue": pa.array(
                np.where(has_order, o.total[orow] - o.delivery_fee[orow], 0), pa.int64()
            ),
            "shipping": pa.array(np.where(has_order, o.delivery_fee[orow], 0), pa.int64()),
            "discount": pa.array(np.where(has_order, o.discount[orow], 0), pa.int64()),
            "coupon": _obj(coupon),
            "affiliation": _obj(np.where(has_order, stores.name[o.store_idx[orow]], None)),
            "email": _obj(np.where(has_guest, pop.email[guest], None)),
            "phone": _obj(np.where(has_guest, pop.phone[guest], None)),
            "first_name": _obj(np.where(has_guest, pop.given_name[guest], None)),
            "full_name": _obj(np.where(has_guest, pop.full_name[guest], None)),
            "created_at": _obj(
                np.where(
                    has_guest,
                    np.datetime_as_string(
                        pop.signup_us[guest].astype("datetime64[us]").astype("datetime64[ms]")
                    ).astype(object)
                    + "Z",
                    None,
                )
            ),
            "accepts_email": pa.array(np.where(has_guest, pop.accepts_email[guest], False)),
            "accepts_sms": pa.array(np.where(has_guest, pop.accepts_sms[guest], False)),
            "utm_source": _obj(platform),
            "referrer": _obj(_referrer(s.source[rows], platform)),
            "referring_app": _obj(_referring_app(s.source[rows], platform, os_name)),
        }
    )


# An ad click's referrer and the app it opens from, by publisher platform: Instagram's and
# Facebook's link shims; Audience Network ads run in other publishers' apps, which send none.
PLATFORM_REFERRER = {
    "instagram": "https://l.instagram.com/",
    "facebook": "https://l.facebook.com/",
    "audience_network": "",
}
PLATFORM_APP = {  # platform: (Android package, iOS bundle id)
    "instagram": ("com.instagram.android", "com.burbn.instagram"),
    "facebook": ("com.facebook.katana", "com.facebook.Facebook"),
    "audience_network": (None, None),
}


def _referrer(source: np.ndarray, platform: np.ndarray) -> np.ndarray:
    by_source = np.array(
        ["", "https://www.google.com/", "https://www.google.com/", "", "", ""], dtype=object
    )
    ad = np.array([PLATFORM_REFERRER.get(p, "") for p in platform], dtype=object)
    return np.where(source == PAID_SOCIAL, ad, by_source[source])


def _referring_app(source: np.ndarray, platform: np.ndarray, os_name: np.ndarray) -> np.ndarray:
    android = np.array(
        [None, None, "com.android.chrome", None, "com.google.android.gm", "com.whatsapp"],
        dtype=object,
    )
    ios = np.array(
        [None, None, "com.apple.mobilesafari", None, "com.apple.mobilemail",
         "net.whatsapp.WhatsApp"], dtype=object)  # fmt: skip
    ios_app = os_name == "iOS"
    ad = np.array(
        [PLATFORM_APP.get(p, (None, None))[int(i)] for p, i in zip(platform, ios_app, strict=True)],
        dtype=object,
    )
    return np.where(source == PAID_SOCIAL, ad, np.where(ios_app, ios[source], android[source]))


def _deliveries_table(w: WebWorld, rows: np.ndarray, mids: pa.Array, pos0: int) -> pa.Table:
    ev, dl = w.ev, w.dl
    e = dl.event[rows]
    return pa.table(
        {
            "pos": pa.array(np.arange(pos0, pos0 + rows.size), pa.int64()),
            "sess": pa.array(ev.sess[e], pa.int64()),
            "kind": pa.array(ev.kind[e], pa.int64()),
            "page": pa.array(ev.page[e], pa.int64()),
            "item": pa.array(ev.item[e], pa.int64()),
            "qty": pa.array(ev.qty[e], pa.int64()),
            "price": pa.array(ev.price[e], pa.int64()),
            "exp": pa.array(ev.exp[e], pa.int64()),
            "variant": pa.array(ev.variant[e], pa.int64()),
            "state": pa.array(w.ev_state[e], pa.int64()),
            "known": pa.array(w.ev_known[e]),
            "ts_text": iso_timestamps(ev.ts[e]),
            "sent_text": iso_timestamps(dl.sent_us[rows]),
            "recv_text": iso_timestamps(dl.recv_us[rows]),
            "mid": mids,
            "dup": pa.array(dl.dup[rows], pa.int64()),
        }
    )


def _carts_table(w: WebWorld, add_rows: np.ndarray, sessions: np.ndarray) -> pa.Table:
    """The Product Added events of these sessions (events are sorted by session)."""
    ev = w.ev
    add_sess = ev.sess[add_rows]
    lo = np.searchsorted(add_sess, sessions)
    n = np.searchsorted(add_sess, sessions, side="right") - lo
    rows = add_rows[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())]
    return pa.table(
        {
            "sess": pa.array(ev.sess[rows], pa.int64()),
            "okey": pa.array(ev.okey[rows]),
            "item": pa.array(ev.item[rows], pa.int64()),
            "qty": pa.array(ev.qty[rows], pa.int64()),
            "price": pa.array(ev.price[rows], pa.int64()),
        }
    )


def emit_events(tl: Timeline, w: WebWorld, root: Path, since_us: int | None, until_us: int):
    """Write the arrival hours in (since_us, until_us] of the events stream."""
    seed = tl.config.seed
    dl, ev = w.dl, w.ev
    lo = -1 if since_us is None else since_us
    rows = np.flatnonzero((dl.recv_us > lo) & (dl.recv_us <= until_us))
    e = dl.event[rows]
    # Arrival order; ties (rare) broken by stable per-message keys, never by row positions.
    order = np.lexsort((dl.dup[rows], ev.ordinal[e], w.s.key[ev.sess[e]], dl.recv_us[rows]))
    rows = rows[order]
    if since_us is None:
        clear(root)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    lookup_tables(con, _menu_table(tl), _experiments_table())
    day = dl.recv_us[rows] // DAY_US
    # Chunks of whole days of about CHUNK_EVENTS rows.
    day_bounds = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    cuts = [0]
    for b in day_bounds[1:]:
        if b - cuts[-1] >= CHUNK_EVENTS:
            cuts.append(int(b))
    cuts.append(rows.size)
    add_rows = np.flatnonzero(ev.kind == PRODUCT_ADDED)
    pool = new_pool()
    files = 0
    pending: list = []  # (lines, jobs) compressing while the next chunk renders
    try:
        for a, b in itertools.pairwise(cuts):
            if a == b:
                continue
            chunk = rows[a:b]
            ce = dl.event[chunk]
            mids = message_ids(seed, w.s.key[ev.sess[ce]], ev.ordinal[ce])
            sessions = np.unique(ev.sess[ce])
            lines = render(
                con,
                _deliveries_table(w, chunk, mids, a),
                _sessions_table(tl, w, sessions),
                _carts_table(w, add_rows, sessions),
            )
            while pending:
                files += write_compressed(pending.pop(0)[1])
            pending.append((lines, compress_hours(root, dl.recv_us[chunk], lines, pool)))
        while pending:
            files += write_compressed(pending.pop(0)[1])
    finally:
        pool.shutdown(wait=True)
        con.close()
    return files


def truth(tl: Timeline, w: WebWorld, until_us: int, delivery_truth: dict) -> dict[str, Any]:
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


def emit(timeline: Timeline, out_dir: Path | str, since_us: int | None, until_us: int) -> dict:
    """Write the web channels' outputs and return their truth (see the module docstring)."""
    from simulator.writers.ga4 import write_ga4
    from simulator.writers.meta import write_meta

    out_dir = Path(out_dir)
    if (until_us + 1) % HOUR_US or (since_us is not None and (since_us + 1) % HOUR_US):
        raise ValueError("since_us and until_us must be the last microsecond of an hour")
    w = simulate_web(timeline)
    emit_events(timeline, w, out_dir / "landing" / "events", since_us, until_us)
    ga4 = write_ga4(timeline, w, out_dir / "ga4", until_us)
    meta = write_meta(timeline, w, out_dir / "meta", until_us)
    result = truth(timeline, w, until_us, {"ga4": ga4, "ads": meta})
    result["experiments"] = experiment_figures(timeline, w, until_us)
    return _sorted(result)


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value

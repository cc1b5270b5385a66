"""Segment Spec messages of the app and website, delivered into the `events` landing stream.

Each event becomes an identify / track / page / screen message with the Spec's common fields
(anonymousId, userId once known, messageId, timestamp, originalTimestamp, sentAt, receivedAt,
context) and E-commerce v2 properties. Delivery mimics the SDKs: analytics.js sends at once; the
mobile libraries batch (up to 30 s), and an offline phone flushes its queue minutes to days later
(at most 3 days). About 1% of messages are delivered twice with the same messageId (retries).
Files are partitioned by arrival (receivedAt) hour; each hour's file is written once, complete,
with its lines in receivedAt order, gzip with mtime 0: byte-identical on rebuild.
JSON is built by DuckDB (one query per chunk of days), compressed in two threads.
"""

from __future__ import annotations

import gzip
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from simulator.model.clock import HOUR_US, MINUTE_US
from simulator.model.devices import fixed_width_strings, keyed_128, uuid4_array
from simulator.model.funnel import (
    APP_OPENED,
    CHECKOUT_STARTED,
    DEEP_LINK,
    EXPERIMENT_VIEWED,
    IDENTIFY,
    LOGIN,
    ORDER_COMPLETED,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
    SIGNED_UP,
    VIEW,
)
from simulator.model.rand import Stream, counter_uniform

STREAM = "events"
MAX_DELAY_US = 72 * HOUR_US  # nothing arrives more than 3 days after it happened
OFFLINE_SHARE = 0.10  # app sessions whose phone was offline when they ended
DUPLICATE_SHARE = 0.01  # messages delivered twice (client retries)
APP_BATCH_US = 30 * 1_000_000  # the mobile libraries flush every 30 s
GZIP_LEVEL = 1
DELIVERY_SLICE = 2_000_000  # events whose arrival is drawn at a time
CHUNK_EVENTS = 120_000  # rows rendered per DuckDB query (whole days at a time)
SITE = "https://pesan.kedainusantara.co.id"
APP_NAME = "Kedai Nusantara"
APP_NAMESPACE = "id.kedainusantara.app"
LIBRARIES = {
    "web": ("analytics.js", "next-1.70.0"),
    "Android": ("analytics-kotlin", "1.16.3"),
    "iOS": ("analytics-swift", "1.5.11"),
}
PAGES = (  # (web path, web title, app screen name)
    ("/", "Kedai Nusantara - Pesan Online", "Home"),
    ("/menu", "Menu | Kedai Nusantara", "Menu"),
    ("/checkout", "Checkout | Kedai Nusantara", "Checkout"),
)
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
class Deliveries:
    """Every delivery of every event (a retried event is delivered twice), unsorted."""

    event: np.ndarray  # row in Events
    dup: np.ndarray  # 0 first delivery, 1 the retry
    sent_us: np.ndarray
    recv_us: np.ndarray


_DIGITS2 = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)
_DIGITS3 = np.array([[48 + i // 100, 48 + i // 10 % 10, 48 + i % 10] for i in range(1000)],
                    dtype=np.uint8)  # fmt: skip


def iso_timestamps(us: np.ndarray) -> pa.Array:
    """'YYYY-MM-DDTHH:MM:SS.sssZ' (Segment's ISO-8601, milliseconds, UTC) as Arrow strings,
    assembled as a fixed-width byte matrix from integer arithmetic (no per-row formatting)."""
    ms = np.asarray(us, dtype=np.int64) // 1000
    day = ms // 86_400_000
    rem = ms - day * 86_400_000
    first = int(day.min(initial=0))
    span = np.arange(first, int(day.max(initial=0)) + 1).astype("datetime64[D]")
    dates = np.frombuffer(np.datetime_as_string(span).astype("S10").tobytes(), dtype=np.uint8)
    out = np.empty((ms.size, 24), dtype=np.uint8)
    out[:, :10] = dates.reshape(-1, 10)[day - first]
    out[:, 10], out[:, 13], out[:, 16], out[:, 19], out[:, 23] = (ord(c) for c in "T::.Z")
    out[:, 11:13] = _DIGITS2[rem // 3_600_000]
    out[:, 14:16] = _DIGITS2[rem // 60_000 % 60]
    out[:, 17:19] = _DIGITS2[rem // 1000 % 60]
    out[:, 20:23] = _DIGITS3[rem % 1000]
    return fixed_width_strings(out)


def message_ids(seed: int, session_key: np.ndarray, ordinal: np.ndarray) -> pa.Array:
    hi, lo = keyed_128(seed, Stream.WEB_DELIVERY, session_key, ordinal, 20)
    return uuid4_array(hi, lo)


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


# The message JSON, built by DuckDB. `e` holds one row per delivery, `s` one per session; the
# context is built per (session, page) and the properties per kind of event, each branch with
# only the keys it has (no nulls), then everything is joined as text in alphabetical key order,
# as Segment's own archives write them.
RENDER_SQL = """
with s0 as (
    select *,
        concat((3 + release // 10)::varchar, '.', (release % 10)::varchar, '.0') as app_version,
        (3000 + 3 * release)::varchar as app_build,
        concat((ip_number >> 24)::varchar, '.', ((ip_number >> 16) & 255)::varchar, '.',
            ((ip_number >> 8) & 255)::varchar, '.', (ip_number & 255)::varchar) as ip,
        case source
            when 2 then '?utm_source=google&utm_medium=cpc&utm_campaign=' || utm_campaign
                || '&utm_term=' || replace(utm_term, ' ', '+')
            when 3 then '?utm_source=' || utm_source || '&utm_medium=paid_social&utm_campaign='
                || utm_campaign || '&utm_content=' || ad_id
            when 4 then '?utm_source=newsletter&utm_medium=email&utm_campaign=' || utm_campaign
            when 5 then '?utm_source=referral&utm_medium=referral&utm_campaign=' || utm_campaign
            else ''
        end as search
    from sessions
),
s as (
    select s.*,
        '__SITE__' || case when s.landing = 1 then '/menu' else '/' end || s.search
            as landing_url,
        'kedainusantara://' || case when s.landing = 1 then 'menu' else 'home' end || s.search
            as deep_link,
        case when s.is_app then to_json({
            'build': s.app_build, 'name': '__APP_NAME__', 'namespace': '__APP_NAMESPACE__',
            'version': s.app_version}) end as app_json,
        case s.source
            when 2 then to_json({'medium': 'cpc', 'name': s.utm_campaign, 'source': 'google',
                                 'term': s.utm_term})
            when 3 then to_json({'content': s.ad_id, 'medium': 'paid_social',
                                 'name': s.utm_campaign, 'source': s.utm_source})
            when 4 then to_json({'medium': 'email', 'name': s.utm_campaign, 'source': 'newsletter'})
            when 5 then to_json({'medium': 'referral', 'name': s.utm_campaign,
                                 'source': 'referral'})
        end as campaign_json
    from s0 as s
),
ctx as (
    select s.sess, p.state,
        concat('{',
            case when s.is_app then concat('"app":', s.app_json, ',') else '' end,
            case when p.state = 0 and s.campaign_json is not null
                then concat('"campaign":', s.campaign_json, ',') else '' end,
            case when s.is_app then concat('"device":', to_json({
                'id': s.device_id, 'manufacturer': s.manufacturer, 'model': s.model,
                'name': s.device_name, 'type': lower(s.os_name)}), ',') else '' end,
            '"ip":"', s.ip, '","library":', to_json({'name': s.library_name,
                'version': s.library_version}), ',"locale":"id-ID",',
            case when s.is_app then concat('"os":', to_json({'name': s.os_name,
                'version': s.os_version}), ',')
                else concat('"page":', p.page_json, ',') end,
            '"timezone":"Asia/Jakarta"',
            case when s.is_app then '' else concat(',"userAgent":', to_json(s.user_agent)) end,
            '}') as context,
        p.page_json
    from s
    join (
        select s.sess, st.state,
            to_json({
                'path': pg.path,
                'referrer': case when st.state = 0 then s.referrer
                    when st.state = 1 or s.landing = 1 then s.landing_url else '__SITE__/menu' end,
                'search': case when st.state = 0 then s.search else '' end,
                'title': pg.title,
                'url': case when st.state = 0 then s.landing_url else '__SITE__' || pg.path end
            }) as page_json
        from s
        cross join (select unnest([0, 1, 2]) as state) as st
        join pages as pg on pg.page = case when st.state = 0 then s.landing else st.state end
    ) as p on p.sess = s.sess
),
carts as (
    select sess,
        list_transform(list_sort(list({'k': c.okey, 'p': {
            'category': m.category, 'name': m.name, 'price': c.price,
            'product_id': m.product_id, 'quantity': c.qty, 'sku': m.sku}})), x -> x.p)
            as products,
        sum(c.price * c.qty) as value
    from carts as c join menu as m on m.item = c.item
    group by sess
),
lines as (
    select e.pos, concat(
        '{"anonymousId":"', s.anon, '","context":', ctx.context,
        case when e.kind = __IDENTIFY__ or e.kind = __LOGIN__ then ''
            when e.kind = __VIEW__ then concat(',"name":"', pg.screen, '"')
            else concat(',"event":"', ev.name, '"') end,
        ',"messageId":"', e.mid, '","originalTimestamp":"', e.ts_text, '",',
        case
            when e.kind = __IDENTIFY__ and s.phone is not null then '"traits":' || to_json({
                'accepts_email_marketing': s.accepts_email, 'accepts_sms_marketing':
                s.accepts_sms, 'created_at': s.created_at, 'email': s.email,
                'first_name': s.first_name, 'name': s.full_name, 'phone': s.phone})
            when e.kind = __IDENTIFY__ then '"traits":' || to_json({
                'accepts_email_marketing': s.accepts_email, 'accepts_sms_marketing':
                s.accepts_sms, 'created_at': s.created_at, 'email': s.email,
                'first_name': s.first_name, 'name': s.full_name})
            when e.kind = __LOGIN__ then '"traits":' || to_json({'email': s.email,
                'name': s.full_name})
            when e.kind = __VIEW__ and s.is_app then '"properties":{}'
            when e.kind = __VIEW__ then '"properties":' || ctx.page_json
            when e.kind = __APP_OPENED__ then '"properties":' || to_json({
                'build': s.app_build, 'from_background': false, 'version': s.app_version})
            when e.kind = __DEEP_LINK__ then '"properties":' || to_json({
                'referring_application': s.referring_app, 'url': s.deep_link})
            when e.kind = __EXPERIMENT_VIEWED__ then '"properties":' || to_json({
                'experiment_id': x.experiment_id, 'experiment_name': x.experiment_name,
                'variation_id': x.variation_id, 'variation_name': x.variation_name})
            when e.kind = __PRODUCT_VIEWED__ then '"properties":' || to_json({
                'category': m.category, 'currency': 'IDR', 'name': m.name, 'price': e.price,
                'product_id': m.product_id, 'sku': m.sku})
            when e.kind = __PRODUCT_ADDED__ then '"properties":' || to_json({
                'cart_id': s.cart_id, 'category': m.category, 'currency': 'IDR',
                'name': m.name, 'price': e.price, 'product_id': m.product_id,
                'quantity': e.qty, 'sku': m.sku})
            when e.kind = __CHECKOUT_STARTED__ then '"properties":' || to_json({
                'cart_id': s.cart_id, 'currency': 'IDR', 'products': c.products,
                'value': c.value})
            when e.kind = __SIGNED_UP__ then '"properties":' || to_json({'method': 'email'})
            when e.kind = __ORDER_COMPLETED__ and s.coupon is not null then '"properties":'
                || to_json({'affiliation': s.affiliation, 'checkout_id': s.cart_id,
                'coupon': s.coupon, 'currency': 'IDR', 'discount': s.discount,
                'order_id': s.order_id, 'products': c.products, 'revenue': s.revenue,
                'shipping': s.shipping, 'tax': 0, 'total': s.total})
            when e.kind = __ORDER_COMPLETED__ then '"properties":' || to_json({
                'affiliation': s.affiliation, 'checkout_id': s.cart_id, 'currency': 'IDR',
                'discount': s.discount, 'order_id': s.order_id, 'products': c.products,
                'revenue': s.revenue, 'shipping': s.shipping, 'tax': 0, 'total': s.total})
        end,
        ',"receivedAt":"', e.recv_text, '","sentAt":"', e.sent_text,
        '","timestamp":"', e.ts_text, '","type":"',
        case when e.kind in (__IDENTIFY__, __LOGIN__) then 'identify'
            when e.kind = __VIEW__ and s.is_app then 'screen'
            when e.kind = __VIEW__ then 'page' else 'track' end,
        '"',
        case when e.known then concat(',"userId":"', s.user_id, '"') else '' end,
        '}', chr(10)) as line
    from deliveries as e
    join s on s.sess = e.sess
    join ctx on ctx.sess = e.sess and ctx.state = e.state
    left join pages as pg on pg.page = e.page
    left join event_names as ev on ev.kind = e.kind
    left join menu as m on m.item = e.item
    left join experiments as x on x.exp = e.exp and x.variant = e.variant
    left join carts as c on c.sess = e.sess
)
select pos, line from lines
"""


def render_sql() -> str:
    sql = RENDER_SQL
    names = {
        "IDENTIFY": IDENTIFY,
        "LOGIN": LOGIN,
        "VIEW": VIEW,
        "APP_OPENED": APP_OPENED,
        "DEEP_LINK": DEEP_LINK,
        "EXPERIMENT_VIEWED": EXPERIMENT_VIEWED,
        "PRODUCT_VIEWED": PRODUCT_VIEWED,
        "PRODUCT_ADDED": PRODUCT_ADDED,
        "CHECKOUT_STARTED": CHECKOUT_STARTED,
        "SIGNED_UP": SIGNED_UP,
        "ORDER_COMPLETED": ORDER_COMPLETED,
    }
    for name, value in names.items():
        sql = sql.replace(f"__{name}__", str(value))
    return (
        sql.replace("__APP_NAME__", APP_NAME)
        .replace("__APP_NAMESPACE__", APP_NAMESPACE)
        .replace("__SITE__", SITE)
    )


def lookup_tables(con: duckdb.DuckDBPyConnection, menu_rows: pa.Table, exp_rows: pa.Table):
    """Register the small tables the render query joins."""
    con.register("menu", menu_rows)
    con.register("experiments", exp_rows)
    con.register(
        "pages",
        pa.table(
            {
                "page": pa.array(range(len(PAGES)), pa.int64()),
                "path": [p[0] for p in PAGES],
                "title": [p[1] for p in PAGES],
                "screen": [p[2] for p in PAGES],
            }
        ),
    )
    con.register(
        "event_names",
        pa.table(
            {
                "kind": pa.array(list(TRACK_EVENTS), pa.int64()),
                "name": list(TRACK_EVENTS.values()),
            }
        ),
    )


def render(
    con: duckdb.DuckDBPyConnection,
    deliveries_tbl: pa.Table,
    sessions_tbl: pa.Table,
    carts_tbl: pa.Table,
) -> pa.ChunkedArray:
    """JSON lines (each ending in a newline) for the deliveries, in their `pos` order."""
    con.register("deliveries", deliveries_tbl)
    con.register("sessions", sessions_tbl)
    con.register("carts", carts_tbl)
    try:
        out = con.execute(render_sql()).arrow()
        out = out.read_all() if hasattr(out, "read_all") else out  # duckdb 1.5 / 1.4
        order = np.argsort(out.column("pos").to_numpy(), kind="stable")
        lines = out.column("line")
        del out
        return lines.take(pa.array(order)).combine_chunks()
    finally:
        for name in ("deliveries", "sessions", "carts"):
            con.unregister(name)


def hour_path(root: Path, hour_us: int) -> Path:
    stamp = np.datetime64(hour_us, "us").astype("datetime64[h]").item()
    folder = root / f"date={stamp:%Y-%m-%d}" / f"hour={stamp:%H}"
    return folder / f"{STREAM}-{stamp:%Y%m%dT%H}-0000.ndjson.gz"


def _gzip(payload: bytes) -> bytes:
    return gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0)


def compress_hours(root: Path, recv_us: np.ndarray, lines: pa.Array, pool) -> list:
    """Split rendered lines (sorted by receivedAt) into hour payloads and start compressing them
    in the pool; returns [(path, future)] (the caller keeps `lines` alive until written)."""
    if lines.type == pa.large_string():
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    else:
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])
    hours = recv_us // HOUR_US
    bounds = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]])
    ends = np.append(bounds[1:], hours.size)
    return [
        (
            hour_path(root, int(hours[lo]) * HOUR_US),
            pool.submit(_gzip, data[int(offsets[lo]) : int(offsets[hi])]),
        )
        for lo, hi in zip(bounds, ends, strict=True)
    ]


def write_compressed(jobs: list) -> int:
    made = set()
    for path, future in jobs:
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(future.result())
    return len(jobs)


def clear(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)


def new_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2)

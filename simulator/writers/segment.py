"""Segment Spec messages of the app and website, delivered into the `events` landing stream.

Each event becomes an identify / track / page / screen message with the Spec's common fields
(anonymousId, userId once known, messageId, timestamp, originalTimestamp, sentAt, receivedAt,
context) and E-commerce v2 properties, at the instants model/delivery.py draws. Files are
partitioned by arrival (receivedAt) hour; each hour's file is written once, complete,
with its lines in receivedAt order, gzip with mtime 0: byte-identical on rebuild.
JSON is built by DuckDB (one query per chunk of days), compressed in two threads.
"""

from __future__ import annotations

import gzip
import itertools
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from simulator.model.catalog import PROMOS
from simulator.model.clock import DAY_US, HOUR_US, epoch_day
from simulator.model.devices import (
    APP_DEVICES,
    BROWSERS,
    OS_VERSIONS,
    fixed_width_strings,
    keyed_128,
    uuid4_array,
)
from simulator.model.experiments import (
    EXPERIMENTS,
)
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
    TRACK_EVENTS,
    VIEW,
)
from simulator.model.rand import Stream, counter_uniform
from simulator.model.sessions import (
    PAID_SOCIAL,
    SOURCES,
)
from simulator.model.timeline import Timeline
from simulator.model.web import WebWorld, ad_platforms, utm_values

STREAM = "events"
GZIP_LEVEL = 1
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


APP_RELEASE_EPOCH = date(2024, 1, 1)  # the app ships a release every 4 weeks since then
IP_PREFIXES = (  # Indonesian carrier and ISP ranges (first two octets)
    (36, 72), (36, 80), (114, 124), (114, 125), (110, 136), (110, 137), (180, 241),
    (180, 252), (182, 253), (103, 147), (139, 192), (120, 188),
)  # fmt: skip


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


def _device_columns(
    tl: Timeline, w: WebWorld, rows: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """The device, app release, library, IP and user agent of these sessions; and the app's OS
    name (the referring app depends on it)."""
    seed = tl.config.seed
    s, d = w.s, w.devices
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
    library = [
        np.where(is_app, np.where(ios, LIBRARIES["iOS"][i], LIBRARIES["Android"][i]),
                 LIBRARIES["web"][i])
        for i in (0, 1)
    ]  # fmt: skip
    day = s.day[rows]
    lag = (counter_uniform(seed, Stream.WEB_DEVICES, s.device[rows], 5, 0) * 3).astype(np.int64)
    release = np.maximum(
        (epoch_day(tl.config.start_date) + day - epoch_day(APP_RELEASE_EPOCH)) // 28 - lag, 0
    )
    ip_u = counter_uniform(seed, Stream.WEB_SESSIONS, s.key[rows], 0, 50)
    prefix = np.array(IP_PREFIXES)[(ip_u * len(IP_PREFIXES)).astype(np.int64)]
    low = (counter_uniform(seed, Stream.WEB_SESSIONS, s.key[rows], 0, 51) * 65_534).astype(int)
    ip = (prefix[:, 0] << 24) | (prefix[:, 1] << 16) | (low + 1)
    return {
        "anon": d.anonymous_id.take(pa.array(dev)),
        "device_id": d.device_id.take(pa.array(dev)),
        "is_app": pa.array(is_app),
        "release": pa.array(release, pa.int64()),
        "manufacturer": _obj(np.take([m[1] for m in APP_DEVICES], app_model)),
        "model": _obj(np.take([m[2] for m in APP_DEVICES], app_model)),
        "device_name": _obj(np.take([m[3] for m in APP_DEVICES], app_model)),
        "os_name": _obj(os_name),
        "os_version": _obj(versions),
        "library_name": _obj(library[0]),
        "library_version": _obj(library[1]),
        "ip_number": pa.array(ip, pa.int64()),
        "user_agent": _obj(np.take([b[3] for b in BROWSERS], np.where(is_app, 0, model))),
    }, os_name


def _order_columns(tl: Timeline, w: WebWorld, rows: np.ndarray) -> dict[str, Any]:
    """The order a converting session ends in (zeros and nulls for the others)."""
    o = tl.orders
    order_row = w.s.order_row[rows]
    orow = np.maximum(order_row, 0)
    has_order = order_row >= 0
    codes = np.array([p.code for p in PROMOS] + [None], dtype=object)
    return {
        "order_id": pa.array(np.where(has_order, orow + 1, 0)).cast(pa.string()),
        "total": pa.array(np.where(has_order, o.total[orow], 0), pa.int64()),
        "revenue": pa.array(
            np.where(has_order, o.total[orow] - o.delivery_fee[orow], 0), pa.int64()
        ),
        "shipping": pa.array(np.where(has_order, o.delivery_fee[orow], 0), pa.int64()),
        "discount": pa.array(np.where(has_order, o.discount[orow], 0), pa.int64()),
        "coupon": _obj(np.where(has_order, codes[o.promo[orow]], None)),
        "affiliation": _obj(np.where(has_order, tl.stores.name[o.store_idx[orow]], None)),
    }


def _guest_columns(w: WebWorld, rows: np.ndarray) -> dict[str, Any]:
    """The identify traits of the session's guest (nulls for anonymous visitors)."""
    pop = w.pop
    cust = w.s.cust[rows]
    guest = np.maximum(cust, 0)
    has_guest = cust >= 0
    signup_ms = pop.signup_us[guest].astype("datetime64[us]").astype("datetime64[ms]")
    return {
        "email": _obj(np.where(has_guest, pop.email[guest], None)),
        "phone": _obj(np.where(has_guest, pop.phone[guest], None)),
        "first_name": _obj(np.where(has_guest, pop.given_name[guest], None)),
        "full_name": _obj(np.where(has_guest, pop.full_name[guest], None)),
        "created_at": _obj(
            np.where(has_guest, np.datetime_as_string(signup_ms).astype(object) + "Z", None)
        ),
        "accepts_email": pa.array(np.where(has_guest, pop.accepts_email[guest], False)),
        "accepts_sms": pa.array(np.where(has_guest, pop.accepts_sms[guest], False)),
    }


def _sessions_table(tl: Timeline, w: WebWorld, rows: np.ndarray) -> pa.Table:
    """What the render query needs to know about these sessions, in the query's column order."""
    s = w.s
    device, os_name = _device_columns(tl, w, rows)
    campaign, term, content = utm_values(w, rows)
    platform = ad_platforms(w, rows)
    cust = s.cust[rows]
    source = s.source[rows]
    user_id = np.where(cust >= 0, w.pop.customer_id[np.maximum(cust, 0)], 0)
    columns = {
        "sess": pa.array(rows, pa.int64()),
        "anon": device.pop("anon"),
        "device_id": device.pop("device_id"),
        "user_id": pa.array(user_id).cast(pa.string()),
        **device,
        "source": pa.array(source, pa.int64()),
        "utm_campaign": _obj(campaign),
        "utm_term": _obj(term),
        "ad_id": _obj(content),
        "landing": pa.array(
            np.where(np.isin(source, (PAID_SOCIAL, SOURCES.index("email"))), 1, 0), pa.int64()
        ),
        "cart_id": message_ids(tl.config.seed, s.key[rows], np.full(rows.size, 3000)),
        **_order_columns(tl, w, rows),
        **_guest_columns(w, rows),
        "utm_source": _obj(platform),
        "referrer": _obj(_referrer(source, platform)),
        "referring_app": _obj(_referring_app(source, platform, os_name)),
    }
    return pa.table(columns)


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


def write_events(tl: Timeline, w: WebWorld, root: Path, since_us: int | None, until_us: int):
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

"""Guests' devices: phones running the app and browsers, with the ids analytics tools give them.

Every attribute is a keyed draw on the device key (guest x slot, or visitor), so a device looks
the same in every session and every world length. Ids are uuid4-shaped hex built from keyed
128-bit values, vectorised (no uuid module per row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from simulator.model.rand import Stream, counter_uniform

# (OS, manufacturer, model, marketing name, weight, GA4 device category)
APP_DEVICES = (
    ("Android", "samsung", "SM-A546E", "Galaxy A54 5G", 0.16, "mobile"),
    ("Android", "samsung", "SM-A155F", "Galaxy A15", 0.14, "mobile"),
    ("Android", "Xiaomi", "23124RN87G", "Redmi Note 13", 0.14, "mobile"),
    ("Android", "OPPO", "CPH2591", "OPPO A79 5G", 0.12, "mobile"),
    ("Android", "vivo", "V2318", "vivo Y17s", 0.11, "mobile"),
    ("Android", "realme", "RMX3830", "realme C55", 0.08, "mobile"),
    ("Android", "INFINIX", "X6831", "Infinix HOT 40", 0.05, "mobile"),
    ("iOS", "Apple", "iPhone14,7", "iPhone 14", 0.08, "mobile"),
    ("iOS", "Apple", "iPhone15,4", "iPhone 15", 0.06, "mobile"),
    ("iOS", "Apple", "iPhone13,2", "iPhone 12", 0.04, "mobile"),
    ("iOS", "Apple", "iPad13,18", "iPad (10th generation)", 0.02, "tablet"),
)
OS_VERSIONS = {"Android": ("12", "13", "14", "15"), "iOS": ("16.7.10", "17.6.1", "18.1")}
_CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36"
)
_SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
_CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36"
)
_SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
_SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
# (GA4 device category, weight as a first browser, weight as a second browser, user agent)
BROWSERS = (
    ("mobile", 0.40, 0.0, _CHROME_ANDROID.format(v=124)),
    ("mobile", 0.14, 0.0, _CHROME_ANDROID.format(v=126)),
    ("mobile", 0.08, 0.0, _SAFARI_IPHONE),
    ("desktop", 0.22, 0.55, _CHROME_WINDOWS.format(v=124)),
    ("desktop", 0.08, 0.20, _SAFARI_MAC),
    ("desktop", 0.04, 0.10, _CHROME_WINDOWS.format(v=126)),
    ("tablet", 0.04, 0.15, _SAFARI_IPAD),
)
APP_SLOT, WEB_SLOT, WEB2_SLOT = range(3)


@dataclass(frozen=True)
class Devices:
    """One row per device key, sorted by key."""

    key: np.ndarray
    is_app: np.ndarray
    model: np.ndarray  # index into APP_DEVICES (apps) or BROWSERS (web)
    os_version: np.ndarray  # index into OS_VERSIONS[os]
    anonymous_id: pa.Array  # Segment anonymousId (uuid4)
    device_id: pa.Array  # context.device.id (apps; uppercase on iOS, as IDFV)
    app_instance_id: pa.Array  # GA4 user_pseudo_id of an app install (32 hex)
    client_number: np.ndarray  # the random half of a web GA client id


def _bits(seed: int, key: np.ndarray, index: int, lane: int) -> np.ndarray:
    """53 keyed random bits per key, as uint64."""
    u = counter_uniform(seed, Stream.WEB_DEVICES, key, index, lane)
    return (u * 2.0**53).astype(np.uint64)


def keyed_128(
    seed: int, stream: Stream, key: np.ndarray, index: int | np.ndarray, lane: int
) -> tuple[np.ndarray, np.ndarray]:
    """128 keyed random bits per element (from three 53-bit draws) as (hi, lo) uint64."""
    a, b, c = (
        (counter_uniform(seed, stream, key, index, lane + k) * 2.0**53).astype(np.uint64)
        for k in range(3)
    )
    hi = (a << np.uint64(11)) | (c & np.uint64(0x7FF))
    lo = (b << np.uint64(11)) | ((c >> np.uint64(11)) & np.uint64(0x7FF))
    return hi, lo


_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _nibbles(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The 32 hex digits (most significant first) of 128-bit values, as uint8 0-15."""
    raw = np.empty((hi.size, 2), dtype=">u8")
    raw[:, 0], raw[:, 1] = hi, lo
    octets = raw.view(np.uint8).reshape(-1, 16)
    out = np.empty((hi.size, 32), dtype=np.uint8)
    out[:, 0::2] = octets >> 4
    out[:, 1::2] = octets & 15
    return out


def uuid4_array(hi: np.ndarray, lo: np.ndarray, upper: bool | np.ndarray = False) -> pa.Array:
    """uuid4-shaped strings (version 4, RFC 4122 variant) from 128-bit values, as Arrow."""
    nib = _nibbles(hi, lo)
    nib[:, 12] = 4
    nib[:, 16] = 8 | (nib[:, 16] & 3)
    upper = np.asarray(upper)
    if upper.ndim == 0:
        chars = (_HEX_UPPER if upper else _HEX_LOWER)[nib]
    else:
        chars = np.where(upper[:, None], _HEX_UPPER[nib], _HEX_LOWER[nib])
    out = np.full((nib.shape[0], 36), ord("-"), dtype=np.uint8)
    cols = [c for c in range(36) if c not in (8, 13, 18, 23)]
    out[:, cols] = chars
    return fixed_width_strings(out)


def hex32_array(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    return fixed_width_strings(_HEX_LOWER[_nibbles(hi, lo)])


def fixed_width_strings(chars: np.ndarray) -> pa.Array:
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    )


def make_devices(seed: int, keys: np.ndarray) -> Devices:
    """Attributes of the devices with these keys (slot = key % 4; slot 0 runs the app)."""
    keys = np.unique(keys)
    slot = keys % 4
    is_app = slot == APP_SLOT
    u_model = counter_uniform(seed, Stream.WEB_DEVICES, keys, 0, 0)
    app_w = np.cumsum([d[4] for d in APP_DEVICES])
    first_w = np.cumsum([b[1] for b in BROWSERS])
    second_w = np.cumsum([b[2] for b in BROWSERS])
    app_model = np.searchsorted(app_w / app_w[-1], u_model, side="right")
    web_model = np.where(
        slot == WEB2_SLOT,
        np.searchsorted(second_w / second_w[-1], u_model, side="right"),
        np.searchsorted(first_w / first_w[-1], u_model, side="right"),
    )
    model = np.where(is_app, np.minimum(app_model, len(APP_DEVICES) - 1), web_model)
    model = np.minimum(model, np.where(is_app, len(APP_DEVICES), len(BROWSERS)) - 1)
    is_ios = is_app & np.array([d[0] == "iOS" for d in APP_DEVICES])[np.where(is_app, model, 0)]
    n_versions = np.where(is_ios, len(OS_VERSIONS["iOS"]), len(OS_VERSIONS["Android"]))
    os_version = np.minimum(
        (counter_uniform(seed, Stream.WEB_DEVICES, keys, 0, 1) * n_versions).astype(np.int64),
        n_versions - 1,
    )
    hi, lo = keyed_128(seed, Stream.WEB_DEVICES, keys, 1, 0)
    d_hi, d_lo = keyed_128(seed, Stream.WEB_DEVICES, keys, 2, 0)
    g_hi, g_lo = keyed_128(seed, Stream.WEB_DEVICES, keys, 3, 0)
    client = 100_000_000 + (
        counter_uniform(seed, Stream.WEB_DEVICES, keys, 4, 0) * 1_900_000_000
    ).astype(np.int64)
    return Devices(
        key=keys,
        is_app=is_app,
        model=model.astype(np.int64),
        os_version=os_version,
        anonymous_id=uuid4_array(hi, lo),
        device_id=uuid4_array(d_hi, d_lo, upper=is_ios),
        app_instance_id=hex32_array(g_hi, g_lo),
        client_number=client,
    )

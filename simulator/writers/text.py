"""Identifiers and JSON text built column-wise: many rows at once, no Python loop per row.

The landing streams are millions of lines; building each with an f-string would dominate a
build, so lines are glued from fixed-width character matrices and Arrow string columns.
"""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator.model.rand import Stream, counter_uniform

_CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_U64 = np.uint64


def random_bits(seed: int, stream: Stream, key: np.ndarray, index, lane: int) -> np.ndarray:
    """64 keyed random bits per element (two counter draws of 53 bits each, mixed)."""
    a = (counter_uniform(seed, stream, key, index, lane) * 2.0**53).astype(_U64)
    b = (counter_uniform(seed, stream, key, index, lane + 1) * 2.0**53).astype(_U64)
    return (a << _U64(11)) ^ b


def strings(chars: np.ndarray) -> pa.Array:
    """An (n, width) uint8 matrix of ASCII codes as an Arrow string array."""
    width = chars.shape[1]
    return pa.array(np.ascontiguousarray(chars).view(f"S{width}").ravel()).cast(pa.string())


def fixed(n: int, *parts: np.ndarray | str) -> np.ndarray:
    """Fixed-width text: (n, w) character matrices and constant strings, side by side."""
    return np.concatenate(
        [
            np.broadcast_to(np.frombuffer(p.encode(), dtype=np.uint8), (n, len(p)))
            if isinstance(p, str)
            else p
            for p in parts
        ],
        axis=1,
    )


_DIGITS4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint16)


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers, as an (n, width) matrix."""
    values = np.asarray(values, dtype=np.int64)
    groups = []
    for _ in range(-(-width // 4)):  # four digits at a time, from a lookup table
        values, group = np.divmod(values, 10_000)
        groups.append(_DIGITS4[group])
    return np.concatenate(groups[::-1], axis=1)[:, -width:]


def hex_chars(values: np.ndarray, n_chars: int) -> np.ndarray:
    """Lower-case hex digits of the low 4 * n_chars bits (n_chars even), as an (n, n_chars)
    matrix."""
    octets = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    return _HEX_PAIRS[octets].view(np.uint8).reshape(-1, 16)[:, 16 - n_chars :]


def ulid_chars(ms: np.ndarray, hi_bits: np.ndarray, lo_bits: np.ndarray) -> np.ndarray:
    """ULIDs (Crockford base32, 26 characters): 48 bits of milliseconds, 80 random bits."""
    hi = (ms.astype(_U64) << _U64(16)) | (hi_bits & _U64(0xFFFF))
    lo = lo_bits.astype(_U64)
    chars = np.empty((hi.size, 26), dtype=np.uint8)
    for k in range(26):
        shift = 125 - 5 * k  # lowest bit of the k-th 5-bit group of the 130-bit number
        if shift >= 64:
            group = hi >> _U64(shift - 64)
        elif shift + 5 <= 64:
            group = lo >> _U64(shift)
        else:
            group = (hi << _U64(64 - shift)) | (lo >> _U64(shift))
        chars[:, k] = _CROCKFORD[(group & _U64(31)).astype(np.int64)]
    return chars


def base64_chars(words: list[np.ndarray]) -> np.ndarray:
    """URL-safe base64 of the words' big-endian bytes (3 words: 32 characters)."""
    raw = np.stack([w.astype(">u8") for w in words], axis=1).view(np.uint8)
    encoded = base64.urlsafe_b64encode(raw.tobytes())
    return np.frombuffer(encoded, dtype=np.uint8).reshape(raw.shape[0], -1)


def pieces(index: np.ndarray, texts: list[str], mask: np.ndarray | None = None) -> pa.Array:
    """texts[index] per row as an Arrow string array (null where mask is set)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32), mask=mask), pa.array(texts, pa.string())
    ).cast(pa.string())


def join(*columns: pa.Array) -> pa.Array:
    """Row-wise concatenation; null columns are left out of their row."""
    return pc.binary_join_element_wise(*columns, "", null_handling="skip")

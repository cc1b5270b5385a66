"""The messaging and telemetry streams: deterministic, partitioned by arrival hour, and a build
advanced N days writes exactly the files of a build N days longer."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from datetime import UTC, datetime

import pytest
from ops_helpers import OPS_WORLD, as_of, emit_world, stream_files, stream_lines

from simulator.model.clock import end_of_day_us
from simulator.model.timeline import simulate
from simulator.world import emit_ops as emit

STREAMS = ("messaging", "telemetry")
PATH = re.compile(
    r"^landing/(?P<stream>messaging|telemetry)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"(?P=stream)-(?P<stamp>\d{8}T\d{2})-0000\.ndjson\.gz$"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("ops")
    tl, truth = emit_world(OPS_WORLD, out)
    return out, tl, truth


def test_two_emits_write_identical_bytes(built, tmp_path):
    out, _, truth = built
    _, again = emit_world(OPS_WORLD, tmp_path)
    for stream in STREAMS:
        assert stream_files(tmp_path, stream) == stream_files(out, stream)
    assert json.dumps(again, sort_keys=True) == json.dumps(truth, sort_keys=True)


def test_build_then_advance_equals_a_longer_build(tmp_path):
    advanced, longer = tmp_path / "advanced", tmp_path / "longer"
    emit_world(OPS_WORLD, advanced)
    since = end_of_day_us(as_of(OPS_WORLD))
    for days in range(1, 6):  # five one-day advances, as advance_world would call it
        tl = simulate(OPS_WORLD, as_of(OPS_WORLD, days))
        stepped = emit(tl, advanced, since, end_of_day_us(as_of(OPS_WORLD, days)))
        since = end_of_day_us(as_of(OPS_WORLD, days))
    _, whole = emit_world(dataclasses.replace(OPS_WORLD, days=OPS_WORLD.days + 5), longer)
    for stream in STREAMS:
        files = stream_files(longer, stream)
        assert files and stream_files(advanced, stream) == files
    assert json.dumps(stepped, sort_keys=True) == json.dumps(whole, sort_keys=True)


def test_a_fresh_build_clears_the_streams(built, tmp_path):
    stale = tmp_path / "landing" / "telemetry" / "date=2030-01-01" / "hour=00" / "x.ndjson.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    emit_world(OPS_WORLD, tmp_path)
    assert not stale.exists()
    assert stream_files(tmp_path, "telemetry") == stream_files(built[0], "telemetry")


def test_files_follow_the_landing_layout(built):
    out, _, _ = built
    last = end_of_day_us(as_of(OPS_WORLD)) // 1_000_000
    for stream in STREAMS:
        files = stream_files(out, stream)
        assert len(files) > 40
        for name, data in files.items():
            match = PATH.match(name)
            assert match, name
            assert match["stamp"] == match["date"].replace("-", "") + "T" + match["hour"]
            assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip, mtime 0
            body = gzip.decompress(data)
            assert body.endswith(b"\n") and b"\n\n" not in body
    # Every line arrived in its file's hour, so nothing in it happened after that hour.
    for stream, occurred in (
        ("messaging", lambda e: e["timestamp"]),
        ("telemetry", lambda e: _seconds(e["occurred_at"])),
    ):
        for path, event, _ in stream_lines(out, stream):
            hour = datetime.strptime(path.name.split("-")[1], "%Y%m%dT%H")
            hour_end = hour.replace(tzinfo=UTC).timestamp() + 3600
            assert occurred(event) < hour_end <= last + 1


def test_emit_refuses_bounds_inside_an_hour(built, tmp_path):
    _, tl, _ = built
    with pytest.raises(ValueError, match="last microsecond of an hour"):
        emit(tl, tmp_path, None, end_of_day_us(as_of(OPS_WORLD)) - 1)


def _seconds(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()

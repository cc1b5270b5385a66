"""The event collector as a real process on loopback: a Segment library's events land once and
load into the lake; bad input is refused or kept with its reason; a SIGKILL loses nothing that
was acknowledged."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import duckdb
import pytest

from expectations.promote import promote
from ingestion.collector.settings import hash_write_key
from ingestion.events import events_source
from ingestion.pipelines import landing_pipeline
from orchestration.automation import landing_files
from regulars.privacy import suppression
from regulars.settings import Settings
from tests import processes

CHECKOUT = Path(__file__).resolve().parent.parent
KEYS = {
    "app-ios": "test-key-ios",
    "app-android": "test-key-android",
    "web": "test-key-web",
    "server": "test-key-server",
}
START_SECONDS = 90  # importing dlt and FastAPI on a busy 2-core machine
HTTP_SECONDS = 15


class RunningCollector:
    """`regulars collector` in a subprocess on a free 127.0.0.1 port, in a folder of its own."""

    def __init__(self, root: Path, keys: dict[str, str] = KEYS, **config):
        self.root, self.keys, self.config = root, keys, config
        self.landing = root / "landing"
        self.spool = root / "var" / "collector" / "spool"
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> RunningCollector:
        self.port = free_port()
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR__")}
        env |= {
            "REGULARS_DATA_DIR": str(self.root / "data"),
            "REGULARS_STATE_DIR": str(self.root / "var"),
            "REGULARS_LANDING_URL": str(self.landing),
            # The collector is configured with the keys' hashes; clients send the keys.
            "COLLECTOR__WRITE_KEYS": json.dumps(
                {source: hash_write_key(key) for source, key in self.keys.items()}
            ),
        }
        env |= {f"COLLECTOR__{name.upper()}": str(value) for name, value in self.config.items()}
        with open(self.root / f"collector-{self.starts}.log", "wb") as log:
            self.process = processes.start(
                [sys.executable, "-m", "regulars.cli", "collector", "--port", str(self.port)],
                cwd=CHECKOUT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited at start: {self.log()}")
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise AssertionError(f"collector did not answer /health: {self.log()}")

    def stop(self) -> None:
        """SIGTERM: the collector finishes its requests and publishes every spool."""
        assert processes.stop(self.process, signal.SIGTERM, seconds=60), (
            f"the collector did not stop within 60s of SIGTERM: {self.log()}"
        )

    def kill(self) -> None:
        processes.stop(self.process, signal.SIGKILL, seconds=30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return (self.root / f"collector-{self.starts}.log").read_text(errors="replace")[-3000:]

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url("/metrics"), timeout=HTTP_SECONDS) as response:
            text = response.read().decode()
        return {
            name: float(value)
            for line in text.splitlines()
            if line and not line.startswith("#")
            for name, _, value in [line.rpartition(" ")]
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(
    collector: RunningCollector,
    path: str,
    body,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Message, dict]:
    """(status, headers, JSON body) of one POST; `body` is bytes as is, or JSON-encoded."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} | (headers or {})
    if key is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=HTTP_SECONDS)
    try:
        connection.request("POST", path, data, sent)
        response = connection.getresponse()
        payload = response.read()
        return response.status, response.headers, json.loads(payload) if payload else {}
    finally:
        connection.close()


def stored(root: Path, stream: str) -> list[dict]:
    """Every line of a stream: published files and (complete lines of) open spools."""
    lines = []
    for path in sorted((root / "landing" / stream).rglob("*.ndjson.gz")):
        with gzip.open(path) as handle:
            lines += [json.loads(line) for line in handle]
    for path in sorted((root / "var" / "collector" / "spool").glob(f"{stream}-*.ndjson")):
        data = path.read_bytes()
        lines += [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]
    return lines


def track(message_id: str, **fields) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": message_id,
        "anonymousId": "anon-1",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "properties": {"product_id": "12", "price": 25000},
        "context": {"library": {"name": "test", "version": "0"}},
    } | fields


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One collector for the tests that only send requests and read what it stored."""
    collector = RunningCollector(tmp_path_factory.mktemp("collector")).start()
    yield collector
    collector.stop()


def test_segment_library_events_land_once_and_load_into_the_lake(
    regulars_env: Settings, tmp_path: Path
):
    from segment.analytics import Client

    collector = RunningCollector(tmp_path).start()
    errors: list = []
    sent: dict[str, str] = {}  # messageId -> source
    try:
        server = Client(
            KEYS["server"],
            host=collector.url(""),
            upload_size=10,
            max_retries=2,
            timeout=HTTP_SECONDS,
            on_error=lambda error, batch: errors.append(error),
        )
        web = Client(
            KEYS["web"],
            host=collector.url(""),
            gzip=True,
            upload_size=7,
            max_retries=2,
            timeout=HTTP_SECONDS,
            on_error=lambda error, batch: errors.append(error),
        )
        # A userId is the ordering platform's customer id (the gate holds any other).
        calls = [
            server.identify("1001", {"email": "a@example.com"}),
            server.group("1001", "store-3", {"name": "Kedai Menteng"}),
            server.alias("anon-9", "1001"),
            server.page("1001", name="Menu", properties={"path": "/menu"}),
            server.screen("1001", name="Home"),
            *(server.track("1001", "Order Completed", {"order_id": str(n)}) for n in range(25)),
        ]
        sent |= {msg["messageId"]: "server" for ok, msg in calls if ok}
        calls = [
            web.track(anonymous_id=f"anon-{n}", event="Product Viewed", properties={"n": n})
            for n in range(20)
        ]
        sent |= {msg["messageId"]: "web" for ok, msg in calls if ok}
        for client in (server, web):
            client.flush()
            client.join()
    finally:
        collector.stop()  # publishes every spool
    assert not errors
    assert len(sent) == 50

    events = stored(tmp_path, "events")
    assert Counter(event["messageId"] for event in events) == Counter(set(sent))  # each once
    assert {e["messageId"]: e["context"]["source"] for e in events} == sent
    assert not stored(tmp_path, "_failed")
    assert not list(collector.spool.glob("*.ndjson"))
    published = {Path(path).name for _, path in landing_files(str(collector.landing), "events")}
    on_disk = {path.name for path in (collector.landing / "events").rglob("*") if path.is_file()}
    assert published == on_disk  # the sensor sees every file, and nothing half-written
    assert all(name.startswith("events-") and name.endswith(".ndjson.gz") for name in published)

    landing_pipeline("events", regulars_env).run(events_source(bucket_url=str(collector.landing)))
    promote("events", regulars_env)
    with duckdb.connect(str(regulars_env.warehouse_path), read_only=True) as connection:
        landed = connection.execute("select count(*) from landing_events.messages").fetchone()[0]
        lake = dict(
            connection.execute(
                "select message_id, context->>'source' from raw_events.messages"
            ).fetchall()
        )
        audit = connection.execute(
            "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
            "from raw_events.gate_audit"
        ).fetchone()
    assert landed == 50
    assert audit == (50, 50, 0)
    assert lake == sent


def test_no_key_or_a_wrong_key_is_401_and_nothing_is_stored(shared: RunningCollector):
    batch = {"batch": [track("unauth-1")]}
    attempts = [
        post(shared, "/v1/batch", batch),
        post(shared, "/v1/batch", batch, key="not-a-key"),
        post(shared, "/v1/batch", batch | {"writeKey": "not-a-key"}),
        post(shared, "/v1/track", track("unauth-1"), headers={"Authorization": "Bearer x"}),
        post(shared, "/v1/track", b"{not json", headers={}),
    ]
    assert [status for status, _, _ in attempts] == [401] * 5
    assert all(body["code"] == "unauthorized" for _, _, body in attempts)
    assert post(shared, "/v1/batch", batch | {"writeKey": KEYS["web"]})[0] == 200
    ids = [e["messageId"] for e in stored(shared.root, "events")]
    assert ids.count("unauth-1") == 1  # only the authenticated request's


def test_limits_are_refused_whole_and_named(shared: RunningCollector):
    key = KEYS["app-ios"]
    big = "x" * (33 * 1024)
    status, _, body = post(shared, "/v1/track", track("limit-1", properties={"blob": big}), key)
    assert (status, body["limit"], body["limit_bytes"]) == (413, "event_max_bytes", 32768)

    batch = {"batch": [track("limit-2"), track("limit-3", properties={"blob": big})]}
    status, _, body = post(shared, "/v1/batch", batch, key)
    assert (status, body["code"], body["limit"], body["index"]) == (
        400,
        "event_too_large",
        "event_max_bytes",
        1,
    )

    many = {"batch": [track(f"limit-many-{n}", properties={"pad": "y" * 2000}) for n in range(300)]}
    status, _, body = post(shared, "/v1/batch", many, key)
    assert (status, body["limit"], body["limit_bytes"]) == (413, "batch_max_bytes", 512000)
    packed = gzip.compress(json.dumps(many).encode())  # small on the wire, too big unpacked
    assert len(packed) < 512000
    status, _, body = post(shared, "/v1/batch", packed, key, {"Content-Encoding": "gzip"})
    assert (status, body["limit"]) == (413, "batch_max_bytes")

    ids = {e["messageId"] for e in stored(shared.root, "events")}
    assert not {i for i in ids if i.startswith("limit-")}


def test_malformed_requests_are_400_and_bad_events_are_kept_with_their_reason(
    shared: RunningCollector,
):
    key = KEYS["app-android"]
    gzipped = {"Content-Encoding": "gzip"}
    whole = {
        "malformed_json": post(shared, "/v1/batch", b'{"batch": [', key),
        "invalid_body": post(shared, "/v1/batch", [track("m-0")], key),
        "invalid_batch": post(shared, "/v1/batch", {"batch": {"not": "a list"}}, key),
        "malformed_gzip": post(shared, "/v1/batch", b"\x1f\x8bnope", key, gzipped),
    }
    for code, (status, _, body) in whole.items():
        assert (status, body["code"]) == (400, code)

    batch = [
        track("m-good-1"),
        track("m-no-ids", anonymousId=None),
        track("m-user-object", userId={"id": 1}),
        track("m-properties-list", properties=[1, 2]),
        track("m-unknown-type", type="purchase"),
        track("m-no-event", event=""),
        track("m-bad-time", timestamp="yesterday-ish"),
        "not an object",
        track("m-good-2", anonymousId=None, userId=42),  # an integer id is kept, as text
    ]
    status, _, body = post(shared, "/v1/batch", {"batch": batch}, key)
    assert (status, body) == (200, {"success": True})
    single = {"writeKey": key, "messageId": "m-single-no-ids", "event": "Signed Up"}
    assert post(shared, "/v1/track", single)[0] == 200

    good = {e["messageId"]: e for e in stored(shared.root, "events") if e["messageId"][:2] == "m-"}
    assert set(good) == {"m-good-1", "m-good-2"}
    assert good["m-good-2"]["userId"] == "42"
    failed = {
        f["message"]["messageId"] if isinstance(f["message"], dict) else f["message"]: f
        for f in stored(shared.root, "_failed")
        if f["source"] == "app-android"
    }
    assert {k: (f["code"], f["index"]) for k, f in failed.items()} == {
        "m-no-ids": ("missing_identity", 1),
        "m-user-object": ("wrong_type", 2),
        "m-properties-list": ("wrong_type", 3),
        "m-unknown-type": ("unknown_type", 4),
        "m-no-event": ("missing_event", 5),
        "m-bad-time": ("bad_timestamp", 6),
        "not an object": ("not_an_object", 7),
        "m-single-no-ids": ("missing_identity", 0),
    }
    assert not [f for f in failed.values() if "writeKey" in str(f)]  # the key is never stored
    assert "userId must be a string" in failed["m-user-object"]["reason"]
    assert failed["m-bad-time"]["message"]["timestamp"] == "yesterday-ish"  # as it came


def test_timestamp_is_corrected_for_the_device_clock_and_stamps_are_the_servers(
    shared: RunningCollector,
):
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=3)  # the phone's clock is 3 hours fast
    sent_at = ahead.isoformat(timespec="milliseconds")
    happened = (ahead - timedelta(seconds=40)).isoformat(timespec="milliseconds")
    body = {
        "batch": [
            track("skew-1", timestamp=happened),
            track("skew-no-time", timestamp=None),
            {k: v for k, v in track("", timestamp=happened).items() if k != "messageId"},
        ],
        "sentAt": sent_at,
        "writeKey": KEYS["app-ios"],
    }
    assert post(shared, "/v1/batch", body)[0] == 200
    assert post(shared, "/v1/batch", body | {"sentAt": sent_at})[0] == 200  # a retry
    single = track("skew-single", timestamp=happened, sentAt=sent_at, writeKey=KEYS["web"])
    assert post(shared, "/v1/screen", single | {"name": "Home"})[0] == 200

    events = stored(shared.root, "events")
    by_id = {e["messageId"]: e for e in events}
    skewed = by_id["skew-1"]
    # timestamp = receivedAt - (sentAt - originalTimestamp): 40 s before it reached us.
    assert ms(skewed["receivedAt"]) - ms(skewed["timestamp"]) == 40_000
    assert (skewed["originalTimestamp"], skewed["sentAt"]) == (happened, sent_at)
    assert abs(ms(skewed["receivedAt"]) - now.timestamp() * 1000) < 60_000
    assert by_id["skew-no-time"]["timestamp"] == by_id["skew-no-time"]["receivedAt"]
    assert "originalTimestamp" not in by_id["skew-no-time"]
    generated = [i for i in by_id if i.startswith("collector-")]
    assert len(generated) == 1  # the same event sent twice without an id gets the same id
    assert [e["messageId"] for e in events].count(generated[0]) == 2
    screen = by_id["skew-single"]
    assert (screen["type"], screen["context"]["source"]) == ("screen", "web")
    assert all("writeKey" not in e for e in events)


def test_accepted_plus_failed_is_received_on_metrics(shared: RunningCollector):
    # Its own traffic first: xdist may run this module's tests on other workers, each with
    # its own `shared` collector, so nothing else is known to have reached this one.
    for source in ("web", "server"):
        batch = [track(f"metrics-{source}-{n}") for n in range(3)] + [
            track(f"metrics-{source}-no-ids", anonymousId=None)
        ]
        assert post(shared, "/v1/batch", {"batch": batch}, KEYS[source])[0] == 200
    metrics = shared.metrics()
    events = Counter(e["context"]["source"] for e in stored(shared.root, "events"))
    failed = Counter(f["source"] for f in stored(shared.root, "_failed"))
    for source in KEYS:
        received = metrics.get(f'collector_events_received_total{{source="{source}"}}', 0.0)
        accepted = metrics.get(f'collector_events_accepted_total{{source="{source}"}}', 0.0)
        failures = sum(
            value
            for name, value in metrics.items()
            if name.startswith("collector_events_failed_total{") and f'source="{source}"' in name
        )
        assert received == accepted + failures
        assert (accepted, failures) == (events[source], failed[source])
    assert events["web"] >= 3 and events["server"] >= 3
    assert failed["web"] >= 1 and failed["server"] >= 1


def test_over_the_rate_limit_is_429_with_retry_after(tmp_path: Path):
    collector = RunningCollector(tmp_path, rate_limit_per_second=0.5, rate_limit_burst=2).start()
    try:
        answers = [
            post(collector, "/v1/track", track(f"rate-{n}"), KEYS["server"]) for n in range(3)
        ]
        assert [status for status, _, _ in answers] == [200, 200, 429]
        _, headers, body = answers[2]
        assert (body["code"], body["limit"]) == ("rate_limited", "rate_limit_per_second")
        wait = int(headers["Retry-After"])
        assert 1 <= wait <= 2
        assert post(collector, "/v1/track", track("rate-web"), KEYS["web"])[0] == 200  # per key
        time.sleep(wait)
        assert post(collector, "/v1/track", track("rate-3"), KEYS["server"])[0] == 200
    finally:
        collector.stop()
    ids = sorted(e["messageId"] for e in stored(tmp_path, "events"))
    assert ids == ["rate-0", "rate-1", "rate-3", "rate-web"]


def test_a_forgotten_guests_events_are_acknowledged_and_never_stored(tmp_path: Path):
    hash_list = tmp_path / "var" / "privacy" / "suppressed_hashes.json"
    hash_list.parent.mkdir(parents=True)
    hash_list.write_text(
        json.dumps(
            {
                "customer_id": [suppression.hash_identifier("customer_id", "347")],
                "email": [suppression.hash_identifier("email", "citra@example.com")],
            }
        )
    )
    collector = RunningCollector(tmp_path).start()
    try:
        batch = {
            "batch": [
                track("theirs", userId="347"),
                track("by-email", type="identify", traits={"email": "Citra@Example.com"}),
                track("another-guest", userId="34"),
            ]
        }
        assert post(collector, "/v1/batch", batch, KEYS["web"])[0] == 200
        assert collector.metrics()['collector_events_suppressed_total{source="web"}'] == 2
    finally:
        collector.stop()
    assert [event["messageId"] for event in stored(tmp_path, "events")] == ["another-guest"]
    assert stored(tmp_path, "_failed") == []


def test_sigkill_mid_stream_loses_no_acknowledged_event(tmp_path: Path):
    # Small, short-lived spools, so the kill finds some published and some open.
    collector = RunningCollector(tmp_path, rotate_seconds=0.3, rotate_bytes=40_000).start()
    acknowledged: list[str] = []
    attempted: list[str] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=HTTP_SECONDS)
        auth = "Basic " + base64.b64encode(f"{KEYS['app-ios']}:".encode()).decode()
        for number in range(10_000):
            ids = [f"kill-{worker}-{number}-{i}" for i in range(20)]
            body = json.dumps({"batch": [track(i) for i in ids]})
            with lock:
                attempted.extend(ids)
            try:
                connection.request("POST", "/v1/batch", body, {"Authorization": auth})
                response = connection.getresponse()
                response.read()
            except OSError:
                return  # the collector is gone: this batch was never acknowledged
            if response.status == 200:
                with lock:
                    acknowledged.extend(ids)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 150 * 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    collector.kill()
    for worker in workers:
        worker.join(timeout=HTTP_SECONDS + 5)
    assert len(acknowledged) >= 150 * 20

    collector.start()  # recovers the spools the kill left
    collector.stop()

    landed = Counter(e["messageId"] for e in stored(tmp_path, "events"))
    assert not [i for i in acknowledged if landed[i] != 1], "acknowledged events lost or doubled"
    assert max(landed.values()) == 1
    assert set(landed) <= set(attempted)
    assert all(f["code"] == "torn_line" for f in stored(tmp_path, "_failed"))
    assert not list(collector.spool.glob("*.ndjson"))


def test_start_up_publishes_a_crashed_spool_and_fails_its_torn_line(tmp_path: Path):
    spool = tmp_path / "var" / "collector" / "spool"
    spool.mkdir(parents=True)
    lines = [json.dumps(track(f"crash-{n}")) + "\n" for n in range(3)]
    torn = json.dumps(track("crash-torn"))[:57]
    (spool / "events-20260102T03-0007.ndjson").write_text("".join(lines) + torn)

    collector = RunningCollector(tmp_path).start()
    collector.stop()

    published = (
        tmp_path / "landing/events/date=2026-01-02/hour=03/events-20260102T03-0007.ndjson.gz"
    )
    with gzip.open(published, "rt") as handle:
        assert handle.readlines() == lines
    (failure,) = stored(tmp_path, "_failed")
    assert (failure["code"], failure["line"], failure["spool"]) == (
        "torn_line",
        torn,
        "events-20260102T03-0007.ndjson",
    )
    assert not list(spool.glob("*.ndjson"))


def test_a_text_user_id_from_the_segment_library_is_held_and_the_marts_still_build(
    materialized_world: Settings, tmp_path: Path
):
    """Issue 17: a `userId` of text passed the gate and stopped every mart at the next `dbt
    build` (`Could not convert string 'guest-abc' to INT64` in stg_events__messages). Sent
    through the Segment library to the collector, it is held with `user_id` named; a guest's
    customer id and a page call's category reach staging; the events-fed models build."""
    from segment.analytics import Client

    from regulars.settings import load_chain
    from tests.conftest import run_dbt

    warehouse = materialized_world.warehouse_path
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        (customer_id,) = connection.execute(
            "select min(customer_id) from raw_ordering.customers"
        ).fetchone()
    collector = RunningCollector(tmp_path / "collector")
    collector.landing = Path(materialized_world.landing_url)  # the world's landing zone
    collector.root.mkdir()
    errors: list = []
    try:
        collector.start()
        app = Client(
            KEYS["app-android"],
            host=collector.url(""),
            max_retries=2,
            timeout=HTTP_SECONDS,
            on_error=lambda error, batch: errors.append(error),
        )
        calls = {
            "guest": app.track("guest-abc", "Product Viewed", {"product_id": "12"}),
            "customer": app.track(str(customer_id), "Product Viewed", {"product_id": "12"}),
            "page": app.page(str(customer_id), category="Menu", name="Nasi Goreng"),
        }
        app.flush()
        app.join()
    finally:
        collector.stop()
    assert not errors
    ids = {name: message["messageId"] for name, (ok, message) in calls.items() if ok}
    assert len(ids) == 3

    landing_pipeline("events", materialized_world).run(
        events_source(bucket_url=materialized_world.landing_url)
    )
    promote("events", materialized_world)
    run_dbt(
        warehouse,
        tmp_path / "target",
        "build",
        *("--select", "stg_events__messages+", "--exclude", "tag:analytics"),
        *("--vars", json.dumps(load_chain().dbt_vars())),
    )

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        held = connection.execute(
            "select failed_expectations from raw_events.quarantine_messages "
            "where primary_key_value = ?",
            [ids["guest"]],
        ).fetchall()
        staged = connection.execute(
            "select message_id, customer_id, page_name, page_category from "
            "staging.stg_events__messages where message_id in (?, ?, ?) order by 3 nulls first",
            [ids["guest"], ids["customer"], ids["page"]],
        ).fetchall()
    ((reasons,),) = held
    assert "user_id" in reasons
    assert staged == [
        (ids["customer"], customer_id, None, None),
        (ids["page"], customer_id, "Nasi Goreng", "Menu"),
    ]

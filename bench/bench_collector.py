"""Collector throughput and latency: a load generator on loopback against the real collector.

    .venv/bin/python bench/bench_collector.py --connections 32,4 --batches 3000

Starts `regulars collector` in a subprocess on a free 127.0.0.1 port (temporary landing zone and
spool), then a load generator in a second process: keep-alive HTTP/1.1 connections (raw asyncio
streams), each sending its next batch when the previous one is answered, a bounded number of
batches in a bounded time per phase. Phases: batches of 1 event, then of 100 events (Segment track
events of about 600 bytes, like the simulator's). Prints acknowledged events per second and
p50 / p99 latency per phase; the goal on 2 cores is at least 20,000 events/s with batches of 100
and p99 under 50 ms.

A 200 means the batch is on disk (a synced write). The baseline, measured in the same run on the
same disk: one 60 KB write + fdatasync at a time, what the collector could acknowledge per second
with one sync per request; the ratio shows what group commit adds. The server's CPU share, its CPU
per request and the time its threads waited for a core tell how much of the machine it had. At
the end the collector is stopped (it publishes its spools) and the events in the landing zone are
counted: they must equal the events acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from ingestion.collector.settings import hash_write_key

WRITE_KEY = "bench-server-key"
CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connections",
        default="32,4",
        help="keep-alive connections for batches of 1 and of 100: single events need many in "
        "flight to share a sync; batches of 100 fill the CPU with few (and queue behind it "
        "with more, which only adds latency)",
    )
    parser.add_argument("--batches", type=int, default=3000, help="per phase, at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase, at most")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the load generator's own process
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(load(**json.loads(args.load)))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as scratch_name:
        run_bench(Path(scratch_name), args)


def run_bench(scratch: Path, args: argparse.Namespace) -> None:
    print(f"Cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (shared machine).")
    baseline = fsync_baseline(scratch)
    print(f"Baseline, one 60 KB write + fdatasync at a time: {baseline:,.0f} syncs/s.")
    port = free_port()
    server = start_collector(scratch, port)
    results = []
    try:
        connections = [int(n) for n in args.connections.split(",")]
        for batch_size, phase_connections in zip((1, 100), connections, strict=True):
            spec = {
                "port": port,
                "batch_size": batch_size,
                "connections": phase_connections,
                "batches": args.batches,
                "seconds": args.seconds,
                "run": f"b{batch_size}",
            }
            cpu_before, metrics_before = cpu_seconds(server.pid), scrape(port)
            waited_before = run_queue_seconds(server.pid)
            out = subprocess.run(
                [sys.executable, __file__, "--load", json.dumps(spec)],
                capture_output=True,
                text=True,
                timeout=args.seconds + 120,
                check=True,
                cwd=CHECKOUT,
            )
            metrics = diff(scrape(port), metrics_before)
            results.append(
                json.loads(out.stdout)
                | {
                    "server_cpu": cpu_seconds(server.pid) - cpu_before,
                    "server_waited": run_queue_seconds(server.pid) - waited_before,
                    "server_p99_ms": 1000 * quantile(metrics, "collector_request_seconds", 0.99),
                    "syncs": metrics.get("collector_commit_requests_count", 0.0),
                    "sync_p99_ms": 1000 * quantile(metrics, "collector_commit_seconds", 0.99),
                }
            )
    finally:
        server.send_signal(signal.SIGTERM)  # a clean stop publishes every spool
        server.wait(timeout=60)
    landed = 0
    for path in (scratch / "landing" / "events").rglob("*.ndjson.gz"):
        with gzip.open(path) as lines:
            landed += sum(1 for _ in lines)

    print(f"\n{'batch':>5} {'conns':>5} {'requests':>8} {'events':>8} {'seconds':>7} "
          f"{'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'x 1 sync/req':>12} "
          f"{'req/sync':>8} {'sync p99':>8} {'server p99':>10} {'server CPU':>10} "
          f"{'CPU ms/req':>10} {'waited for a core':>17}")  # fmt: skip
    for r in results:
        ceiling = baseline * r["batch_size"]
        print(
            f"{r['batch_size']:>5} {r['connections']:>5} {r['requests']:>8,} {r['events']:>8,} "
            f"{r['seconds']:>7.1f} {r['events_per_second']:>9,.0f} {r['p50_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {r['events_per_second'] / ceiling:>11.2f}x "
            f"{r['requests'] / max(r['syncs'], 1):>8.1f} {r['sync_p99_ms']:>6.0f}ms "
            f"{r['server_p99_ms']:>8.0f}ms {r['server_cpu'] / r['seconds']:>10.0%} "
            f"{1000 * r['server_cpu'] / max(r['requests'], 1):>10.2f} "
            f"{r['server_waited'] / r['seconds']:>17.0%}"
        )
    print(
        "(p50/p99: the client's, send to answer; sync p99 and server p99: upper bounds of the "
        "collector's histogram buckets)"
    )
    acknowledged = sum(r["events"] for r in results)
    print(f"Landing zone after the stop: {landed:,} events; acknowledged: {acknowledged:,}.")
    failures = [r for r in results if r["errors"]]
    if landed != acknowledged or failures:
        sys.exit(f"Mismatch or errors: {failures}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a core (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            continue
    return total / 1e9


def fsync_baseline(scratch: Path, rounds: int = 100) -> float:
    path = scratch / "fsync-baseline.bin"
    payload = os.urandom(60_000)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.perf_counter()
        for _ in range(rounds):
            os.write(fd, payload)
            os.fdatasync(fd)
        return rounds / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


def start_collector(scratch: Path, port: int) -> subprocess.Popen:
    env = os.environ | {
        "REGULARS_DATA_DIR": str(scratch / "data"),
        "REGULARS_STATE_DIR": str(scratch / "var"),
        "REGULARS_LANDING_URL": str(scratch / "landing"),
        "COLLECTOR__WRITE_KEYS": json.dumps({"server": hash_write_key(WRITE_KEY)}),
        # The bench measures the collector, not its per-source limit.
        "COLLECTOR__RATE_LIMIT_PER_SECOND": "1000000",
        "COLLECTOR__RATE_LIMIT_BURST": "1000000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "regulars.cli", "collector", "--port", str(port)],
        cwd=CHECKOUT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                sys.exit("The collector did not start.")
            time.sleep(0.2)
    server.kill()
    sys.exit("The collector did not answer /health within 60 s.")


def scrape(port: int) -> dict[str, float]:
    """The collector's /metrics as {series: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


def quantile(metrics: dict[str, float], histogram: str, q: float) -> float:
    """The upper bound of the bucket holding the q-quantile (all label sets summed)."""
    buckets: dict[float, float] = {}
    for name, value in metrics.items():
        if name.startswith(f"{histogram}_bucket{{") and 'le="+Inf"' not in name:
            bound = float(name.split('le="', 1)[1].split('"', 1)[0])
            buckets[bound] = buckets.get(bound, 0.0) + value
    total = sum(v for n, v in metrics.items() if n.startswith(f"{histogram}_count"))
    for bound in sorted(buckets):
        if total and buckets[bound] >= q * total:
            return bound
    return float("inf")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the load generator (its own process) ----------------------------------------------------


def event(run: str, n: int) -> dict:
    """A track event shaped like the simulator's (about 600 bytes)."""
    return {
        "type": "track",
        "event": "Product Added",
        "messageId": f"{run}-{n}",
        "anonymousId": "3f1c9a52-8e0b-4c1d-9a37-6b2e0f4d8c11",
        "userId": f"guest-{n % 5000}",
        "timestamp": "2026-01-01T10:00:00.000Z",
        "properties": {
            "cart_id": "c-77f0",
            "category": "Mains",
            "currency": "IDR",
            "name": "Nasi Goreng Kampung",
            "price": 38000,
            "product_id": "123",
            "quantity": 2,
            "sku": "MN-123",
        },
        "context": {
            "app": {"build": "3039", "name": "Kedai Nusantara", "version": "4.3.0"},
            "device": {"manufacturer": "OPPO", "model": "CPH2591", "type": "android"},
            "ip": "182.253.152.141",
            "library": {"name": "analytics-kotlin", "version": "1.16.3"},
            "locale": "id-ID",
            "os": {"name": "Android", "version": "13"},
            "timezone": "Asia/Jakarta",
        },
    }


def request_bytes(port: int, body: bytes) -> bytes:
    import base64

    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def load(
    port: int, batch_size: int, connections: int, batches: int, seconds: float, run: str
) -> dict:
    """Closed loop: each connection sends its next batch once the last one is answered."""
    next_batch = iter(range(batches))
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    # Bodies are spliced from one serialised event around its messageId, so the generator spends
    # its (shared) CPU on sending rather than on building JSON.
    before, after = orjson.dumps(event(run, 0)).split(f'"{run}-0"'.encode())
    tail = b'],"sentAt":"2026-01-01T10:00:01.000Z"}'

    def body(number: int) -> bytes:
        first = number * batch_size
        ids = (f'"{run}-{first + i}"'.encode() for i in range(batch_size))
        return b'{"batch":[' + b",".join(before + id_ + after for id_ in ids) + tail

    async def connection() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = 0
        try:
            for number in next_batch:
                if time.monotonic() > deadline:
                    break
                request = request_bytes(port, body(number))
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(f"HTTP {status}")
                    continue
                sent += batch_size
        finally:
            writer.close()
        return sent

    started = time.perf_counter()
    events = sum(await asyncio.gather(*(connection() for _ in range(connections))))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if latencies else [0] * 99
    return {
        "batch_size": batch_size,
        "connections": connections,
        "requests": len(latencies),
        "events": events,
        "seconds": elapsed,
        "events_per_second": events / elapsed,
        "p50_ms": 1000 * cuts[49],
        "p99_ms": 1000 * cuts[98],
        "errors": errors[:5],
    }


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return status


if __name__ == "__main__":
    main()

"""Serve the fakes over HTTP on 127.0.0.1: `FakeServer` for tests (a background thread, an
ephemeral port), `main` for the command line. Both fakes can share one server: GA4 answers
`/v1beta/...`, Meta answers `/v{N}.0/act_...` and `/v{N}.0/<object id>...`, and `/_fake/...`
is the control API (faults, request log, today)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.fakes import ga4, meta
from simulator.fakes.common import Request, Response

HOST = "127.0.0.1"
FAKES = ("ga4", "meta")


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            host=self.headers.get("Host") or f"{HOST}:{self.server.server_address[1]}",
        )
        response = self.server.owner.dispatch(request)
        payload = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the request log
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeServer


class FakeServer:
    """The fakes on 127.0.0.1, served from a background thread while the context is open.

    >>> with FakeServer("data") as fake:            # doctest: +SKIP
    ...     fake.ga4.faults.add("quota", count=1)   # the next runReport answers 429
    ...     requests.post(f"{fake.base_url}/v1beta/properties/123456789:runReport", ...)
    """

    def __init__(
        self,
        data_dir: Path | str,
        which: Iterable[str] = FAKES,
        *,
        port: int = 0,
        today: date | None = None,
        property_id: str = ga4.DEFAULT_PROPERTY_ID,
        ga4_token: str = ga4.DEFAULT_TOKEN,
        meta_token: str = meta.DEFAULT_TOKEN,
    ):
        which = tuple(which)
        for name in which:
            if name not in FAKES:
                raise ValueError(f"unknown fake {name!r}; choose from {', '.join(FAKES)}")
        self.ga4 = (
            ga4.GA4Fake(data_dir, property_id=property_id, token=ga4_token, today=today)
            if "ga4" in which
            else None
        )
        self.meta = (
            meta.MetaFake(data_dir, token=meta_token, today=today) if "meta" in which else None
        )
        self.port = port
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def fakes(self) -> dict[str, Any]:
        return {f.name: f for f in (self.ga4, self.meta) if f is not None}

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    # --- lifecycle ---------------------------------------------------------------------------

    def bind(self) -> FakeServer:
        """Open the listening socket (so base_url is known) without serving yet."""
        if self._httpd is None:
            self._httpd = _HTTPServer((HOST, self.port), _Handler)
            self._httpd.owner = self
        return self

    def start(self) -> FakeServer:
        """Serve from a daemon thread until stop()."""
        self.bind()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread (the command line) until interrupted."""
        self.bind()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far (control requests excluded): method, path, status."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def request_counts(self) -> Counter[str]:
        """API requests by path."""
        with self._lock:
            return Counter(entry["path"] for entry in self._log)

    def reset_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # --- dispatch ----------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_fake/"):
            try:
                return self._control(request)
            except (ValueError, TypeError) as error:
                return Response(400, {"error": str(error)})
        for fake in self.fakes.values():
            if fake.matches(request.path):
                response = fake.handle(request)
                break
        else:
            response = Response(
                404,
                {"error": {"code": 404, "message": f"No fake serves {request.path}"}},
            )
        with self._lock:
            self._log.append(
                {"method": request.method, "path": request.path, "status": response.status}
            )
        return response

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/_fake/health"):
            return Response(200, {"ok": True, "fakes": sorted(self.fakes)})
        if route == ("GET", "/_fake/requests"):
            return Response(200, {"counts": dict(self.request_counts()), "requests": self.requests})
        if route == ("DELETE", "/_fake/requests"):
            self.reset_requests()
            return Response(200, {"ok": True})
        if route == ("GET", "/_fake/faults"):
            return Response(200, {n: f.faults.pending() for n, f in self.fakes.items()})
        if route == ("DELETE", "/_fake/faults"):
            for fake in self.fakes.values():
                fake.faults.clear()
            return Response(200, {"ok": True})
        if route == ("POST", "/_fake/faults"):
            self.load_faults(_json_body(request))
            return Response(200, {n: f.faults.pending() for n, f in self.fakes.items()})
        if route == ("POST", "/_fake/config"):
            body = _json_body(request)
            if "today" in body:
                today = date.fromisoformat(body["today"]) if body["today"] else None
                for fake in self.fakes.values():
                    fake.fixed_today = today
            return Response(
                200, {n: {"today": f.today().isoformat()} for n, f in self.fakes.items()}
            )
        return Response(404, {"error": f"unknown control endpoint {request.method} {request.path}"})

    def load_faults(self, spec: dict[str, Any]) -> None:
        """`{"ga4": {"quota": 1}, "meta": {"rate_limit": {"count": 2, "after": 1}}}`; with one
        fake served, its faults may also be given flat: `{"quota": 1}`."""
        if spec and set(spec) <= set(FAKES):
            for name, faults in spec.items():
                if name not in self.fakes:
                    raise ValueError(f"{name} is not served here")
                self.fakes[name].faults.load(faults)
        elif len(self.fakes) == 1:
            next(iter(self.fakes.values())).faults.load(spec)
        else:
            raise ValueError('name the fake: {"ga4": {...}} or {"meta": {...}}')


def _json_body(request: Request) -> dict[str, Any]:
    body = json.loads(request.body or b"{}")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.fakes",
        description="Serve local fakes of the GA4 Data API and the Meta Marketing API over a "
        "simulated world's data, on 127.0.0.1.",
    )
    parser.add_argument("fake", choices=[*FAKES, "all"], help="which API to serve")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="the world's folder")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--today", type=date.fromisoformat, help="YYYY-MM-DD; default: the world's as-of date"
    )
    parser.add_argument("--property-id", default=ga4.DEFAULT_PROPERTY_ID)
    parser.add_argument("--ga4-token", default=ga4.DEFAULT_TOKEN)
    parser.add_argument("--meta-token", default=meta.DEFAULT_TOKEN)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="[FAKE:]KIND=N",
        help="fail the next N requests, e.g. ga4:quota=2 or meta:rate_limit=1 (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    which = FAKES if args.fake == "all" else (args.fake,)
    server = FakeServer(
        args.data_dir,
        which,
        port=args.port,
        today=args.today,
        property_id=args.property_id,
        ga4_token=args.ga4_token,
        meta_token=args.meta_token,
    )
    for item in args.fault:
        target, _, rest = item.rpartition(":")
        kind, _, count = rest.partition("=")
        server.load_faults({target: {kind: int(count or 1)}} if target else {kind: int(count or 1)})

    base_url = server.bind().base_url
    print(base_url, flush=True)
    if server.ga4:
        print(
            f"  GA4 Data API:   POST {base_url}/v1beta/properties/{server.ga4.property_id}"
            f":runReport  (Authorization: Bearer {server.ga4.token})",
            file=sys.stderr,
        )
    if server.meta:
        print(
            f"  Meta Graph API: GET  {base_url}/v21.0/act_<account_id>/campaigns|adsets|ads|"
            f"insights  (access_token={server.meta.token})",
            file=sys.stderr,
        )
    print(
        f"  control:        {base_url}/_fake/faults | /_fake/requests | /_fake/config",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()

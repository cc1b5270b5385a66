"""The collector's HTTP service: Segment's Tracking API in front of the durable landing writer.

`create_app(settings)` builds the FastAPI app (the writer opens, and recovers a crashed spool, when
the app starts; it publishes everything when the app stops); `serve(settings)` runs it on uvicorn.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import logging
import math
import time
import zlib
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingestion.collector.messages import (
    MESSAGE_TYPES,
    Normalised,
    RequestRejected,
    check_event_sizes,
    events_of,
    normalise,
    now_ms,
    too_large,
)
from ingestion.collector.metrics import CollectorMetrics
from ingestion.collector.settings import (
    BATCH_MAX_BYTES,
    EVENT_MAX_BYTES,
    FAILED_STREAM,
    STREAM,
    CollectorSettings,
)
from ingestion.collector.writer import HOUR_MS, LandingWriter, WriterClosed
from regulars.privacy.suppression import HashList, suppressed_identifiers

log = logging.getLogger("regulars.collector")

OK_BODY = b'{"success":true}'
# analytics.js posts to one-letter paths; Segment's API serves both spellings, and /v1/import.
SHORT_PATHS = {
    "t": "track",
    "p": "page",
    "i": "identify",
    "s": "screen",
    "a": "alias",
    "g": "group",
}
BATCH_PATHS = ("/v1/b", "/v1/import")


class RateLimiter:
    """A token bucket per source: `rate` requests per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(burst, 1)
        self.buckets: dict[str, tuple[float, float]] = {}

    def wait(self, source: str) -> float:
        """0 if the request may go now (and take its token), else seconds until it may."""
        now = time.monotonic()
        tokens, last = self.buckets.get(source, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.buckets[source] = (tokens - 1.0, now)
            return 0.0
        self.buckets[source] = (tokens, now)
        return (1.0 - tokens) / self.rate


class Collector:
    """What every tracking endpoint does with a request."""

    def __init__(
        self, settings: CollectorSettings, writer: LandingWriter, metrics: CollectorMetrics
    ):
        self.settings, self.writer, self.metrics = settings, writer, metrics
        self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.suppressed = (
            None if settings.suppression_file is None else HashList(settings.suppression_file)
        )

    async def handle(self, request: Request, kind: str | None) -> Response:
        started = time.perf_counter()
        endpoint = "/v1/batch" if kind is None else f"/v1/{kind}"
        try:
            await self._take(request, kind, endpoint)
            response = Response(OK_BODY, media_type="application/json")
        except RequestRejected as rejected:
            self.metrics.requests_rejected.labels(rejected.code).inc()
            response = Response(
                orjson.dumps(rejected.body()),
                status_code=rejected.status,
                media_type="application/json",
                headers=rejected.headers,
            )
        self.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        self.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
        return response

    async def _take(self, request: Request, kind: str | None, endpoint: str) -> None:
        limit = BATCH_MAX_BYTES if kind is None else EVENT_MAX_BYTES
        source = None
        authorization = request.headers.get("authorization")
        if authorization is not None:
            source = self._source_from_header(authorization)
            self._check_rate(source)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(kind)
        body = await _read_body(request, limit, kind)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding == "gzip":
            body = _gunzip(body, limit, kind)
        elif encoding not in ("", "identity"):
            raise RequestRejected(
                415, "unsupported_encoding", f"Content-Encoding {encoding!r}: send gzip or none."
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if source is None:  # the key would have been in the body: cannot tell who sent it
                raise _unauthorized() from None
            raise RequestRejected(
                400, "malformed_json", f"The body is not valid JSON ({error}). Nothing was stored."
            ) from None
        if source is None:
            key = payload.get("writeKey") if isinstance(payload, dict) else None
            source = self.settings.source_for(key) if isinstance(key, str) else None
            if source is None:
                raise _unauthorized()
            self._check_rate(source)
        events, sent_at, context = events_of(payload, kind)
        if kind is None and len(body) > EVENT_MAX_BYTES:
            check_event_sizes(events)
        received_ms = now_ms()
        result = normalise(
            events,
            kind=kind,
            source=source,
            received_ms=received_ms,
            sent_at=sent_at,
            context=context,
            endpoint=endpoint,
        )
        self._drop_suppressed(result, source)
        hour = received_ms // HOUR_MS
        chunks = []
        if result.lines:
            chunks.append((STREAM, hour, b"".join(result.lines), len(result.lines)))
        if result.failed:
            chunks.append((FAILED_STREAM, hour, b"".join(result.failed), len(result.failed)))
        if chunks:
            try:
                await self.writer.append(chunks)
            except WriterClosed as error:
                raise RequestRejected(
                    503, "not_stored", f"Nothing was stored ({error}); send it again."
                ) from None
        self.metrics.events_received.labels(source).inc(result.received)
        self.metrics.events_accepted.labels(source).inc(len(result.lines))
        for code, count in result.failure_codes.items():
            self.metrics.events_failed.labels(source, code).inc(count)

    def _drop_suppressed(self, result: Normalised, source: str) -> None:
        """Take forgotten guests' events out before anything reaches the spool: they are
        acknowledged (a retry would bring them back) and counted, never stored."""
        hashes = self.suppressed.current() if self.suppressed is not None else None
        if not hashes or not result.lines:
            return
        kept = [line for line in result.lines if not suppressed_identifiers(_as_row(line), hashes)]
        if len(kept) < len(result.lines):
            self.metrics.events_suppressed.labels(source).inc(len(result.lines) - len(kept))
            result.lines = kept

    def _source_from_header(self, authorization: str) -> str:
        # No cache by header: it would keep every key seen, in plain text, for the process's
        # life; a hash and four comparisons cost a few microseconds a request.
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise _unauthorized()
        try:
            user = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized() from None
        source = self.settings.source_for(user)
        if source is None:
            raise _unauthorized()
        return source

    def _check_rate(self, source: str) -> None:
        wait = self.limiter.wait(source)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RequestRejected(
                429,
                "rate_limited",
                f"Source {source!r} is over {self.settings.rate_limit_per_second:g} requests per "
                f"second (rate_limit_per_second); retry after {seconds} s. Nothing was stored.",
                headers={"Retry-After": str(seconds)},
                limit="rate_limit_per_second",
                retry_after_seconds=seconds,
            )


def _as_row(line: bytes) -> dict:
    """A stored Segment message under the lake's column names, as the gate matches guests."""
    message = orjson.loads(line)
    return {
        "user_id": message.get("userId"),
        "anonymous_id": message.get("anonymousId"),
        "previous_id": message.get("previousId"),
        "traits": message.get("traits"),
        "context": message.get("context"),
        "properties": message.get("properties"),
    }


def create_app(settings: CollectorSettings) -> FastAPI:
    """The collector as an ASGI app; its writer runs for as long as the app does."""
    metrics = CollectorMetrics()
    writer = LandingWriter(
        settings.landing_url,
        settings.spool_dir,
        rotate_bytes=settings.rotate_bytes,
        rotate_seconds=settings.rotate_seconds,
        metrics=metrics,
    )
    collector = Collector(settings, writer, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        recovered = await asyncio.to_thread(writer.open)
        if recovered["files"]:
            log.warning(
                "Recovered %(files)d spool file(s) left by a crash: %(lines)d lines published, "
                "%(torn)d torn line(s) moved to the _failed stream.",
                recovered,
            )
        log.info(
            "Collecting for sources %s into %s (spool %s).",
            ", ".join(sorted(settings.write_keys)),
            settings.landing_url,
            settings.spool_dir,
        )
        if settings.dev_keys_file is not None:
            log.warning("Dev-only write keys (loopback only): %s", settings.dev_keys_file)
        # Everything imported so far (dlt, FastAPI, pydantic: ~10^5 objects) lives as long as the
        # process; left to the collector, a full pass over it stalls every request for ~0.1 s.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(writer.close)

    app = FastAPI(
        title="Regulars event collector",
        summary="Segment's HTTP Tracking API into the landing zone, durably.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        # analytics.js posts from the chain's website, another origin than the collector's.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["POST"],
            allow_headers=["*"],
        )

    def endpoint_for(kind: str | None):
        async def track(request: Request) -> Response:
            return await collector.handle(request, kind)

        track.__name__ = f"post_{kind or 'batch'}"
        return track

    app.add_api_route("/v1/batch", endpoint_for(None), methods=["POST"], summary="A batch")
    for path in BATCH_PATHS:
        app.add_api_route(path, endpoint_for(None), methods=["POST"], include_in_schema=False)
    for kind in MESSAGE_TYPES:
        app.add_api_route(f"/v1/{kind}", endpoint_for(kind), methods=["POST"], summary=kind)
    for short, kind in SHORT_PATHS.items():
        app.add_api_route(
            f"/v1/{short}", endpoint_for(kind), methods=["POST"], include_in_schema=False
        )

    @app.get("/health")
    async def health() -> Response:
        if writer.healthy:
            return Response(b'{"status":"ok"}', media_type="application/json")
        body = {"status": "unavailable", "error": str(writer.error or "writer not running")}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.state.collector = collector
    return app


def serve(settings: CollectorSettings) -> None:
    """Run the collector on uvicorn until SIGINT / SIGTERM, then publish every spool."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


def _unauthorized() -> RequestRejected:
    return RequestRejected(
        401,
        "unauthorized",
        "No write key or an unknown one: send it as the HTTP Basic user name or as `writeKey`.",
        headers={"WWW-Authenticate": 'Basic realm="collector"'},
    )


async def _read_body(request: Request, limit: int, kind: str | None) -> bytes:
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large(kind)
        parts.append(part)
    return b"".join(parts)


def _gunzip(body: bytes, limit: int, kind: str | None) -> bytes:
    # Bounded: a small gzip body must not unpack into gigabytes.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise RequestRejected(
            400, "malformed_gzip", f"The gzip body is corrupt ({error})."
        ) from None
    if len(data) > limit:
        raise too_large(kind)
    if not inflater.eof:
        raise RequestRejected(400, "malformed_gzip", "The gzip body is truncated.")
    return data

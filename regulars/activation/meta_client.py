"""Meta Custom Audience membership through the Marketing API, with dlt's RESTClient.

POST `/{custom_audience_id}/users` adds people, DELETE on the same path removes them; both take
`payload: {schema, data}` of SHA-256 hashes and at most 10,000 rows per request, so a change is
sent in batches tied together by one upload `session`. Configuration, dlt style:

- ACTIVATION__META__ACCESS_TOKEN (or `[activation.meta] access_token` in .dlt/secrets.toml):
  a system-user token with ads_management on the audiences' ad account. Without it, Meta gets
  the CSV file only.
- ACTIVATION__META__BASE_URL (default https://graph.facebook.com) and
  ACTIVATION__META__API_VERSION (default v21.0): tests point the base URL at the simulator's fake.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dlt

from regulars.apis.meta_graph import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    graph_error,
    is_rate_limited,
    versioned_root,
)
from regulars.apis.rest import bearer_client

MAX_ROWS_PER_REQUEST = 10_000  # Meta's documented limit for /{custom_audience_id}/users
SCHEMA = ["EMAIL", "PHONE"]  # hashed values, in the order exporters.Record holds them
REQUEST_MAX_ATTEMPTS, REQUEST_BACKOFF_FACTOR, REQUEST_TIMEOUT = 5, 5.0, 120.0


class MetaSyncError(RuntimeError):
    """Meta refused a membership change; the stored members are left as they were."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SyncResult:
    status: int  # the last HTTP status
    requests: int
    num_received: int
    num_invalid_entries: int

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.num_received} received, "
            f"{self.num_invalid_entries} invalid"
        )


def configured_token() -> str | None:
    return dlt.secrets.get("activation.meta.access_token") or None


class MetaCustomAudiences:
    """Adds and removes hashed rows of Meta Custom Audiences."""

    def __init__(
        self,
        access_token: str,
        base_url: str | None = None,
        api_version: str | None = None,
        batch_size: int = MAX_ROWS_PER_REQUEST,
    ):
        base_url = base_url or dlt.config.get("activation.meta.base_url") or DEFAULT_BASE_URL
        api_version = (
            api_version or dlt.config.get("activation.meta.api_version") or DEFAULT_API_VERSION
        )
        if not 1 <= batch_size <= MAX_ROWS_PER_REQUEST:
            raise ValueError(f"batch_size must be 1..{MAX_ROWS_PER_REQUEST}, got {batch_size}")
        self.batch_size = batch_size
        self.client = bearer_client(
            versioned_root(base_url, api_version),
            access_token,
            retry_condition=is_rate_limited,
            max_attempts=REQUEST_MAX_ATTEMPTS,
            backoff_factor=REQUEST_BACKOFF_FACTOR,
            timeout=REQUEST_TIMEOUT,
        )

    @classmethod
    def from_config(cls) -> MetaCustomAudiences | None:
        """A client when a token is configured, else None (file-only exports)."""
        token = configured_token()
        return cls(token) if token else None

    def add(self, audience_id: str, rows: Sequence[Sequence[str]]) -> SyncResult | None:
        return self._send("POST", audience_id, rows)

    def remove(self, audience_id: str, rows: Sequence[Sequence[str]]) -> SyncResult | None:
        return self._send("DELETE", audience_id, rows)

    def _send(
        self, method: str, audience_id: str, rows: Sequence[Sequence[str]]
    ) -> SyncResult | None:
        if not rows:
            return None
        batches = [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        session_id = secrets.randbelow(2**53)
        received = invalid = status = 0
        for seq, batch in enumerate(batches, start=1):
            body: dict[str, Any] = {
                "payload": {"schema": SCHEMA, "data": [list(row) for row in batch]},
                "session": {
                    "session_id": session_id,
                    "batch_seq": seq,
                    "last_batch_flag": seq == len(batches),
                    "estimated_num_total": len(rows),
                },
            }
            response = self.client.request(f"/{audience_id}/users", method=method, json=body)
            status = response.status_code
            if status >= 400:
                error = graph_error(response) or {"message": response.text[:200]}
                raise MetaSyncError(
                    f"Meta refused {method} /{audience_id}/users (batch {seq} of {len(batches)}): "
                    f"HTTP {status}, code {error.get('code')}: {error.get('message')}. Check the "
                    "custom audience id and that the token has ads_management on its account.",
                    status,
                )
            answer = response.json()
            received += int(answer.get("num_received", 0))
            invalid += int(answer.get("num_invalid_entries", 0))
        return SyncResult(status, len(batches), received, invalid)

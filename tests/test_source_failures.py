"""A source that cannot be reached, or refuses Regulars: one paragraph, not dlt's tracebacks.

Against real sockets on 127.0.0.1: a port nobody listens on (bound, then closed), a server that
answers 401 to everything, the Meta fake given the wrong token, an unresolvable host.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from dagster_dlt import DagsterDltResource
from typer.testing import CliRunner

from ingestion.registry import SOURCES
from orchestration.ingestion import landing_assets
from orchestration.materialize import Materialization
from regulars.cli import app
from regulars.settings import Settings, load_settings
from simulator.fakes import FakeServer
from tests.conftest import layout_env

CHECKOUT = Path(__file__).resolve().parent.parent
PROPERTY_ID = "123456789"
runner = CliRunner()


def closed_port() -> int:
    """A loopback port nobody listens on: bound to find it free, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Refusing(BaseHTTPRequestHandler):
    """Every request: 401, with Google's error body."""

    def _refuse(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *arguments) -> None:
        pass


@contextmanager
def answering_401() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def api_settings(source: str, base_url: str, account: tuple[str, str]) -> dict[str, str]:
    """An HTTP API source configured as an operator would, pointed at `base_url`."""
    prefix = f"SOURCES__{source.upper()}__"
    return {
        f"{prefix}BASE_URL": base_url,
        f"{prefix}ACCESS_TOKEN": "not-the-token",
        f"{prefix}{account[0]}": account[1],
        f"{prefix}START_DATE": "2025-03-01",
        f"{prefix}TODAY": "2025-03-10",
        f"{prefix}REQUEST_MAX_ATTEMPTS": "1",  # no back-off between retries: the test stays fast
    }


GA4 = ("PROPERTY_ID", PROPERTY_ID)
META = ("AD_ACCOUNT_ID", "1000000001")


def configure(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def paragraph(output: str, source: str) -> str:
    """The one line that explains the failure; there must be exactly one."""
    lines = [line for line in output.splitlines() if f"{source} could not be loaded:" in line]
    assert len(lines) == 1, output
    return lines[0]


def test_ga4_at_a_closed_port_says_connection_refused_and_which_setting_to_check(
    regulars_env: Settings, tmp_path: Path
):
    """The real command, in its own process: what a person at the terminal sees."""
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__GA4__")}
    env |= layout_env(tmp_path)
    env |= api_settings("ga4", f"http://127.0.0.1:{port}", GA4)
    env["PYTHONPATH"] = str(CHECKOUT)  # this checkout's code, whatever is installed
    done = subprocess.run(
        [sys.executable, "-m", "regulars.cli", "ingest", "ga4"],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert paragraph(output, "ga4") == (
        f"ga4 could not be loaded: connection refused at "
        f"http://127.0.0.1:{port}/v1beta/properties/{PROPERTY_ID}:runReport. Check "
        "sources.ga4.base_url (SOURCES__GA4__BASE_URL; unset, "
        "https://analyticsdata.googleapis.com), and that the service is up and reachable from "
        "this machine (a proxy, a firewall, a VPN)."
    )
    assert "landed" not in output  # the gate did not run


def test_ga4_refused_with_401_names_the_status_the_url_and_the_token_setting(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
):
    with answering_401() as base_url:
        configure(monkeypatch, api_settings("ga4", base_url, GA4))
        result = runner.invoke(app, ["ingest", "ga4"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no exception escaped the command
    line = paragraph(result.output, "ga4")
    assert line.startswith(
        f"ga4 could not be loaded: HTTP 401 from POST "
        f"{base_url}/v1beta/properties/{PROPERTY_ID}:runReport. GA4 property {PROPERTY_ID}: "
        "the access token was refused (401 UNAUTHENTICATED: Request had invalid"
    )
    assert (
        "Check sources.ga4.access_token in .dlt/secrets.toml (or SOURCES__GA4__ACCESS_TOKEN)"
        in line
    )
    assert "Traceback" not in result.output


def test_meta_ads_with_a_wrong_token_says_what_meta_said_and_which_setting(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    with FakeServer(tmp_path, ["meta"]) as server:
        base_url = server.base_url
        configure(monkeypatch, api_settings("meta_ads", base_url, META))
        result = runner.invoke(app, ["ingest", "meta_ads"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    line = paragraph(result.output, "meta_ads")
    assert line.startswith(f"meta_ads could not be loaded: HTTP 400 from GET {base_url}/")
    assert "Meta ads account act_1000000001: the access token was refused (code 190" in line
    assert "SOURCES__META_ADS__ACCESS_TOKEN" in line
    assert "not-the-token" not in result.output


def test_meta_ads_at_a_host_that_does_not_resolve_says_so(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
):
    configure(monkeypatch, api_settings("meta_ads", "http://graph.invalid", META))
    result = runner.invoke(app, ["ingest", "meta_ads"])
    assert result.exit_code == 1, result.output
    line = paragraph(result.output, "meta_ads")
    assert line.startswith(
        "meta_ads could not be loaded: no such host graph.invalid (the DNS lookup failed) at "
        "http://graph.invalid/"
    )
    assert "Check sources.meta_ads.base_url (SOURCES__META_ADS__BASE_URL" in line


def test_ordering_db_that_cannot_be_reached_names_the_url_without_its_password(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
):
    port = closed_port()
    url = f"postgresql://regulars:s3cret@127.0.0.1:{port}/ordering"  # pragma: allowlist secret
    configure(monkeypatch, {"SOURCES__ORDERING__CREDENTIALS": url})
    result = runner.invoke(app, ["ingest", "ordering"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    line = paragraph(result.output, "ordering")
    assert f"postgresql://regulars:***@127.0.0.1:{port}/ordering" in line
    assert "s3cret" not in result.output
    assert (
        "sources.ordering.credentials (.dlt/secrets.toml or SOURCES__ORDERING__CREDENTIALS)" in line
    )
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:  # the driver is not a dependency of Regulars: say so
        assert "needs the database driver psycopg, which is not installed here" in line
        assert "pip install 'psycopg[binary]'" in line
    else:
        assert "Connection refused" in line and "host, port, database name" in line


def test_an_ordering_url_that_is_not_a_database_file_says_what_sqlite_said(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    folder = tmp_path / "not_a_database"
    folder.mkdir()
    configure(monkeypatch, {"SOURCES__ORDERING__CREDENTIALS": f"sqlite:///{folder}"})
    result = runner.invoke(app, ["ingest", "ordering"])
    assert result.exit_code == 1, result.output
    assert paragraph(result.output, "ordering") == (
        f"ordering could not be loaded: reading the database at sqlite:///{folder} failed "
        "(unable to open database file). Check sources.ordering.credentials (.dlt/secrets.toml "
        "or SOURCES__ORDERING__CREDENTIALS), the database URL: that the file is a SQLite "
        "database this user can read."
    )


def test_under_dagster_the_landing_step_fails_with_the_same_paragraph(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
):
    port = closed_port()
    settings = configure(monkeypatch, api_settings("ga4", f"http://127.0.0.1:{port}", GA4))
    result = dg.materialize(
        [landing_assets(SOURCES["ga4"], settings)],
        resources={"dlt": DagsterDltResource()},
        raise_on_error=False,
    )
    assert not result.success
    # What `regulars materialize` prints under its "Run ... failed" line.
    (description,) = Materialization(result, {}).failure_descriptions.values()
    assert description.startswith(
        f"ga4 could not be loaded: connection refused at http://127.0.0.1:{port}/v1beta/"
    )
    assert "Check sources.ga4.base_url (SOURCES__GA4__BASE_URL" in description

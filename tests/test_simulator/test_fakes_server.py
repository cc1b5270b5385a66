"""Running the fakes: both in one server, the control API, the request log, a clean shutdown and
the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fakes_helpers import ACCOUNT, TODAY, http, write_all

from simulator.fakes import FakeServer
from simulator.fakes.ga4 import DEFAULT_PROPERTY_ID, DEFAULT_TOKEN
from tests.processes import running

GA4_AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
REPORT = {
    "dateRanges": [{"startDate": "2025-03-01", "endDate": "today"}],
    "metrics": [{"name": "sessions"}],
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_all(tmp_path_factory.mktemp("fakes_world"))


def test_both_fakes_share_one_server_with_a_request_log(data_dir: Path) -> None:
    with FakeServer(data_dir, today=TODAY) as fake:
        run_report = f"{fake.base_url}/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport"
        campaigns = f"{fake.base_url}/v19.0/act_{ACCOUNT}/campaigns?access_token=fake-meta-token"
        assert http("POST", run_report, REPORT, GA4_AUTH)[0] == 200
        assert http("GET", campaigns)[0] == 200
        assert http("GET", campaigns)[0] == 200
        assert http("GET", f"{fake.base_url}/nowhere")[0] == 404

        status, _, log = http("GET", f"{fake.base_url}/_fake/requests")
        assert status == 200
        assert log["counts"] == {
            f"/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport": 1,
            f"/v19.0/act_{ACCOUNT}/campaigns": 2,
            "/nowhere": 1,
        }
        assert fake.request_counts() == log["counts"]  # control requests are not logged
        http("DELETE", f"{fake.base_url}/_fake/requests")
        assert fake.requests == []


def test_control_api_scripts_faults_per_fake(data_dir: Path) -> None:
    with FakeServer(data_dir, today=TODAY) as fake:
        control = f"{fake.base_url}/_fake/faults"
        status, _, _ = http("POST", control, {"quota": 1})  # ambiguous with two fakes
        assert status == 400
        status, _, pending = http(
            "POST", control, {"ga4": {"unavailable": 1}, "meta": {"rate_limit": {"count": 2}}}
        )
        assert status == 200
        assert [f["kind"] for f in pending["ga4"]] == ["unavailable"]
        assert pending["meta"][0]["count"] == 2
        assert http("POST", control, {"ga4": {"no_such_fault": 1}})[0] == 400
        http("DELETE", control)
        assert http("GET", control)[2] == {"ga4": [], "meta": []}

        status, _, config = http("POST", f"{fake.base_url}/_fake/config", {"today": "2025-03-05"})
        assert config["ga4"] == {"today": "2025-03-05"}
        run_report = f"{fake.base_url}/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport"
        _, _, early = http("POST", run_report, REPORT, GA4_AUTH)
        http("POST", f"{fake.base_url}/_fake/config", {"today": "2025-03-10"})
        _, _, late = http("POST", run_report, REPORT, GA4_AUTH)
        early_n = int(early["rows"][0]["metricValues"][0]["value"])
        assert early_n < int(late["rows"][0]["metricValues"][0]["value"]) == 400


def test_shutdown_frees_the_port(data_dir: Path) -> None:
    with FakeServer(data_dir, ["ga4"]) as fake:
        port = int(fake.base_url.rsplit(":", 1)[1])
        assert fake.base_url.startswith("http://127.0.0.1:")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RuntimeError):
        fake.base_url  # noqa: B018


def test_command_line_prints_its_url_and_serves(data_dir: Path) -> None:
    with running(
        [
            *(sys.executable, "-m", "simulator.fakes", "meta", "--data-dir", str(data_dir)),
            *("--port", "0", "--today", "2025-03-10", "--fault", "meta:rate_limit=1"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        url = f"{base_url}/v21.0/act_{ACCOUNT}/ads?access_token=fake-meta-token"
        status, _, body = http("GET", url)
        assert status == 400 and body["error"]["code"] == 17  # the --fault
        status, _, body = http("GET", url)
        assert status == 200 and len(body["data"]) == 11
        assert json.loads(json.dumps(body))["data"][0]["id"]

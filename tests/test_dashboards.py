"""The dashboards in dashboards/, in a real Superset, on the marts world's serving copy.

Superset is set up the way `make bi` sets it up (bi/superset.py: its own venv, the YAML imported
over a throwaway metadata database, the serving copy read-only) and served by gunicorn on a free
port of 127.0.0.1. Headless Chromium logs in as a person does, opens every dashboard and waits
for every chart; a chart that fails, or has no rows, fails the test with its dashboard and name.
Screenshots of whole dashboards go to the checkout's git-ignored var/screenshots/.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from playwright.sync_api import sync_playwright

from bi import superset
from regulars.serving import serving_path
from regulars.settings import Settings
from tests import processes
from tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS_KEPT, free_port

EXPOSURES = superset.CHECKOUT / "dbt_project" / "models" / "marts" / "_marts__exposures.yml"

START_TIMEOUT_S = 90
CHARTS_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 30_000

# A chart on the page, and what it shows instead of its chart: still loading, an error, no rows.
CHART = "[data-test='chart-grid-component']"
LOADING = "[data-test='loading-indicator']"
FAILED = ".ant-alert, .ant-empty"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"No Chromium at {CHROMIUM}: `make browser` installs Debian's chromium."
    try:
        superset.superset_python()
    except superset.NotReady as missing:
        return str(missing)
    return None


MISSING = _missing()


def in_the_browser(test):
    """A test that drives Superset in Chromium: skipped when either is missing, before any
    fixture runs, so a skip builds no world. The marts world is one of its fixtures (through
    superset_server), so it runs beside the other tests that read that world."""
    return pytest.mark.skipif(MISSING is not None, reason=MISSING or "")(pytest.mark.browser(test))


@dataclass(frozen=True)
class Dashboard:
    title: str
    slug: str
    charts: tuple[str, ...]  # slice names, in the YAML's layout order


def repository_dashboards() -> list[Dashboard]:
    """The dashboards as dashboards/ declares them, with their charts' names."""
    names = {}
    for path in (superset.DASHBOARDS / "charts").glob("*.yaml"):
        chart = yaml.safe_load(path.read_text())
        names[chart["uuid"]] = chart["slice_name"]
    dashboards = []
    for path in sorted((superset.DASHBOARDS / "dashboards").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        uuids = [item["meta"]["uuid"] for item in spec["position"].values() if _is_chart(item)]
        dashboards.append(
            Dashboard(spec["dashboard_title"], spec["slug"], tuple(names[u] for u in uuids))
        )
    return dashboards


def _is_chart(item) -> bool:
    return isinstance(item, dict) and item.get("type") == "CHART"


# Figures a chart shows, against the same question asked of the serving copy with DuckDB: the
# chart's rows as (column, ...) tuples, and the SQL that should give the same rows.
FIGURES = {
    # The mart's own rate, every complete month and no other (an incomplete month plotted as 0
    # would add a row).
    "Retention against its target, chain": (
        ("activity_month", "Retention", "Target"),
        "select epoch_ms(activity_month::timestamp), retention_rate, retention_target"
        " from marts.kpi_scorecard where grain = 'chain' and is_month_complete",
    ),
    "Revenue at risk by province": (
        ("province", "Expected revenue at risk, next 365 days"),
        "select province, expected_revenue_at_risk from marts.kpi_scorecard"
        " where grain = 'province' and expected_revenue_at_risk is not null",
    ),
    "Guests": (("guests",), "select count(*) from marts.dim_customers"),
}


@dataclass
class Superset:
    url: str
    serving: Path
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def superset_server(
    marts_world: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Superset]:
    """Superset on the marts world, set up from the repository's YAML, stopped at the end."""
    home = tmp_path_factory.mktemp("superset")
    serving = serving_path(marts_world.warehouse_path)
    superset.setup(home, serving)
    server = Superset(f"http://127.0.0.1:{free_port()}", serving, home / "gunicorn.log")
    with server.log.open("w") as log:
        process = processes.start(
            superset.server_command(int(server.url.rsplit(":", 1)[1])),
            env=superset.environment(home),
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        processes.wait_until_answers(
            f"{server.url}/health", process, START_TIMEOUT_S, "Superset", server.log_tail
        )
        yield server
    finally:
        processes.stop(process)


@pytest.fixture(scope="module")
def page(superset_server: Superset) -> Iterator:
    """A browser tab logged in through Superset's login form."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        # Nothing but Superset: its pages also load Scarf's usage pixel, which offline would
        # only hang until it times out. Nor Superset's own log of what the browser did: the
        # login page sends it as the sign-in form leaves, and when its answer came after the
        # sign-in's, its session cookie replaced the signed-in one and Superset showed the
        # login page again (6 logins of 165 under load here, one proof's six dashboard tests).
        event_log = f"{superset_server.url}/superset/log/"
        context.route(
            lambda url: not url.startswith(superset_server.url) or url.startswith(event_log),
            lambda route: route.abort(),
        )
        tab = context.new_page()
        tab.goto(f"{superset_server.url}/login/", wait_until="domcontentloaded")
        tab.locator("#username").fill(superset.ADMIN_USER)
        tab.locator("#password").fill(superset.ADMIN_PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(lambda url: "/login" not in url, wait_until="domcontentloaded")
        try:
            yield tab
        finally:
            browser.close()


@dataclass
class ChartData:
    """What the dashboard's page received for one chart from /api/v1/chart/data."""

    status: int
    results: list[dict]

    def problem(self) -> str | None:
        if self.status != 200:
            return f"HTTP {self.status}: {self.results}"
        for result in self.results:
            if result.get("error"):
                return f"error: {result['error']}"
            if not result.get("rowcount"):
                return "no data"
        return None


def listen_for_chart_data(page) -> dict[int, ChartData]:
    received: dict[int, ChartData] = {}

    def on_response(response) -> None:
        if "/api/v1/chart/data" not in response.url:
            return
        query = urllib.parse.parse_qs(urllib.parse.urlparse(response.url).query)
        slice_id = json.loads(query.get("form_data", ["{}"])[0]).get("slice_id")
        try:
            body = response.json()
        except Exception as unreadable:  # the body says why the chart failed
            body = {"result": [{"error": f"unreadable answer: {unreadable}"}]}
        received[slice_id] = ChartData(response.status, body.get("result") or [body])

    page.on("response", on_response)
    return received


def open_whole(page, url: str) -> None:
    """The dashboard in a window as tall as the dashboard.

    Superset renders only the charts in view: the window grows to the page's height so every
    chart loads, as it would for a person scrolling, and the screenshot shows all of them.
    """
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.locator(CHART).first.wait_for()
    for _ in range(3):  # charts that come into view can lengthen the page
        height = page.evaluate("document.documentElement.scrollHeight")
        if height <= page.viewport_size["height"]:
            break
        page.set_viewport_size({"width": 1600, "height": height})
        page.wait_for_timeout(300)


def normal(value):
    """Numbers as floats: JSON carries the serving copy's decimals and dates as floats."""
    return float(value) if isinstance(value, int | float | Decimal) else value


def same_rows(shown: list[tuple], expected: list[tuple]) -> bool:
    """Equal rows in any order (each figure's first column is its key), numbers to 1e-9."""
    shown, expected = ([tuple(map(normal, row)) for row in rows] for rows in (shown, expected))
    shown.sort(key=lambda row: str(row[0]))
    expected.sort(key=lambda row: str(row[0]))
    return len(shown) == len(expected) and all(
        a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b))
        for left, right in zip(shown, expected, strict=True)
        for a, b in zip(left, right, strict=True)
    )


@in_the_browser
@pytest.mark.parametrize("dashboard", repository_dashboards(), ids=lambda d: d.slug)
def test_every_chart_renders_with_data(
    dashboard: Dashboard, superset_server: Superset, page
) -> None:
    charts = page.request.get(f"{superset_server.url}/api/v1/dashboard/{dashboard.slug}/charts")
    assert charts.ok, f"{dashboard.title}: {charts.status} {charts.text()[:300]}"
    ids = {chart["id"]: chart["slice_name"] for chart in charts.json()["result"]}
    assert sorted(ids.values()) == sorted(dashboard.charts), (
        f"{dashboard.title}: Superset's charts differ from dashboards/"
    )

    received = listen_for_chart_data(page)
    open_whole(page, f"{superset_server.url}/superset/dashboard/{dashboard.slug}/")
    on_page = page.locator(CHART)
    deadline = time.monotonic() + CHARTS_TIMEOUT_S
    while time.monotonic() < deadline:
        if set(received) >= set(ids) and not on_page.locator(LOADING).count():
            break
        page.wait_for_timeout(250)
    page.wait_for_timeout(1_500)  # ECharts grows each chart into place over a second
    SCREENSHOTS_KEPT.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS_KEPT / f"superset_{dashboard.slug}.png"
    page.screenshot(path=str(shot), full_page=True)

    problems = [
        f"{name}: " + (received[chart_id].problem() if chart_id in received else "never loaded")
        for chart_id, name in ids.items()
        if chart_id not in received or received[chart_id].problem()
    ]
    for chart in on_page.all():
        if chart.locator(f"{LOADING}, {FAILED}").count():
            name = chart.get_attribute("data-test-chart-name")
            problems.append(f"{name}: the page shows {chart.inner_text()[:300]!r}")
    assert not problems, f"{dashboard.title} ({shot}):\n" + "\n".join(problems)
    assert sorted(
        on_page.evaluate_all("charts => charts.map(c => c.dataset.testChartName)")
    ) == sorted(dashboard.charts), (
        f"{dashboard.title}: the charts on the page differ from dashboards/"
    )

    with duckdb.connect(str(superset_server.serving), read_only=True) as serving:
        for chart_id, name in ids.items():
            if name not in FIGURES:
                continue
            columns, sql = FIGURES[name]
            shown = [
                tuple(row[c] for c in columns) for row in received[chart_id].results[0]["data"]
            ]
            expected = serving.execute(sql).fetchall()
            assert same_rows(shown, expected), (
                f"{dashboard.title} / {name}: the chart shows {shown}, the serving copy {expected}"
            )


@in_the_browser
def test_superset_reads_the_serving_copy_read_only(superset_server: Superset, page) -> None:
    databases = page.request.get(f"{superset_server.url}/api/v1/database/").json()["result"]
    assert [database["database_name"] for database in databases] == ["Regulars serving copy"]
    connection = page.request.get(
        f"{superset_server.url}/api/v1/database/{databases[0]['id']}/connection"
    ).json()["result"]
    assert connection["sqlalchemy_uri"] == superset.serving_uri(superset_server.serving)
    assert connection["allow_dml"] is False


def test_each_dashboard_is_a_dbt_exposure_of_the_marts_it_reads() -> None:
    """dbt docs (and whatever reads dbt's lineage) reach every dashboard, by the marts it reads."""
    exposures = yaml.safe_load(EXPOSURES.read_text())["exposures"]
    declared = {
        exposure["url"]: {ref.split("'")[1] for ref in exposure["depends_on"]}
        for exposure in exposures
        if exposure["type"] == "dashboard"
    }
    tables = {}
    for path in (superset.DASHBOARDS / "datasets").rglob("*.yaml"):
        dataset = yaml.safe_load(path.read_text())
        tables[dataset["uuid"]] = dataset["table_name"]
    charts = {}
    for path in (superset.DASHBOARDS / "charts").glob("*.yaml"):
        chart = yaml.safe_load(path.read_text())
        charts[chart["uuid"]] = tables[chart["dataset_uuid"]]
    read = {}
    for path in (superset.DASHBOARDS / "dashboards").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())
        url = f"http://127.0.0.1:{superset.PORT}/superset/dashboard/{spec['slug']}/"
        read[url] = {
            charts[item["meta"]["uuid"]] for item in spec["position"].values() if _is_chart(item)
        }
    assert declared == read


def test_superset_reads_the_copy_with_the_pipelines_duckdb() -> None:
    """The pipeline's DuckDB writes the serving copy and Superset's reads it: one version on both
    sides, so a change of DuckDB's file format can never leave the dashboards unable to open it."""
    pins = dict(
        line.split("==", 1)
        for line in (superset.CHECKOUT / "bi" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["duckdb"] == duckdb.__version__, (
        f"bi/requirements.txt pins duckdb {pins['duckdb']}, the pipeline writes with "
        f"{duckdb.__version__}: pin the same in bi/requirements.txt and bi/constraints.txt"
    )

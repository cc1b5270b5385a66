"""The Dagster UI in a real browser: the lineage is there, and materialising from it succeeds.

A tiny world is built in a temporary checkout layout with nothing materialised; `regulars ui`
(what `make ui` runs: webserver, daemon and the demo API fakes) serves it on a free port of
127.0.0.1; headless Chromium from Debian's packages, driven by Playwright, does what an operator
does. Screenshots go to the temporary `var/screenshots/` and are copied to the checkout's
git-ignored `var/screenshots/` for a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from regulars.settings import CHECKOUT_DIR
from tests import processes
from tests.conftest import layout_env

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The lineage the test looks for, from an ingestion asset to the mart operators read first.
LINEAGE_FROM = "landing_ordering/orders"
LINEAGE_TO = "marts/kpi_scorecard"

# Bounds on a 2-core machine: the code location loads dbt's manifest and every suite.
UI_START_TIMEOUT_S = 300
PAGE_TIMEOUT_MS = 120_000
# Alone here the backfill of a week takes about 130 s: five runs, each waiting for the backfill
# daemon's 30-second tick. On CI's loaded machine one did not end within 10 minutes.
RUN_TIMEOUT_S = 20 * 60
RUN_POLL_S = 10
# After the instance says the launch ended, how long the page may take to say so too.
PAGE_CATCH_UP_S = 90
SHUTDOWN_GRACE_S = 15

SCREENSHOTS_KEPT = CHECKOUT_DIR / "var" / "screenshots"


@dataclass(frozen=True)
class RunningUI:
    url: str
    root: Path
    log_path: Path

    @property
    def screenshots(self) -> Path:
        return self.root / "var" / "screenshots"

    @property
    def last_week(self) -> tuple[str, str]:
        """The simulated world's last seven days, as partition keys."""
        from simulator import read_state

        _, as_of = read_state(self.root / "data")
        return (as_of - timedelta(days=6)).isoformat(), as_of.isoformat()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int) -> dict[int, str]:
    """`pid` and every live process below it, each with its start time (Linux /proc).

    Run workers and code servers are found by parentage as well as by process group, and the
    start time keeps a recycled pid from being mistaken for one of them.
    """
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    tree, queue = {}, [pid]
    while queue:
        current = queue.pop()
        if current in started:
            tree[current] = started[current]
        queue.extend(children.get(current, []))
    return tree


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


def stop_process_tree(process: subprocess.Popen) -> None:
    """Ctrl-C for the whole group (dagster dev shuts its services down on SIGINT), then SIGKILL."""
    tree = process_tree(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while time.monotonic() < deadline and any(_alive(*item) for item in tree.items()):
        process.poll()  # reap the leader, or it lingers as a zombie
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid, started in tree.items():
        if _alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    process.wait(timeout=SHUTDOWN_GRACE_S)


@pytest.fixture(scope="module")
def dagster_ui(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_files: Path
) -> Iterator[RunningUI]:
    """`regulars ui` on a fresh tiny world, torn down with its whole process tree."""
    if not CHROMIUM.exists():
        pytest.skip(f"No Chromium at {CHROMIUM}: `make browser` installs Debian's chromium.")
    root = tmp_path_factory.mktemp("ui_world")
    shutil.copytree(tiny_world_files, root / "data")
    env = {**os.environ, **layout_env(root)}
    for inherited in ("SOURCES__ORDERING__CREDENTIALS", "REGULARS_DESTINATION"):
        env.pop(inherited, None)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    url = f"http://127.0.0.1:{free_port()}"
    ui = RunningUI(url=url, root=root, log_path=root / "ui.log")
    with ui.log_path.open("w") as log:
        process = processes.start(
            [str(Path(sys.executable).parent / "regulars"), "ui", "--port", url.rsplit(":", 1)[1]],
            cwd=CHECKOUT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches every child
        )
    try:
        processes.wait_until_answers(
            f"{url}/server_info", process, UI_START_TIMEOUT_S, "`regulars ui`", ui.log_tail, every=2
        )
        yield ui
    finally:
        stop_process_tree(process)


@pytest.fixture(scope="module")
def browser(dagster_ui: RunningUI) -> Iterator:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, dagster_ui: RunningUI) -> Iterator:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def screenshot(page, ui: RunningUI, name: str, whole: bool = False) -> Path:
    """A picture in the temporary var/screenshots/, copied to the checkout's for a person.

    `whole` grows the window to the longest scrolling pane first: Dagster's tables scroll
    inside the page and only render the rows in view, so a full-page capture would cut them.
    """
    ui.screenshots.mkdir(parents=True, exist_ok=True)
    path = ui.screenshots / name
    viewport = page.viewport_size
    if whole:
        height = page.evaluate(
            "Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
        )
        page.set_viewport_size({"width": viewport["width"], "height": max(height + 200, 1000)})
        page.wait_for_timeout(1_500)  # the rows newly in view render
    page.screenshot(path=str(path))
    if whole:
        page.set_viewport_size(viewport)
    SCREENSHOTS_KEPT.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, SCREENSHOTS_KEPT / name)
    return path


def open_global_lineage(page, ui: RunningUI) -> None:
    """The Lineage page, past the once-per-instance community dialog."""
    page.goto(f"{ui.url}/asset-groups", wait_until="domcontentloaded")
    page.get_by_role("button", name="Materialize all").first.wait_for()
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(PlaywrightTimeout):  # shown once per DAGSTER_HOME
        skip.wait_for(timeout=5_000)
        skip.click()


def filter_graph(page, selection: str) -> None:
    """Type an asset selection into the graph's filter, as a person would, and apply it."""
    page.locator(".CodeMirror").first.click()
    page.keyboard.type(selection)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/asset-groups~" in url)
    # Groups start collapsed on a graph this size; Alt+E (outside the editor) expands them all.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Alt+KeyE")
    page.wait_for_url(lambda url: "expanded=" in url)


def asset_node_names(page) -> list[str]:
    return page.locator("[class*='AssetNode_assetName']").all_inner_texts()


def test_lineage_runs_from_an_ingestion_asset_to_the_mart(dagster_ui: RunningUI, page):
    open_global_lineage(page, dagster_ui)
    # Downstream of the landing table and upstream of the mart: the paths between the two.
    filter_graph(page, f'key:"{LINEAGE_FROM}"+ and +key:"{LINEAGE_TO}"')
    mart = LINEAGE_TO.rsplit("/", 1)[1]
    page.locator("[class*='AssetNode_assetName']", has_text=mart).first.wait_for()
    screenshot(page, dagster_ui, "asset_lineage.png")

    names = asset_node_names(page)
    # Both ends are named `orders` (landing and lake) before staging renames the table.
    assert names.count(LINEAGE_FROM.rsplit("/", 1)[1]) >= 2, names
    assert mart in names, names
    assert "fct_orders" in names, names


def choose_days(dialog, first: str, last: str) -> None:
    """A range of days in the launch dialog, typed into its partition box as a person would.

    The dialog opens filtered to the last 90 days, which can hold none of a simulated world's
    days: then its box says "Loading partition keys..." until "Show all partitions" is clicked.
    It fills in its partitions after it opens, on a loaded machine long after, so this only acts
    on what is on screen, never waits on one element, until the selection is the range.
    """
    show_all = dialog.get_by_text("Show all partitions")
    box = dialog.get_by_placeholder(re.compile(r"^ex: "))  # e.g. "ex: 2025-01-01, [2025-01-03...]"
    wanted = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
    selected = dialog.get_by_text(re.compile(rf"^{wanted} partitions?$"))
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if show_all.is_visible():
            show_all.click()
        elif box.is_visible():
            box.fill(f"[{first}...{last}]")
            box.press("Enter")
            if selected.count():
                return
        time.sleep(1)
    pytest.fail(f"The launch dialog never took the days {first} to {last}:\n{dialog.inner_text()}")


def launch_everything(page, ui: RunningUI) -> str:
    """Click "Materialize all" on the whole graph; the path of the run or backfill it launched.

    With day-partitioned assets in the graph Dagster asks which days: the world's last week (every
    day, as `make run` builds them, costs the same dbt run and far more of the daemon's
    bookkeeping). That is one backfill, where the unpartitioned assets run once and the
    partitioned ones run once over the range (their backfill policy), each after its upstreams.
    A graph without partitions launches a run straight away. Either way the toast links to it.
    """
    page.get_by_role("button", name="Materialize all").first.click()
    view = page.locator("a[href^='/runs/']", has_text="View")
    dialog = page.get_by_role("dialog")
    # Planning every asset and check takes a while on a loaded machine before either appears.
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if view.count():
            return view.first.get_attribute("href")
        if dialog.count() and dialog.first.is_visible():
            choose_days(dialog, *ui.last_week)
            launch = dialog.get_by_role("button", name="Launch backfill")
            expect(launch).to_be_enabled()
            screenshot(page, ui, "launch_last_week.png")
            launch.click()
            view.first.wait_for()
            return view.first.get_attribute("href")
        time.sleep(0.5)
    shot = screenshot(page, ui, "launch_timed_out.png")
    pytest.fail(f"Nothing was launched within {PAGE_TIMEOUT_MS // 1000}s ({shot}).")


# What the run page (in its tab title) and the backfill page (beside "Status") say, in one word.
OUTCOMES = {
    "SUCCESS": "succeeded",
    "Succeeded": "succeeded",
    "FAILURE": "failed",
    "Failed": "failed",
    "Completed": "completed without saying how",
    "CANCELED": "canceled",
    "Canceled": "canceled",
}


def outcome(page, path: str) -> str | None:
    """The launched run's or backfill's end state, None while it is still going."""
    if path.startswith("/runs/b/"):
        page.get_by_text("Status", exact=True).first.wait_for()
        found = re.search(r"\nStatus\n([^\n]+)", page.inner_text("body"))
        status = found.group(1).strip() if found else ""
    else:
        page.wait_for_function("document.title.includes('[')")
        title = page.title()
        status = title.rsplit("[", 1)[1].rstrip("]") if "[" in title else ""
    return OUTCOMES.get(status)


def wait_for_the_launch(ui: RunningUI, path: str) -> tuple[bool, str]:
    """Whether the launched run or backfill ended within RUN_TIMEOUT_S, and a line per run.

    Read from Dagster's storage in the UI's DAGSTER_HOME, not by reloading the page: each load
    of the backfill page has the webserver work out every asset's partitions again, CPU that a
    loaded machine's runs are short of. The list says where a launch that never ended stood.
    """
    import dagster as dg
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    from regulars.settings import environment

    launched_id = path.rstrip("/").rsplit("/", 1)[1]
    is_backfill = path.startswith("/runs/b/")
    home = ui.root / "var" / "dagster_home"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with (
        environment({"DAGSTER_HOME": str(home)}),
        dg.DagsterInstance.from_config(str(home)) as dagster,
    ):

        def runs() -> list[dg.DagsterRun]:
            if is_backfill:
                return list(dagster.get_runs(filters=dg.RunsFilter.for_backfill(launched_id)))
            return [run] if (run := dagster.get_run_by_id(launched_id)) else []

        def ended() -> bool:
            if is_backfill:
                backfill = dagster.get_backfill(launched_id)
                return backfill is not None and backfill.status in BULK_ACTION_TERMINAL_STATUSES
            return any(run.is_finished for run in runs())

        while not (finished := ended()) and time.monotonic() < deadline:
            time.sleep(RUN_POLL_S)
        listed = "\n".join(
            f"  {run.run_id[:8]} {run.status.value}: {len(run.asset_selection or ())} assets"
            for run in reversed(runs())
        )
    return finished, listed or "  (none)"


def test_materialize_all_from_the_ui_succeeds(dagster_ui: RunningUI, page):
    open_global_lineage(page, dagster_ui)
    screenshot(page, dagster_ui, "asset_graph.png")
    launched = launch_everything(page, dagster_ui)
    page.goto(f"{dagster_ui.url}{launched}", wait_until="domcontentloaded")

    finished, runs = wait_for_the_launch(dagster_ui, launched)
    # Then the page, as a person reads it: reloaded, for the live subscription may not have
    # survived a loaded machine.
    ended = outcome(page, launched)
    deadline = time.monotonic() + PAGE_CATCH_UP_S
    while finished and ended is None and time.monotonic() < deadline:
        time.sleep(RUN_POLL_S)
        page.reload(wait_until="domcontentloaded")
        ended = outcome(page, launched)
    page.wait_for_timeout(2_000)  # let the tables and step lists render before the picture
    # The whole list: a backfill shows every asset with its succeeded and failed partitions.
    name = f"materialize_all_{(ended or 'timed out').split()[0]}.png"
    shot = screenshot(page, dagster_ui, name, whole=True)
    errors = "\n".join(line for line in dagster_ui.log_tail(400).splitlines() if "ERROR" in line)
    assert ended == "succeeded", (
        f"{launched} {ended or f'had not ended after {RUN_TIMEOUT_S}s'}; screenshot {shot}\n"
        f"Its runs, as Dagster's storage has them:\n{runs}\n{errors}"
    )

    if launched.startswith("/runs/b/"):
        # The backfill's own line for the mart, in the window grown to show every line.
        page.set_viewport_size({"width": 1600, "height": 5000})
        mart = page.locator(f"a[href='/assets/{LINEAGE_TO}']").first
        line = page.locator("div", has=mart).filter(has_text=re.compile("Succeeded|Failed")).last
        expect(line).to_contain_text("Succeeded")
        page.set_viewport_size({"width": 1600, "height": 1000})

    open_global_lineage(page, dagster_ui)
    filter_graph(page, f'key:"{LINEAGE_FROM}"+ and +key:"{LINEAGE_TO}"')
    page.wait_for_timeout(2_000)  # node colours follow the latest materialisations
    screenshot(page, dagster_ui, "lineage_after_materialize_all.png")

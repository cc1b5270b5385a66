"""Child processes that tests start: default signal handlers, and always stopped.

A test run started from a background job or under `nohup` ignores SIGINT, and Dagster's
interrupt handling copies SIGINT's handler onto SIGTERM in this process; a child would inherit
both as "ignored" and outlive `terminate()`. Children here start with the defaults, and leave
with a kill when they do not stop in time.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence

import pytest

STOP_SECONDS = 15


def default_signals() -> None:
    """Runs in the child before exec: SIGINT and SIGTERM back to their default actions."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def start(command: Sequence[str], **popen) -> subprocess.Popen:
    return subprocess.Popen(list(command), preexec_fn=default_signals, **popen)


def stop(
    process: subprocess.Popen, signum: int = signal.SIGTERM, seconds: float = STOP_SECONDS
) -> bool:
    """Ask with `signum`, then kill if it is still there after `seconds`.

    True when the process ended without the kill (or had already ended).
    """
    if process.poll() is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=seconds)
        return False


@contextlib.contextmanager
def running(command: Sequence[str], **popen) -> Iterator[subprocess.Popen]:
    process = start(command, **popen)
    try:
        yield process
    finally:
        stop(process)


def wait_until_answers(
    url: str,
    process: subprocess.Popen,
    timeout: float,
    what: str,
    log_tail: Callable[[], str],
    every: float = 0.5,
) -> None:
    """Poll `url` until it answers 200; fail, with the end of the server's log, when `process`
    exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(every)
    pytest.fail(f"{what} did not answer within {timeout:.0f}s:\n{log_tail()}")

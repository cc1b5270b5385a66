"""What a long command prints, and where the rest goes.

A materialisation's tools each write their own lines (dbt a line per node, dlt its counters and
warnings, Dagster an event per line): about 1,500 for the demo. People read the progress lines;
everything else is kept, whole, in a log file named before the run starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO


def run_log_path(state_dir: Path, command: str) -> Path:
    folder = state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{command}-{datetime.now():%Y%m%dT%H%M%S}.log"


@contextlib.contextmanager
def everything_else_to(log_path: Path) -> Iterator[TextIO]:
    """Send this process's output and its children's (dbt) to `log_path`; yield the stream for
    the lines people read.

    Both levels are redirected: Python's `sys.stdout`/`sys.stderr` (dagster-dbt and logging
    write there) and file descriptors 1 and 2 (dbt's process and anything native inherit them).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    console_is_terminal_fd = _writes_to_fd(sys.stdout, 1)
    with open(log_path, "a", buffering=1, encoding="utf-8") as log:
        saved = os.dup(1), os.dup(2)
        # The person's stream: the terminal's descriptor, copied before it is redirected; or,
        # when stdout is not fd 1 (a test's capture), that object itself.
        console = os.fdopen(os.dup(saved[0]), "w", buffering=1) if console_is_terminal_fd else None
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            stream = console or sys.stdout
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield stream
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if console is not None:
                console.close()


def _writes_to_fd(stream: TextIO, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def stage_bar(title: str, stages: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A bar over `stages` while the block runs; the callback it yields starts each stage.

    On a terminal it redraws in place with each stage's elapsed time; elsewhere (CI, a pipe) rich
    prints the finished bar once, so logs get one line, not a line per redraw.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stage]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(title, total=len(stages), stage="")
        started: list[str] = []

        def stage(name: str) -> None:
            if started:
                bar.advance(task)
            started.append(name)
            bar.update(task, stage=name)

        yield stage
        bar.update(task, completed=len(stages), stage="done")

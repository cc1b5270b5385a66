"""A real PostgreSQL server for a test session: Debian's package, on a loopback port.

The server runs from a throwaway data folder and stops with the session. PostgreSQL refuses to
run as root, so under root (CI containers) it runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import processes

START_SECONDS = 60
PASSWORD = "regulars-test-only"  # pragma: allowlist secret


def server_binaries() -> Path | None:
    """The folder holding initdb and postgres (Debian keeps them off PATH, per major version)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server(binaries: Path) -> Iterator[str]:
    """Start a server; yield its URL (user `regulars`, database `postgres`)."""
    import psycopg2

    root = Path(tempfile.mkdtemp(prefix="regulars-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()
    # A password, as a production server has (and dlt's PostgreSQL credentials require one).
    password = root / "password"
    password.write_text(PASSWORD)
    if os.geteuid() == 0:
        os.chown(password, user.pw_uid, user.pw_gid)
    initdb = ["-D", str(data), "-U", "regulars", "--pwfile", str(password)]
    initdb += ["-A", "scram-sha-256", "-E", "UTF8", "--locale=C"]
    subprocess.run(
        [*_as_server_user(), str(binaries / "initdb"), *initdb, "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = ["-p", str(port), "-k", str(root), "-c", "listen_addresses=127.0.0.1"]
    server = processes.start(
        [
            *_as_server_user(),
            str(binaries / "postgres"),
            "-D",
            str(data),
            *options,
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql://regulars:{PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                psycopg2.connect(url).close()
                break
            except psycopg2.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start on port {port}") from None
                time.sleep(0.2)
        yield url
    finally:
        processes.stop(server)
        shutil.rmtree(root, ignore_errors=True)

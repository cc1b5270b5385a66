"""Apache Superset on the serving copy: its state, the dashboards in dashboards/, its web server.

`make bi` (`python -m bi.superset serve`) and tests/test_dashboards.py both set Superset up
through this module. It runs in two interpreters, and each side imports its own packages
inside its functions:

- the project's (.venv) decides where things are (the serving copy through regulars.serving,
  Superset's state folder), keeps the secret key, and starts the web server;
- Superset's own (var/superset/venv, `make superset`) does what needs Superset's code, in one
  process because every start of Superset's app costs seconds: upgrade its metadata database,
  create the admin, sync the roles and import dashboards/ (`setup`), or write them back
  (`export`).

Superset 6.1 pins SQLAlchemy 1.4 and a Flask stack that the pipeline's packages (SQLAlchemy 2)
cannot share, hence its own venv; this module is the only bridge between the two.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
VENV = CHECKOUT / "var" / "superset" / "venv"
DASHBOARDS = CHECKOUT / "dashboards"
CONFIG = Path(__file__).resolve().parent / "superset_config.py"

PORT = 8089
# For the local demo on 127.0.0.1 only; README.md says so.
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"  # pragma: allowlist secret

# The connection as dashboards/ keeps it: the default serving copy, relative to the checkout.
# `setup` puts the absolute path of the copy in its place, `export` puts it back.
REPO_SERVING_URI = "duckdb:///warehouse/serving.duckdb?access_mode=read_only"


class NotReady(RuntimeError):
    """Something `make bi` needs first; the message says which command makes it."""


def serving_uri(serving: Path) -> str:
    """Read-only twice over: DuckDB opens the file read-only, and Superset allows no DML."""
    return f"duckdb:///{serving.resolve()}?access_mode=read_only"


def superset_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        raise NotReady(f"No Superset in {VENV.relative_to(CHECKOUT)}: run `make superset` first.")
    return python


# --- The project's side --------------------------------------------------------------------


def default_home() -> Path:
    """var/superset/ (REGULARS_STATE_DIR moves it with the rest of the state)."""
    from regulars.settings import load_settings

    return load_settings().state_dir / "superset"


def default_serving() -> Path:
    from regulars.serving import serving_path
    from regulars.settings import load_settings

    return serving_path(load_settings().warehouse_path)


def environment(home: Path) -> dict[str, str]:
    """Superset's environment: its state and config here, never in the home directory."""
    return {**os.environ, "SUPERSET_HOME": str(home), "SUPERSET_CONFIG_PATH": str(CONFIG)}


def setup(home: Path, serving: Path, dashboards: Path = DASHBOARDS) -> None:
    """Superset's state in `home`, the dashboards imported (overwritten) against `serving`."""
    python = superset_python()
    if not serving.exists():
        raise NotReady(f"No serving copy at {serving}: run `make run` first.")
    home.mkdir(parents=True, exist_ok=True)
    key = home / "secret_key"
    if not key.exists():
        key.touch(mode=0o600)
        key.write_text(secrets.token_urlsafe(48) + "\n")
    print(f"Setting Superset up in {home} with {dashboards}", flush=True)
    inside(python, home, "setup-inside", str(dashboards), serving_uri(serving))


def export(home: Path, dashboards: Path = DASHBOARDS) -> None:
    """Every dashboard, chart, dataset and connection Superset keeps in `home`, into `dashboards`.

    It reads the metadata database, so Superset may be running or not.
    """
    inside(superset_python(), home, "export-inside", str(dashboards))


class SetupFailed(RuntimeError):
    """A step inside Superset failed; the message ends with its log."""


def inside(python: Path, home: Path, step: str, *args: str) -> None:
    """`step` of this module run by Superset's python, its log in `home`/<step>.log."""
    log = home / f"{step}.log"
    # -P: the folder of this file (bi/, with superset.py in it) must not shadow Superset.
    command = [str(python), "-P", __file__, step, *args]
    with log.open("w") as out:
        done = subprocess.run(
            command, env=environment(home), cwd=home, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SetupFailed(f"Superset's {step} failed (exit {done.returncode}), {log}:\n{tail}")


def server_command(port: int = PORT) -> list[str]:
    """Superset's web server (gunicorn) on 127.0.0.1:`port`, run with `environment(home)`.

    One worker process, with threads for a dashboard's charts, which load in parallel; long
    request lines, because Superset puts chart forms in URLs; no control socket, which gunicorn
    would otherwise keep in the home directory.
    """
    return [
        str(VENV / "bin" / "gunicorn"),
        *("--bind", f"127.0.0.1:{port}", "--no-control-socket"),
        *("--workers", "1", "--worker-class", "gthread", "--threads", "8"),
        *("--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0"),
        "superset.app:create_app()",
    ]


def serve(port: int) -> None:
    """What `make bi` runs: set up, then become the web server until Ctrl-C."""
    home, serving = default_home(), default_serving()
    setup(home, serving)
    print(
        f"Superset on http://127.0.0.1:{port} (log in as {ADMIN_USER} / {ADMIN_PASSWORD}), "
        f"reading {serving} read-only. Ctrl-C stops it.",
        flush=True,
    )
    command = server_command(port)
    os.chdir(home)
    os.execve(command[0], command, environment(home))


# --- Superset's side (var/superset/venv) ---------------------------------------------------


def _app():
    from superset.app import create_app

    return create_app()


def _admin():
    from superset import security_manager

    return security_manager.find_user(username=ADMIN_USER)


def setup_inside(dashboards: Path, uri: str) -> None:
    import yaml

    app = _app()
    # Superset's models and commands import only once its app exists.
    from superset.cli.main import superset as cli
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.utils.core import override_user

    with app.app_context():
        runner = app.test_cli_runner()
        for args in (
            ["db", "upgrade"],
            [
                *("fab", "create-admin", "--username", ADMIN_USER, "--password", ADMIN_PASSWORD),
                *("--firstname", "Regulars", "--lastname", "Admin", "--email", "admin@localhost"),
            ],
            ["init"],
        ):
            done = runner.invoke(cli, args)
            if done.exit_code != 0:
                raise SystemExit(f"superset {' '.join(args[:2])} failed:\n{done.output}")
        contents = {
            path.relative_to(dashboards).as_posix(): path.read_text()
            for path in sorted(dashboards.rglob("*.yaml"))
        }
        for name in contents:
            if name.startswith("databases/"):
                database = yaml.safe_load(contents[name])
                database["sqlalchemy_uri"] = uri
                contents[name] = yaml.safe_dump(database, sort_keys=False)
        # Assets, not dashboards: this import overwrites the charts, datasets and connection
        # too, so what the repository says is what Superset shows.
        with override_user(_admin()):
            ImportAssetsCommand(contents).run()


def export_inside(dashboards: Path) -> None:
    import yaml

    app = _app()
    from superset.commands.export.assets import ExportAssetsCommand
    from superset.utils.core import override_user

    with app.app_context(), override_user(_admin()):
        files = {name: content() for name, content in ExportAssetsCommand().run()}
    for old in dashboards.rglob("*.yaml"):
        old.unlink()
    for name, text in _stable_names(files).items():
        if name.startswith("databases/"):
            database = yaml.safe_load(text)
            if database["sqlalchemy_uri"].startswith("duckdb:///"):
                database["sqlalchemy_uri"] = REPO_SERVING_URI
            text = yaml.safe_dump(database, sort_keys=False)
        path = dashboards / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _stable_names(files: dict[str, str]) -> dict[str, str]:
    """File names without the `_<id>` Superset appends, where that leaves them unique.

    Ids differ from one Superset to the next; without them an export from another machine
    changes only the files whose content changed.
    """
    stripped = {name: re.sub(r"_\d+\.yaml$", ".yaml", name) for name in files}
    unique = {new for new in stripped.values() if list(stripped.values()).count(new) == 1}
    return {
        (stripped[name] if stripped[name] in unique else name): text for name, text in files.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bi.superset", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    served = commands.add_parser("serve", help="set up and serve Superset (make bi)")
    served.add_argument("--port", type=int, default=PORT)
    commands.add_parser("export", help="write what Superset holds back to dashboards/")
    # Run by the two commands above, in Superset's venv.
    inner_setup = commands.add_parser("setup-inside")
    inner_setup.add_argument("dashboards", type=Path)
    inner_setup.add_argument("uri")
    inner_export = commands.add_parser("export-inside")
    inner_export.add_argument("dashboards", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.port)
        elif args.command == "export":
            export(default_home())
        elif args.command == "setup-inside":
            setup_inside(args.dashboards, args.uri)
        else:
            export_inside(args.dashboards)
    except (NotReady, SetupFailed) as failed:
        raise SystemExit(str(failed)) from None


if __name__ == "__main__":
    main(sys.argv[1:])

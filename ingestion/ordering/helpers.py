"""Small checks on the ordering source's configuration, run before a load starts."""

from pathlib import Path

from sqlalchemy.engine import make_url


def missing_database(url: str) -> str | None:
    """What is missing when a SQLite ordering DB is not there; None when it is, or is a server.

    SQLAlchemy would otherwise create an empty file and the load would fail later on a missing
    table, which points at the wrong problem.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    if Path(parsed.database).exists():
        return None
    return (
        f"No ordering DB at {parsed.database}. Build the demo world with `regulars simulate "
        "build` (or `make run`), or point SOURCES__ORDERING__CREDENTIALS / .dlt/secrets.toml at "
        "the real database."
    )


def require_database(url: str) -> None:
    """Fail early and clearly when a SQLite ordering DB is missing."""
    missing = missing_database(url)
    if missing:
        raise FileNotFoundError(missing)

"""A load that could not reach its source, told in one paragraph a person can act on.

dlt wraps what a source raised in `PipelineStepFailed`, around the resource's extraction error,
around the requests, urllib3 or SQLAlchemy error, around the socket's: printed whole, that is
four tracebacks for one refused connection. `explain` walks the chain (dlt's `exception`, then
`__cause__` and `__context__`) to the errors that say what happened, and names the settings to
check. An error it does not know (a bug, most likely) gets None: the caller lets it raise with
its traceback, which is what a bug needs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
import sqlalchemy.exc
import urllib3.exceptions
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.pipeline.exceptions import PipelineStepFailed
from sqlalchemy.engine import make_url

from ingestion.ga4.helpers import GA4Error
from ingestion.meta_ads.helpers import MetaAdsError
from ingestion.order_history.helpers import OrderHistoryFileError
from ingestion.source_spec import Source, SourceConfigError
from regulars.settings import ChainConfigError, Settings

# Errors a source raises in words meant for the person running it, settings named.
SOURCE_ERRORS = (GA4Error, MetaAdsError, OrderHistoryFileError)
# Settings that cannot work as written, found before anything is read: their own message says
# which key and what to write (dlt's lists where it looked for a missing one).
CONFIGURATION_ERRORS = (ChainConfigError, SourceConfigError, ConfigurationException)
# Drivers a SQLAlchemy URL can ask for, and their packages: missing, they are a step of the
# set-up, not a bug. SQLAlchemy 2.1 reads `postgresql://` with psycopg (3).
DATABASE_DRIVERS = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
}
CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and every error it wraps, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = current.exception if isinstance(current, PipelineStepFailed) else None
        context = None if current.__suppress_context__ else current.__context__
        current = wrapped or current.__cause__ or context


def interruption(error: BaseException) -> BaseException | None:
    """The Ctrl-C `error` was raised from, if any: a KeyboardInterrupt, or the error an
    orchestrator raises on the signal (Dagster's DagsterExecutionInterruptedError), both
    BaseExceptions that are not Exceptions. DuckDB ("Query interrupted"), dlt and the sources
    wrap it in errors of their own, which read as a step that failed while the run went on."""
    return next(
        (link for link in chain(error) if not isinstance(link, (Exception, GeneratorExit))), None
    )


@contextmanager
def interruptions_stop() -> Iterator[None]:
    """Raise the interruption behind an error as itself, so that whoever runs this stops."""
    try:
        yield
    except Exception as error:
        if (stop := interruption(error)) is None:
            raise
        raise type(stop)() from error


def _first(errors: list[BaseException], kinds) -> BaseException | None:
    return next((error for error in errors if isinstance(error, kinds)), None)


def shown_url(url: str) -> str:
    """A URL as the paragraph shows it: no query (it may carry a token), no user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url


def shown_database_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "(a URL SQLAlchemy cannot read)"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _what_the_network_said(errors: list[BaseException], url: str | None) -> str:
    """'connection refused at <url>', 'no such host ...': the innermost error that says it."""
    at = f" at {url}" if url else ""
    host = urlsplit(url).hostname if url else None
    if _first(errors, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
        return f"no such host{f' {host}' if host else ''} (the DNS lookup failed){at}"
    if _first(errors, ConnectionRefusedError):
        return f"connection refused{at}"
    if _first(errors, (requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError)):
        return f"no answer in time{at}"
    return f"connection failed{at} ({_one_line(errors[-1])})"


def _http(error: requests.HTTPError) -> str:
    request = error.response.request
    method = f"{request.method} " if request is not None and request.method else ""
    return f"HTTP {error.response.status_code} from {method}{shown_url(error.response.url)}"


def _reach(source: Source) -> str:
    return source.address or f"the settings of {source.name} (ingestion/{source.name}/README.md)"


def explain(source: Source, error: BaseException, settings: Settings) -> str | None:
    """One paragraph: which source, what failed (the root cause), what to check; None when
    `error` is not a failure to reach or be let in by the source."""
    errors = list(chain(error))
    lead = f"{source.name} could not be loaded:"
    http = _first(errors, requests.HTTPError)
    http = http if http is not None and http.response is not None else None
    configured = _first(errors, CONFIGURATION_ERRORS)
    if configured is not None:
        return f"{lead} {configured}"
    said = _first(errors, SOURCE_ERRORS)
    if said is not None:
        return f"{lead} {_http(http) + '. ' if http else ''}{_one_line(said)}"
    if http is not None:
        status = http.response.status_code
        if status in (401, 403):
            check = f"Check {source.credentials or _reach(source)}."
        elif status == 429 or status >= 500:
            check = "The service refuses or fails for now: run again later."
        else:
            check = f"Check {_reach(source)}."
        return f"{lead} {_http(http)}. {check}"
    # The ordering DB is the one source read through SQLAlchemy.
    database = _first(errors, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
    if database is not None:
        url = settings.ordering_db_url
        cause = _one_line(database.orig if database.orig is not None else database)
        what = (
            "that the file is a SQLite database this user can read"
            if url.startswith("sqlite")
            else "host, port, database name, user and password, and that the database is up "
            "and reachable from this machine"
        )
        return (
            f"{lead} reading the database at {shown_database_url(url)} failed ({cause}). "
            f"Check {_reach(source)}: {what}."
        )
    driver = _first(errors, ModuleNotFoundError)
    if driver is not None and driver.name in DATABASE_DRIVERS:
        return (
            f"{lead} {shown_database_url(settings.ordering_db_url)} needs the database driver "
            f"{driver.name}, which is not installed here. Install it beside Regulars (pip install "
            f"'{DATABASE_DRIVERS[driver.name]}'), or check {_reach(source)}."
        )
    if _first(errors, CONNECTION_ERRORS) is not None:
        request = next(
            (
                e.request
                for e in errors
                if isinstance(e, requests.RequestException) and e.request is not None
            ),
            None,
        )
        url = shown_url(request.url) if request is not None and request.url else None
        return (
            f"{lead} {_what_the_network_said(errors, url)}. Check {_reach(source)}, and that "
            "the service is up and reachable from this machine (a proxy, a firewall, a VPN)."
        )
    return None

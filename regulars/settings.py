"""Where Regulars reads and writes, resolved once from environment variables.

Every default points inside the checkout, so a fresh clone writes nothing to the home directory.
Production overrides the same variables (or dlt's `.dlt/secrets.toml` for credentials).

- REGULARS_PROJECT_DIR: root of every default below (the checkout), and the folder whose `.dlt/`
  dlt reads wherever a command runs from (unless DLT_PROJECT_DIR names another).
- REGULARS_DATA_DIR: simulated sources, the demo world (<root>/data).
- REGULARS_WAREHOUSE: the DuckDB file dbt and BI read (<root>/warehouse/regulars.duckdb).
- REGULARS_STATE_DIR: dlt pipelines, DAGSTER_HOME, GX Data Docs (<root>/var).
- SOURCES__ORDERING__CREDENTIALS: the ordering DB's SQLAlchemy URL
  (sqlite:///<data>/ordering.sqlite); `.dlt/secrets.toml` works too.
- REGULARS_LANDING_URL: the landing zone, a folder or fsspec URL (<data>/landing).
- SOURCES__ORDER_HISTORY__BUCKET_URL: folder or fsspec URL of order-history files
  (<data>/pos_export); `.dlt/config.toml` works too.
- REGULARS_EXPORT_RETENTION_DAYS: how long audience export files (raw contacts) are kept (30;
  regulars/activation/retention.py).
- REGULARS_GX_DATA_DOCS: 0 turns off the gate's GX Data Docs pages (on by default).
- The chain itself (`[chain]` in `.dlt/config.toml`, or CHAIN__TIMEZONE, CHAIN__CURRENCY,
  CHAIN__COUNTRY, CHAIN__OPENED_ON, CHAIN__PARTITIONS_START, CHAIN__TODAY,
  CHAIN__PROVINCE_TIMEZONES): see `Chain`.
- REGULARS_DESTINATION: where dlt lands and the lake lives: `duckdb` (the warehouse file, the
  default) or `filesystem` (Parquet files under DESTINATION__FILESYSTEM__BUCKET_URL, default
  <warehouse dir>/lake; any fsspec URL in production). dbt reads the lake through views either way.
- REGULARS_ENGINE: what dbt builds on, its target in dbt_project/profiles.yml: `duckdb` (the
  warehouse file, the default) or `spark` (Apache Spark over the Parquet lake, so the destination
  is `filesystem` by default). REGULARS_SPARK_DIR: the local session's metastore and tables
  (<state dir>/spark); REGULARS_SPARK_WAREHOUSE: the tables' root, if elsewhere. dbt's profile
  reads both; Dagster reads the marts Spark built from there (regulars/warehouse.py).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

CHECKOUT_DIR = Path(__file__).resolve().parent.parent
DESTINATIONS = ("duckdb", "filesystem")
ENGINES = ("duckdb", "spark")

# DuckDB in dbt's process holds at most this much before it spills to disk, and in the other
# processes on the warehouse (dlt's loads and the gate's, forget, suppression, activation) the
# share below. DuckDB's own default is 80% of the machine's memory, which two processes at once
# (dbt and Dagster's) can exceed.
# DuckDB fills its limit while it loads or builds a large table, so the limit is most of a run's
# peak: at 3 GB a 100,000-guest year stays within 6 GB, Dagster's process and dbt's together.
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
# Regulars' own processes (Dagster's steps, the command line) give DuckDB this share of the limit:
# they hold dlt's and GX's data beside it, while dbt's process is DuckDB's alone. Landing a
# 100,000-guest year of events took the process to 4.57 GiB under 3GB, 3.06 GiB under 1.5GB, in
# 151 and 156 s; its gate took 46.5 and 50.9 s.
STEPS_SHARE_OF_DUCKDB_MEMORY = 0.5
_MEMORY_AMOUNT = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE
)


# No row predates this unless the chain says it opened earlier: older values are zero dates, epochs
# and parsing accidents, while a real chain's decades-old POS export still passes.
EARLIEST_PLAUSIBLE_DAY = date(1990, 1, 1)


class ChainConfigError(ValueError):
    """A `[chain]` value that cannot be used; the message names the key and what to write."""


@dataclass(frozen=True)
class Chain:
    """The restaurant chain: its clock, its money and its calendar, set once in `[chain]`.

    - timezone: the IANA zone its stores keep (default UTC). Date-only values are local dates
      here, schedules run on this clock and daily figures count the chain's local day.
    - currency: ISO 4217 code of the money columns (default unset: amounts are numbers in "the
      chain's currency"). The money marts carry it as `currency` (dbt var `chain_currency`), GA4
      is asked for revenue in it, and it gives an order history in cents its minor units.
    - country: ISO 3166-1 alpha-2 code of the stores' country (default unset). A phone number
      written without its country code (`0812...`, `(650) 555-1212`) is taken to be from here
      when it is matched, hashed for Meta and Google, or forgotten; unset, such numbers match
      nothing rather than a guess.
    - opened_on: the oldest day a row may carry; the gate quarantines older ones (default
      1990-01-01, before which a value is an accident, not a record).
    - partitions_start: the first day of the day-partitioned facts (sessions from app and web
      events, service levels from API telemetry): the day those channels began (default
      opened_on).
    - today: the chain's current day (default the wall clock in its time zone). The demo sets
      it to the simulated world's day, so a world from 2025 is not a chain closed since.
    - province_timezones: the IANA zone of the stores of a province (as the ordering DB's
      `stores.province` writes it) whose stores keep another zone than `timezone`, for a chain
      across zones (Bali's WITA beside Jakarta's WIB, Illinois beside New York). The hour of day
      an order was placed at its store (the clusters' day-parts) reads it; days still count in
      `timezone`, so that the chain has one calendar.
    """

    timezone: str = "UTC"
    currency: str | None = None
    country: str | None = None
    opened_on: date | None = None
    partitions_start: date | None = None
    today: date | None = None
    # Pairs, sorted, so that the chain stays immutable and hashable.
    province_timezones: tuple[tuple[str, str], ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def earliest_day(self) -> date:
        return self.opened_on or EARLIEST_PLAUSIBLE_DAY

    @property
    def first_partition_day(self) -> date:
        return self.partitions_start or self.earliest_day

    def current_day(self) -> date:
        return self.today or datetime.now(self.zone).date()

    @property
    def phone_country_code(self) -> str | None:
        """The country's calling code (`62`, `1`), what a national phone number lacks."""
        return calling_code(self.country)

    def dbt_vars(self) -> dict[str, str | dict[str, str] | None]:
        """What dbt needs of the chain, passed on every invocation (dbt_project.yml keeps only
        defaults, for a `dbt build` by hand)."""
        return {
            "chain_timezone": self.timezone,
            "chain_phone_country_code": self.phone_country_code,
            "chain_currency": self.currency,
            "chain_province_timezones": dict(self.province_timezones),
        }


@functools.cache
def calling_code(country: str | None) -> str | None:
    if country is None:
        return None
    code = phonenumbers.country_code_for_region(country.upper())
    return str(code) if code else None


def chain_phone_country_code() -> str | None:
    """`[chain] country`'s calling code, read once per value of CHAIN__COUNTRY: phone
    normalisation asks for it row by row."""
    return _configured_calling_code(os.environ.get("CHAIN__COUNTRY"))


@functools.cache
def _configured_calling_code(environment_value: str | None) -> str | None:
    return calling_code(_chain_country())


def chain_setting(key: str):
    """CHAIN__<KEY> from the environment, else `[chain] <key>` from `.dlt/config.toml`."""
    configured = os.environ.get(f"CHAIN__{key.upper()}")
    if configured is not None:
        return configured or None
    import dlt

    return dlt.config.get(f"chain.{key}")


def _chain_day(key: str) -> date | None:
    value = chain_setting(key)
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ChainConfigError(
            f"[chain] {key} = {value!r} is not a date: write it as YYYY-MM-DD "
            f"(in .dlt/config.toml, or CHAIN__{key.upper()} in the environment)."
        ) from None


def _chain_country() -> str | None:
    country = chain_setting("country")
    if country is None:
        return None
    country = str(country).strip().upper()
    if calling_code(country) is None:
        raise ChainConfigError(
            f"[chain] country = {country!r} is not an ISO 3166-1 country code: write two letters "
            "such as 'ID' or 'US' (CHAIN__COUNTRY in the environment)."
        )
    return country


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _province_timezones() -> tuple[tuple[str, str], ...]:
    value = chain_setting("province_timezones")
    if value is None:
        return ()
    how = (
        "write a table of province = IANA zone, as [chain.province_timezones] with "
        '"Bali" = "Asia/Makassar" in .dlt/config.toml, or CHAIN__PROVINCE_TIMEZONES=\'{"Bali": '
        '"Asia/Makassar"}\' in the environment'
    )
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, Mapping):
        raise ChainConfigError(f"[chain] province_timezones is not a table: {how}.")
    for province, zone in value.items():
        if not isinstance(zone, str) or not _is_zone(zone):
            raise ChainConfigError(
                f"[chain] province_timezones: {province} = {zone!r} is not an IANA time zone: "
                f"{how}."
            )
    return tuple(sorted((str(province), zone) for province, zone in value.items()))


def load_chain() -> Chain:
    timezone = str(chain_setting("timezone") or Chain.timezone)
    if not _is_zone(timezone):
        raise ChainConfigError(
            f"[chain] timezone = {timezone!r} is not an IANA time zone: write one such as "
            "'Asia/Jakarta' or 'America/New_York' (CHAIN__TIMEZONE in the environment)."
        )
    currency = chain_setting("currency")
    if currency is not None:
        currency = str(currency).strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ChainConfigError(
                f"[chain] currency = {currency!r} is not an ISO 4217 code: write three letters "
                "such as 'IDR' or 'USD' (CHAIN__CURRENCY in the environment)."
            )
    chain = Chain(
        timezone=timezone,
        currency=currency,
        country=_chain_country(),
        opened_on=_chain_day("opened_on"),
        partitions_start=_chain_day("partitions_start"),
        today=_chain_day("today"),
        province_timezones=_province_timezones(),
    )
    if chain.first_partition_day > chain.current_day():
        raise ChainConfigError(
            f"[chain] partitions_start = {chain.first_partition_day} (or opened_on, its default) "
            f"is after the chain's today ({chain.current_day()}): set it to a past day."
        )
    return chain


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    data_dir: Path
    warehouse_path: Path
    state_dir: Path

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt_project"

    @property
    def duckdb_memory_limit(self) -> str:
        """REGULARS_DUCKDB_MEMORY_LIMIT, as DuckDB writes amounts ("4GB", "1.5GiB")."""
        limit = os.environ.get("REGULARS_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)
        if not _MEMORY_AMOUNT.match(limit):
            raise ValueError(
                f"REGULARS_DUCKDB_MEMORY_LIMIT={limit!r} is not an amount DuckDB reads: "
                "write a number and a unit, such as 4GB or 1500MiB."
            )
        return limit.strip()

    @property
    def duckdb_steps_memory_limit(self) -> str:
        """DuckDB's limit in Regulars' own processes: STEPS_SHARE_OF_DUCKDB_MEMORY of
        duckdb_memory_limit, in its unit ("3GB" gives "1.5GB"). dbt's process has the whole."""
        amount = _MEMORY_AMOUNT.match(self.duckdb_memory_limit)
        number = float(amount.group(1)) * STEPS_SHARE_OF_DUCKDB_MEMORY
        return f"{number:g}{amount.group(2)}"

    @property
    def duckdb_temp_directory(self) -> Path:
        """Where DuckDB spills what exceeds its memory limit (REGULARS_DUCKDB_TEMP_DIRECTORY)."""
        configured = os.environ.get("REGULARS_DUCKDB_TEMP_DIRECTORY")
        return Path(configured).resolve() if configured else self.state_dir / "duckdb_spill"

    @property
    def duckdb_config(self) -> dict[str, str]:
        """The settings every DuckDB connection of Regulars applies (`SET` at runtime, so that
        connections of one process to one file never disagree on their opening config)."""
        return {
            "memory_limit": self.duckdb_steps_memory_limit,
            "temp_directory": str(self.duckdb_temp_directory),
        }

    @property
    def spark_dir(self) -> Path:
        """REGULARS_SPARK_DIR: the local Spark session's metastore (and its tables, by default)."""
        configured = os.environ.get("REGULARS_SPARK_DIR")
        return Path(configured).resolve() if configured else self.state_dir / "spark"

    @property
    def spark_warehouse(self) -> str:
        """REGULARS_SPARK_WAREHOUSE: where Spark keeps the tables dbt builds (its
        spark.sql.warehouse.dir), a folder or an object-storage URL; <spark dir>/warehouse."""
        configured = os.environ.get("REGULARS_SPARK_WAREHOUSE")
        return configured.rstrip("/") if configured else str(self.spark_dir / "warehouse")

    @property
    def dlt_pipelines_dir(self) -> Path:
        return self.state_dir / "dlt_pipelines"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"

    @property
    def gx_docs_dir(self) -> Path:
        return self.state_dir / "gx_data_docs"

    @property
    def data_docs_dir(self) -> Path | None:
        """Where the gate renders GX Data Docs; None when REGULARS_GX_DATA_DOCS is 0.

        Rendering a page per validation costs seconds a batch; the test suite turns it off
        except where it checks the pages.
        """
        enabled = os.environ.get("REGULARS_GX_DATA_DOCS", "1").strip().lower()
        return None if enabled in ("0", "false", "no", "off") else self.gx_docs_dir

    @property
    def chain(self) -> Chain:
        """Read when asked, like the other settings, so a command's environment is what counts."""
        return load_chain()

    @property
    def ordering_db_path(self) -> Path:
        return self.data_dir / "ordering.sqlite"

    @property
    def ordering_db_url(self) -> str:
        """The ordering DB's SQLAlchemy URL: dlt's config wins, else the simulated SQLite file."""
        configured = os.environ.get("SOURCES__ORDERING__CREDENTIALS")
        if configured:
            return configured
        import dlt  # deferred: the CLI's --help should not pay for importing dlt

        from_toml = dlt.secrets.get("sources.ordering.credentials")
        return str(from_toml) if from_toml else f"sqlite:///{self.ordering_db_path}"

    @property
    def landing_url(self) -> str:
        """The landing zone the chain's systems and the collector drop files into."""
        configured = os.environ.get("REGULARS_LANDING_URL")
        return configured or str(self.data_dir / "landing")

    @property
    def destination(self) -> str:
        """`duckdb` (lake tables inside the warehouse file) or `filesystem` (Parquet files).
        Spark reads only the Parquet lake, so with REGULARS_ENGINE=spark that is the default."""
        if os.environ.get("REGULARS_ENGINE", "").strip().lower() == "spark":
            return _one_of("REGULARS_DESTINATION", ("filesystem", "duckdb"))
        return _one_of("REGULARS_DESTINATION", DESTINATIONS)

    @property
    def engine(self) -> str:
        """What dbt builds the models on: `duckdb`, or `spark` over the Parquet lake."""
        chosen = _one_of("REGULARS_ENGINE", ENGINES)
        if chosen == "spark" and self.destination != "filesystem":
            raise ValueError(
                "REGULARS_ENGINE=spark reads the Parquet lake, and REGULARS_DESTINATION=duckdb "
                "lands the lake in the warehouse file: unset REGULARS_DESTINATION, or set it "
                "to filesystem."
            )
        return chosen

    @property
    def lake_bucket_url(self) -> str:
        """Root of the Parquet lake when the destination is `filesystem`."""
        configured = os.environ.get("DESTINATION__FILESYSTEM__BUCKET_URL")
        if configured:
            return configured
        import dlt

        from_toml = dlt.config.get("destination.filesystem.bucket_url")
        return str(from_toml) if from_toml else str(self.warehouse_path.parent / "lake")

    @property
    def order_history_url(self) -> str:
        """Where order-history files are: dlt's config wins, else the simulated POS export."""
        configured = os.environ.get("SOURCES__ORDER_HISTORY__BUCKET_URL")
        if configured:
            return configured
        import dlt

        from_toml = dlt.config.get("sources.order_history.bucket_url")
        return str(from_toml) if from_toml else str(self.data_dir / "pos_export")


def spark_missing() -> str | None:
    """What this machine lacks to build on Spark, as one line saying what to install; None when
    it lacks nothing. Asked before a run on Spark, whose dbt step would otherwise fail minutes
    in, after the landing, with a JVM's page of errors."""
    import importlib.util
    import subprocess

    if not all(importlib.util.find_spec(name) for name in ("pyspark", "dbt.adapters.spark")):
        return "pyspark and dbt-spark are not installed: run `make spark` (the `spark` extra)."
    java = shutil.which("java")
    if java is None:
        return "Spark 4 needs Java 17, and there is no `java` here: run `make java`."
    shown = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if not re.search(r'version "(17|21)[."]', shown):
        first = shown.splitlines()[0] if shown else "no version"
        return f"Spark 4 needs Java 17 or 21, and `java` here is {first}: run `make java`."
    return None


def _one_of(variable: str, choices: tuple[str, ...]) -> str:
    """The environment's choice among `choices`, the first by default."""
    chosen = os.environ.get(variable, choices[0]).strip().lower()
    if chosen not in choices:
        raise ValueError(
            f"{variable}={chosen!r} is not one Regulars knows: set it to {' or '.join(choices)}."
        )
    return chosen


def load_settings() -> Settings:
    """Read the environment now (tests point it at a temporary directory before calling)."""
    project_dir = Path(os.environ.get("REGULARS_PROJECT_DIR", CHECKOUT_DIR)).resolve()
    data_dir = Path(os.environ.get("REGULARS_DATA_DIR", project_dir / "data")).resolve()
    warehouse = Path(
        os.environ.get("REGULARS_WAREHOUSE", project_dir / "warehouse" / "regulars.duckdb")
    ).resolve()
    state_dir = Path(os.environ.get("REGULARS_STATE_DIR", project_dir / "var")).resolve()
    # dlt reads `.dlt/` (config.toml, secrets.toml) from the working directory unless
    # DLT_PROJECT_DIR names another: run from outside the checkout, a command found none, so the
    # order history's column mapping was missing and the chain's own `[chain]` settings fell back
    # to the defaults without a word. Set before any dlt configuration is read (dlt keeps the
    # folder it first read); a DLT_PROJECT_DIR already set wins.
    os.environ.setdefault("DLT_PROJECT_DIR", str(project_dir))
    return Settings(
        project_dir=project_dir,
        data_dir=data_dir,
        warehouse_path=warehouse,
        state_dir=state_dir,
    )


# The embedded DuckDB file takes one writer: one run at a time, one warehouse step at a time.
DAGSTER_INSTANCE_CONFIG = """\
# Written by Regulars on first use; edit freely, it is not overwritten.
concurrency:
  runs:
    max_concurrent_runs: 1
  pools:
    default_limit: 1
run_retries:
  enabled: true
telemetry:
  enabled: false
# Dagster's SQLite event log in Dagster's own files, written without rebuilding a database engine
# for every event (orchestration/instance_storage.py). Remove it for Dagster's default.
event_log_storage:
  module: orchestration.instance_storage
  class: PooledSqliteEventLogStorage
  config:
    dagster_home:
      env: DAGSTER_HOME
"""


def prepare_dagster_home(dagster_home: Path) -> None:
    """The instance folder, with Regulars' instance config the first time."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text(DAGSTER_INSTANCE_CONFIG)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` set in this process (and the processes it starts) for the length of the block."""
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def export_environment(settings: Settings) -> None:
    """Pin the resolved paths into this process's environment.

    dbt (a subprocess of dagster-dbt) reads REGULARS_WAREHOUSE and DuckDB's limits from its
    profile, and Dagster reads DAGSTER_HOME: both must see the same values as the Python code.
    """
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    prepare_dagster_home(Path(os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))))
    os.environ["REGULARS_WAREHOUSE"] = str(settings.warehouse_path)
    # dbt's profile reads these: dbt's process gives DuckDB the whole limit, the Python steps
    # their share of it (Settings.duckdb_steps_memory_limit).
    os.environ["REGULARS_DUCKDB_MEMORY_LIMIT"] = settings.duckdb_memory_limit
    os.environ["REGULARS_DUCKDB_TEMP_DIRECTORY"] = str(settings.duckdb_temp_directory)
    venv_bin = str(Path(beside_python("python")).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


def beside_python(program: str) -> str:
    """The virtual environment's own `program` (dbt, dagster), so no process needs PATH set up
    by hand; else whatever PATH finds."""
    here = Path(sys.executable).parent / program
    return str(here) if here.exists() else (shutil.which(program) or program)

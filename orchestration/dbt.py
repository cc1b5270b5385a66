"""dbt models, seeds and snapshots as assets (dagster-dbt), keyed and grouped by rule."""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.compat import DBT_PYTHON_VERSION

from orchestration.fit_metadata import fit_metadata
from orchestration.pools import WAREHOUSE_POOL, wait_for_the_warehouse
from regulars.settings import Chain, Settings, beside_python, environment
from regulars.warehouse import BuiltTable, expose_spark_tables

if TYPE_CHECKING:
    from packaging.version import Version

# Runs in the launcher's interpreter, then becomes dbt (exec keeps the pid and the setting).
# prctl(PR_SET_PDEATHSIG = 1): the kernel sends SIGKILL to this process when the thread that
# started it dies. A SIGKILL of the parent runs no handler of its own, so this is the only way
# dbt does not go on writing the warehouse for a run that is already over. dagster-dbt starts
# dbt with its own `subprocess.Popen` and takes no preexec_fn, hence a launcher as its executable.
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
if os.getppid() == 1:
    sys.exit("dbt not started: the process that asked for it is gone")
os.execv(sys.argv[1], sys.argv[1:])
"""


def dbt_launcher(settings: Settings) -> str:
    """dbt as Dagster runs it: a launcher in the state folder that points dbt's profile at this
    code location's warehouse and, on Linux, makes dbt die with the process that started it.

    The warehouse is set here, not in this process's environment: loading the definitions
    changes nothing around it. The launcher checks only for init as the new parent: a parent
    killed in the milliseconds between its fork and the prctl, under a subreaper, leaves that
    one dbt running.

    On Spark the launcher runs dbt's command line through regulars.spark_python_models, which
    first gives dbt-spark a way to run the Python models in dbt's own Spark session (dbt-spark
    alone sends them to Databricks).
    """
    pinned = {"REGULARS_WAREHOUSE": str(settings.warehouse_path)}
    if settings.engine == "spark":
        dbt = f"{shlex.quote(sys.executable)} -m regulars.spark_python_models"
        # Where Spark keeps its tables is where Dagster reads the marts from (after_dbt).
        pinned["REGULARS_SPARK_DIR"] = str(settings.spark_dir)
        pinned["REGULARS_SPARK_WAREHOUSE"] = settings.spark_warehouse
    else:
        dbt = shlex.quote(beside_python("dbt"))
    if sys.platform.startswith("linux"):
        dbt = f"{shlex.quote(sys.executable)} -I -S -c {shlex.quote(_DIE_WITH_PARENT)} {dbt}"
    script = (
        "#!/bin/sh\n"
        "# Written by Regulars (orchestration/dbt.py): dbt on this warehouse, killed when its\n"
        "# parent dies.\n"
        + "".join(f"{name}={shlex.quote(value)}\nexport {name}\n" for name, value in pinned.items())
        + f'exec {dbt} "$@"\n'
    )
    launcher = settings.state_dir / "bin" / "dbt"
    if not launcher.exists() or launcher.read_text() != script:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a `dagster dev` and a `regulars materialize` may both write.
        written = launcher.with_name(f".dbt.{os.getpid()}")
        written.write_text(script)
        written.chmod(0o755)
        written.replace(launcher)
    return str(launcher)


class RegularsDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two things Regulars does not use, each paid on every
    dbt step before dbt starts:

    - `dbt --version`, run once per run to tell dbt-core from the Fusion engine (2 s here): the
      launcher runs this environment's dbt-core, whose version dagster-dbt has already read from
      the installed package;
    - a dbt adapter built in Dagster's process (0.9 s a step here), which only dagster-dbt's
      `fetch_row_counts` and `fetch_column_metadata` use: Regulars counts rows once dbt has
      released the warehouse (`after_dbt`).
    """

    @cached_property
    def _cli_version(self) -> "Version":
        return DBT_PYTHON_VERSION or DbtCliResource._cli_version.func(self)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


# The event-heavy incremental facts are tagged so in dbt and rebuilt by day partition; the rest,
# including incremental tables that only accumulate (clv_model_runs), by whole runs.
DAY_PARTITIONED_TAG = "day_partitioned"


class RegularsDbtTranslator(DagsterDbtTranslator):
    """An asset key is the relation it names: `<schema>/<table>`.

    A dbt source's schema is the lake dataset its dlt gate writes (`raw_ordering`), so sources
    resolve to the gate's assets without any per-source meta. Groups follow the folder: the
    layer (`staging`, `intermediate`), or `marts_<domain>` for marts. Models tagged
    `day_partitioned` have `days` as their partitions (none without it).
    """

    def __init__(self, days: dg.PartitionsDefinition | None = None) -> None:
        super().__init__()
        self.days = days

    def get_partitions_def(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.PartitionsDefinition | None:
        if self.days is not None and DAY_PARTITIONED_TAG in dbt_resource_props.get("tags", ()):
            return self.days
        return None

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["identifier"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["alias"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folders = dbt_resource_props["fqn"][1:-1]
        if not folders:
            return "dbt"
        if folders[0] == "marts" and len(folders) > 1:
            return f"marts_{folders[1]}"
        return folders[0]

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return ["team:analytics-engineering"]

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=check_description(manifest["nodes"][unique_id]))


def check_description(test: Mapping[str, Any]) -> str:
    """What a dbt data test checks, in a line, for a test whose yml gives no description: its
    generic test and arguments, or a singular test's file."""
    if test.get("description"):
        return test["description"]
    severity = (test.get("config", {}).get("severity") or "error").lower()
    outcome = "fails the build" if severity == "error" else "warns"
    generic = test.get("test_metadata")
    if not generic:
        return f"Singular test `{test['original_file_path']}`: {outcome} on any row it returns."
    kwargs = {k: v for k, v in generic.get("kwargs", {}).items() if k != "model"}
    column = kwargs.pop("column_name", None)
    name = ".".join(filter(None, [generic.get("namespace"), generic["name"]]))
    on = f" on `{column}`" if column else ""
    arguments = ", ".join(f"{key}={value}" for key, value in sorted(kwargs.items()))
    return f"`{name}`{on}{f' ({arguments})' if arguments else ''}: {outcome} when it finds rows."


# dbt unit tests check SQL logic against rows fixed in yml: their verdict depends on the code alone,
# not on the data a run brings, so runs skip them and `tests/test_dbt_unit_tests.py` (CI) runs them.
BUILD = ["build", "--exclude-resource-type", "unit_test"]

# The statistical fits (dbt Python models and the SQL that feeds or splits them), tagged in
# dbt_project.yml. Runs that only check plumbing leave them out: their tables stay as they were.
ANALYTICS = dg.AssetSelection.tag("analytics", "")


def dbt_project(settings: Settings) -> DbtProject:
    project = DbtProject(project_dir=settings.dbt_project_dir)
    # Under `dagster dev` the code location parses at every load, as dagster-dbt's
    # `prepare_if_dev` does (same condition), but only where something changed, and through
    # `prepare`: dagster-dbt's writes the manifest in place, which a run loading the code location
    # meanwhile read half of (a clean-clone CI run failed so while the UI test's code server
    # loaded), and without the chain's vars, which threw away dbt's partial parse. Outside it the
    # manifest is built once; `regulars materialize` refreshes it.
    if os.environ.get("DAGSTER_IS_DEV_CLI") or not project.manifest_path.exists():
        prepare_if_changed(project, settings)
    return project


# What a parse leaves that the next parse and the code location read.
PARSE_ARTIFACTS = ("partial_parse.msgpack", "manifest.json")


class DbtParseError(RuntimeError):
    """dbt could not parse the project; the message has dbt's own lines naming the file."""


# Beside the manifest: what the parse that wrote it read (`parse_inputs`).
PARSE_INPUTS_FILE = "regulars_parse_inputs.sha256"
# Environment variables a parse can read by a name no file spells whole
# (macros/partition_window.sql's `'REGULARS_' ~ name`), and dbt's own settings.
PARSED_ENVIRONMENT_PREFIXES = ("REGULARS_", "DBT_")
_ENV_VAR_NAME = re.compile(rb"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
_DBT_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-spark")


def parse_inputs(project: DbtProject, settings: Settings) -> str:
    """A digest of everything a parse of the project reads: its files and the profile's, the
    chain's vars, the environment variables they name, dbt's version, and the artifacts the last
    parse left (a `dbt parse` by hand with other vars replaces them)."""
    project_dir = Path(project.project_dir)
    target = project_dir / project.target_path
    # Not walked at all: target/ holds every dagster-dbt invocation's folder.
    skipped = {target, project_dir / "logs", project_dir / "dbt_packages"}
    files = []
    for folder, subfolders, names in os.walk(project_dir):
        subfolders[:] = [name for name in subfolders if Path(folder, name) not in skipped]
        files.extend(Path(folder, name) for name in names)
    files.sort()
    profile = Path(project.profiles_dir) / "profiles.yml"
    if profile.is_file() and profile not in files:
        files.append(profile)
    digest = hashlib.sha256()
    named: set[str] = set()
    for path in files:
        content = path.read_bytes()
        named.update(name.decode() for name in _ENV_VAR_NAME.findall(content))
        where = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
        digest.update(f"{where}\0".encode())
        digest.update(hashlib.sha256(content).digest())
    for name in sorted(os.environ):
        if name in named or name.startswith(PARSED_ENVIRONMENT_PREFIXES):
            digest.update(f"{name}={os.environ[name]}\0".encode())
    digest.update("\0".join(chain_vars(settings)).encode())
    for distribution in _DBT_DISTRIBUTIONS:
        with suppress(metadata.PackageNotFoundError):
            digest.update(f"{distribution}=={metadata.version(distribution)}\0".encode())
    for name in PARSE_ARTIFACTS:
        artifact = target / name
        if artifact.exists():
            stat = artifact.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def prepare_if_changed(project: DbtProject, settings: Settings) -> bool:
    """`prepare` when something a parse reads changed since the last one; whether it parsed.

    dbt itself would find nothing changed, but only after starting (about 3 s: its imports, the
    profile, writing the manifest again), before every `regulars materialize`.
    """
    recorded = Path(project.project_dir) / project.target_path / PARSE_INPUTS_FILE
    if (
        project.manifest_path.exists()
        and recorded.exists()
        and recorded.read_text().strip() == parse_inputs(project, settings)
    ):
        return False
    prepare(project, settings)
    return True


def prepare(project: DbtProject, settings: Settings) -> None:
    """Parse the project with the vars the runs pass: dbt keeps its partial parse only while
    they stay the same, and every run would otherwise parse the whole project again.

    dbt writes the manifest in place, and another process (the UI's code server, a second
    command) loading the code location meanwhile reads half a file. So the parse writes to a
    folder of its own, seeded with the last partial parse, and its artifacts are renamed into
    the target folder: a reader gets the previous manifest or the new one.

    dbt is started directly, not through dagster-dbt's resource, which first runs
    `dbt --version` in a process of its own (2 s here, as long as the parse itself).
    """
    target = Path(project.project_dir) / project.target_path
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
    try:
        if (target / PARSE_ARTIFACTS[0]).exists():
            shutil.copy2(target / PARSE_ARTIFACTS[0], scratch / PARSE_ARTIFACTS[0])
        parse = subprocess.run(
            [
                dbt_launcher(settings),
                *("parse", "--quiet", "--no-use-colors", *chain_vars(settings)),
                *("--project-dir", str(project.project_dir)),
                *("--profiles-dir", str(project.profiles_dir)),
                *("--target-path", str(scratch), "--log-path", str(scratch)),
            ],
            cwd=project.project_dir,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            capture_output=True,
            text=True,
        )
        if parse.returncode != 0:
            said = (parse.stdout + parse.stderr).strip()
            raise DbtParseError(
                f"dbt could not parse {project.project_dir}:\n{said}\n"
                "Fix what dbt names above, then run again."
            )
        for name in PARSE_ARTIFACTS:
            os.replace(scratch / name, target / name)
        (target / PARSE_INPUTS_FILE).write_text(parse_inputs(project, settings) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# Sources whose data the day-partitioned facts hold: fct_sessions (app and web events, the
# platform's orders) and service_levels (API telemetry). Kept by hand, not read from the lineage:
# the lineage also reaches order history (through identity stitching), and a 1997 POS export
# would then make a run plan ten thousand daily partitions for facts that hold none of its days.
DAY_PARTITIONED_SOURCES = ("events", "ordering", "telemetry")


def daily_partitions(chain: Chain) -> dg.DailyPartitionsDefinition:
    """One partition per local day of the chain, from its first partitioned day to its today.

    The range is the chain's own: a constant start would leave a real chain's earlier days
    without a partition, and every day of it is planned (and checked) in a run over all days.
    """
    today = chain.today
    return dg.DailyPartitionsDefinition(
        start_date=chain.first_partition_day.isoformat(),
        # A chain with a fixed today (the demo's simulated day) ends there; otherwise the
        # partitions grow with the clock, today's included while it fills.
        end_date=(today + timedelta(days=1)).isoformat() if today else None,
        end_offset=0 if today else 1,
        timezone=chain.timezone,
    )


def chain_vars(settings: Settings) -> list[str]:
    """The chain's dbt vars: the same for every run, so dbt keeps its partial parse."""
    return ["--vars", json.dumps(settings.chain.dbt_vars())]


@contextmanager
def partition_window(context: dg.AssetExecutionContext) -> Iterator[None]:
    """The partitions' days, end exclusive, in the environment a dbt process started inside
    inherits: an incremental model rewrites exactly those days (macros/partition_window.sql).

    Not `--vars`: a var that changes every run makes dbt parse the whole project again (5 s
    here), while a changed environment variable re-parses only the two models that read it.

    Nothing when the step builds no day-partitioned model (its selection's partitions are
    none), even in a run over a partition range.
    """
    if context.assets_def.partitions_def is None:
        yield
        return
    window = context.partition_time_window
    bounds = {
        "REGULARS_WINDOW_START": window.start.date().isoformat(),
        "REGULARS_WINDOW_END": window.end.date().isoformat(),
    }
    with environment(bounds):
        yield


@contextmanager
def backfill_test_selection(context: dg.AssetExecutionContext) -> Iterator[None]:
    """In a backfill's run, dbt's `buildable` indirect selection: the tests whose models this run
    builds or builds upon, not a relationship test that reaches a model of another run.

    An asset backfill (`Materialize all` in the UI, over days) cuts the dbt asset into runs along
    the lineage, the day-partitioned models apart from the rest. With dbt's default (eager) a run
    also started the relationship tests of its models towards models of a later run, and on a
    new warehouse those tables did not exist yet: three of a fresh world's seven runs failed, in
    an order that changed from one backfill to the next. A run outside backfills keeps the
    default, and DBT_INDIRECT_SELECTION, when set, wins.
    """
    if BACKFILL_ID_TAG not in context.run.tags or os.environ.get("DBT_INDIRECT_SELECTION"):
        yield
        return
    with environment({"DBT_INDIRECT_SELECTION": "buildable"}):
        yield


# Materialisations that leave a table to count. A view's count would run its query (as
# dagster-dbt's own `fetch_row_counts`, they are left out); an ephemeral model leaves nothing.
COUNTED = frozenset({"table", "incremental", "seed", "snapshot"})


def after_dbt(
    context: dg.AssetExecutionContext, invocation: DbtCliInvocation, settings: Settings
) -> Iterator[Any]:
    """dbt's events, sent once dbt has exited: each table's materialisation with its
    `dagster/row_count`, each fit's with its figures (orchestration.fit_metadata).

    dagster-dbt's `fetch_row_counts` queries while dbt runs, but dbt holds the DuckDB file (one
    writer per file, and no reader beside it from another process): the warehouse is read here
    once dbt has released it, so every event waits for the end of the build, in dbt's order.

    On Spark, the tables dbt built first become views in the warehouse file over their Parquet
    files (regulars.warehouse.expose_spark_tables): the figures, and every asset downstream
    (audiences, the serving copy), then read what Spark built.
    """
    held: list[Any] = []
    try:
        try:
            held.extend(invocation.stream())
        except Exception:
            # dbt failed later in the build: what it did materialise is still reported.
            yield from _with_figures(context, held, settings, invocation)
            raise
        yield from _with_figures(context, held, settings, invocation)
    finally:
        prune_invocation_folders(invocation.target_path)


# dagster-dbt gives every dbt invocation a folder of its own under target/ (`<asset>-<run>-<id>`:
# artifacts, compiled SQL, dbt's log), and never removes one: about 24 MB each at 100,000
# guests, two a run, so a chain running daily would fill a disk over the years. The newest stay
# for looking into recent runs.
KEPT_INVOCATION_FOLDERS = 10


def prune_invocation_folders(target_path: Path, keep: int = KEPT_INVOCATION_FOLDERS) -> None:
    """Remove all but the newest `keep` invocation folders of the asset `target_path` is one of."""
    asset = target_path.name.rsplit("-", 2)[0]
    folders = sorted(
        (
            folder
            for folder in target_path.parent.glob(f"{asset}-*-*")
            if folder.is_dir() and folder.name.rsplit("-", 2)[0] == asset
        ),
        key=lambda folder: folder.stat().st_mtime,
    )
    for folder in folders[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


def _with_figures(
    context: dg.AssetExecutionContext,
    held: list[Any],
    settings: Settings,
    invocation: DbtCliInvocation,
) -> Iterator[Any]:
    if not held:
        return
    built = built_tables(_invocation_manifest(invocation))
    tables = {id(event): built.get(_unique_id(event)) for event in held}
    if settings.engine == "spark":
        exposed = {table.relation: table for table in tables.values() if table is not None}
        for table, why in expose_spark_tables(settings, exposed.values()).items():
            context.log.warning(f"{table} built on Spark is not readable from the warehouse: {why}")
    try:
        conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error as error:
        context.log.warning(f"no row counts or fit figures for dbt's tables: {error}")
        yield from held
        return
    counts: dict[str, int | None] = {}
    with conn:
        for event in held:
            key = _materialised_key(context, event)
            if key is None:
                yield event
                continue
            figures = fit_metadata(context, key, conn)
            if (table := tables[id(event)]) is not None:
                name = '"{}"."{}"'.format(*table.relation)
                if name not in counts:
                    counts[name] = _row_count(context, conn, name)
                if counts[name] is not None:
                    figures["dagster/row_count"] = counts[name]
            yield event.with_metadata({**event.metadata, **figures}) if figures else event


def built_tables(manifest: Mapping[str, Any]) -> dict[str, BuiltTable]:
    """Each dbt node that leaves a table to count, by unique id: its schema, name and declared
    column types, as the invocation that built it parsed the project.

    Not the manifest Dagster loaded its assets from: that one was parsed for whichever target
    was current then, and a model can be a view on one engine and a table on the other
    (dbt_project.yml's `+materialized` by `target.type`).
    """
    built: dict[str, BuiltTable] = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("config", {}).get("materialized") not in COUNTED:
            continue
        columns = node.get("columns") or {}
        declared = {name: column.get("data_type") for name, column in columns.items()}
        built[unique_id] = BuiltTable(
            schema=node["schema"],
            table=node.get("alias") or node["name"],
            # A partial list is not the table's shape: no columns rather than some.
            declared=declared if declared and all(declared.values()) else {},
        )
    return built


def _invocation_manifest(invocation: DbtCliInvocation) -> Mapping[str, Any]:
    try:
        return invocation.get_artifact("manifest.json")
    except (OSError, ValueError):
        # dbt stopped before writing it (a parse error): the project as Dagster loaded it.
        return invocation.manifest


def _unique_id(event: Any) -> str | None:
    value = getattr(event, "metadata", {}).get("unique_id")
    return getattr(value, "text", value)


def _row_count(
    context: dg.AssetExecutionContext, conn: duckdb.DuckDBPyConnection, table: str
) -> int | None:
    try:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except duckdb.Error as error:
        context.log.warning(f"no row count for {table}: {error}")
        return None


def _materialised_key(context: dg.AssetExecutionContext, event: Any) -> dg.AssetKey | None:
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name)
    if isinstance(event, dg.AssetMaterialization):
        return event.asset_key
    return None


def definitions(settings: Settings) -> dg.Definitions:
    project = dbt_project(settings)

    # One multi-asset for the whole project, the day-partitioned facts partitioned by day
    # (RegularsDbtTranslator) and the rest not: a run of everything is one dbt invocation, not
    # a second one (dbt's start, manifest and artifacts: 4-5 s) for two leaf models.
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=RegularsDbtTranslator(days=daily_partitions(settings.chain)),
        # A backfill of many days is one dbt invocation over their whole window, not one per day.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def regulars_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator:
        wait_for_the_warehouse(context, settings)
        with partition_window(context), backfill_test_selection(context):
            invocation = dbt.cli([*BUILD, *chain_vars(settings)], context=context)
        yield from after_dbt(context, invocation, settings)

    return dg.Definitions(
        assets=[regulars_dbt],
        resources={
            "dbt": RegularsDbtCliResource(
                project_dir=project, dbt_executable=dbt_launcher(settings)
            )
        },
    )

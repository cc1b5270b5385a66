"""`regulars`: the project's own commands. dbt and Dagster keep their own CLIs."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import typer

from ingestion import SOURCE_NAMES
from regulars.settings import Settings, export_environment, load_settings, spark_missing

app = typer.Typer(
    help="Regulars: CRM analytics for restaurant chains (dlt -> GX -> dbt -> Dagster).",
    no_args_is_help=True,
    add_completion=False,
)
# Shown as the --out options' default; as text in their help, Rich took `[default: ...]` for markup.
DATA_DIR_DEFAULT = "REGULARS_DATA_DIR"
simulate_app = typer.Typer(help="Build or advance the simulated chain.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")


def check_source(source: str) -> None:
    """Refuse an unknown source before the command imports dlt and GX, which takes seconds.

    `ingestion.registry` checks SOURCE_NAMES against its pipelines on import, and
    tests/test_cli.py every source's gate suites.
    """
    if source not in SOURCE_NAMES:
        known = ", ".join(SOURCE_NAMES)
        raise typer.BadParameter(f"unknown source {source!r}; known: {known}", param_hint="SOURCE")


@simulate_app.command("build")
def simulate_build(
    customers: int = typer.Option(
        2000, min=1, help="Expected sign-ups over --acquisition-days (growth continues after)."
    ),
    days: int = typer.Option(180, min=1, help="Days of history."),
    acquisition_days: int = typer.Option(180, min=1, help="Window the --customers rate is over."),
    seed: int = typer.Option(7, help="Same seed and options, same bytes."),
    start: datetime = typer.Option(
        "2025-01-01", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="First day of the history."
    ),
    out: Path | None = typer.Option(None, help="Output folder.", show_default=DATA_DIR_DEFAULT),
    force: bool = typer.Option(False, help="Rebuild even if this world is already there."),
) -> None:
    """Build a world: the ordering DB and its truth file."""
    from regulars.cli.output import stage_bar
    from simulator import WorldConfig, WorldRefused, build_world, read_state
    from simulator.world import BUILD_STAGES, check_build_date, load_world_config

    out_dir = out or load_settings().data_dir
    config = WorldConfig(
        seed=seed,
        customers=customers,
        days=days,
        acquisition_days=acquisition_days,
        start_date=start.date(),
    )
    if load_world_config(out_dir) == config and not force:
        _, as_of = read_state(out_dir)
        typer.echo(
            f"World already built in {out_dir} with these options (as of {as_of}); "
            "re-using it. --force rebuilds it from scratch."
        )
        return
    started = time.perf_counter()
    try:
        check_build_date(config)  # before the progress bar, so the refusal stands alone
        with stage_bar(
            f"Building a {days}-day world of about {customers:,} guests", BUILD_STAGES
        ) as stage:
            paths = build_world(config, out_dir, stage=stage)
    except WorldRefused as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None
    elapsed = time.perf_counter() - started
    typer.echo(f"Built a {days}-day world in {elapsed:.1f}s (seed {seed}):")
    typer.echo(f"  ordering DB: {paths.ordering_db}\n  truth:       {paths.truth}")


@simulate_app.command("advance")
def simulate_advance(
    days: int = typer.Option(1, min=1, help="Days to move the world forward."),
    out: Path | None = typer.Option(None, help="World folder.", show_default=DATA_DIR_DEFAULT),
) -> None:
    """Move a built world forward: new rows appear, old rows change."""
    from simulator import WorldRefused, advance_world

    out_dir = out or load_settings().data_dir
    try:
        paths = advance_world(out_dir, days=days)
    except WorldRefused as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Advanced {days} day(s): {paths.ordering_db}")


@app.command()
def ingest(
    source: str = typer.Argument("ordering", help=f"Source to load: {', '.join(SOURCE_NAMES)}."),
) -> None:
    """Load one source alone, landing then gate, without Dagster."""
    check_source(source)
    from expectations.promote import promote
    from ingestion.failures import explain, interruption
    from ingestion.landing_zone import append_where_empty
    from ingestion.pipelines import (
        finish_pending,
        landing_held_open,
        landing_pipeline,
        load_options,
        prune_state_history,
    )
    from ingestion.registry import SOURCES
    from ingestion.starting_over import restart_changed_tables, restart_message
    from regulars.cli.demo import demo_apis

    settings = load_settings()
    export_environment(settings)
    spec = SOURCES[source]
    with demo_apis(settings):
        missing = spec.missing(settings)
        if missing:
            typer.secho(f"{source} is not configured here. {missing}", fg="red", err=True)
            raise typer.Exit(2)
        try:
            with landing_held_open(settings):
                pipeline = landing_pipeline(source, settings)
                if finished := finish_pending(pipeline):
                    typer.echo(finished.describe("landing"))
                dlt_source = spec.build(settings)
                restarted = restart_changed_tables(source, dlt_source, settings)
                if restarted:
                    typer.secho(restart_message(source, restarted), fg="yellow", err=True)
                append_where_empty(dlt_source, pipeline)
                landed = pipeline.run(dlt_source, **load_options(settings))
                prune_state_history(pipeline)
        except Exception as error:
            if interruption(error) is not None:
                typer.secho(
                    f"{source}: interrupted. `regulars ingest {source}` again finishes the load.",
                    fg="yellow",
                    err=True,
                )
                raise typer.Exit(130) from None
            # The source could not be reached or refused us: one paragraph, not dlt's nested
            # tracebacks. Anything else is a bug and keeps its traceback.
            explained = explain(spec, error, settings)
            if explained is None:
                raise
            typer.secho(explained, fg="red", err=True)
            raise typer.Exit(1) from None
        typer.echo(landed)
    result = promote(source, settings)
    if result.finished_pending:
        typer.echo(result.finished_pending.describe("lake"))
    for table in result.report.tables.values():
        typer.echo(
            f"  {table.table_name}: {table.source_rows} landed, {table.promoted_rows} promoted, "
            f"{table.quarantined_rows} quarantined"
            + (f", {table.already_held_rows} already held" if table.already_held_rows else "")
            + (f", batch rejected: {table.batch_failure}" if table.batch_failure else "")
        )
    if any(table.batch_failure for table in result.report.tables.values()):
        typer.secho(
            f"{source}: a batch is held back, and the batches after it wait. Fix the source and "
            f"run again, or accept it: regulars replay {source} --accept-volume",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def replay(
    source: str = typer.Argument(..., help="Source whose quarantine to replay, e.g. ordering."),
    table: str | None = typer.Option(None, help="Only this lake table of the source."),
    accept_volume: bool = typer.Option(
        False,
        "--accept-volume",
        help="First promote the batch the row-count rule holds (small for a known reason).",
    ),
) -> None:
    """Re-validate quarantined rows with the current suites; move those that now pass, once."""
    check_source(source)
    from expectations.promote import promote, suites_for
    from expectations.replay import render
    from expectations.replay import replay as replay_quarantine
    from regulars.cli.demo import demo_chain

    settings = load_settings()
    export_environment(settings)
    tables = suites_for(source)
    if table is not None and table not in tables:
        raise typer.BadParameter(
            f"{source} has no table {table!r} (its tables: {', '.join(tables)})",
            param_hint="--table",
        )
    # The gate's rules read the chain (its opening day, its country's phone numbers).
    with demo_chain(settings):
        if accept_volume:
            waived = [table] if table else list(tables)
            for gated in promote(source, settings, waive_volume=waived).report.tables.values():
                typer.echo(
                    f"Gate, row-count rule waived: {gated.table_name}: {gated.source_rows} "
                    f"landed, {gated.promoted_rows} promoted, {gated.quarantined_rows} quarantined"
                    + (
                        f", {gated.already_held_rows} already held"
                        if gated.already_held_rows
                        else ""
                    )
                    + (f", still held: {gated.batch_failure}" if gated.batch_failure else "")
                )
        typer.echo(render(replay_quarantine(source, settings, table)))


@app.command()
def forget(
    identifier: str = typer.Argument(
        ..., help="The guest's customer id, email or phone number (e.g. 0812-3456-7890)."
    ),
    kind: str | None = typer.Option(
        None, help="customer_id, email or phone, when the identifier's shape does not say."
    ),
    reason: str = typer.Option("erasure request", help="Why, kept with the suppression entry."),
) -> None:
    """Erase one guest everywhere (lake, landing files, marts) and suppress their future data."""
    from regulars.privacy.forget import ForgetError, identifier_kind

    try:
        # The identifier's shape is checked before the chain's settings import every source.
        identifier_kind(identifier, kind)
    except ForgetError as error:
        raise typer.BadParameter(str(error), param_hint="IDENTIFIER / --kind") from None
    from regulars.cli.demo import demo_chain
    from regulars.privacy.forget import forget as forget_guest

    settings = load_settings()
    export_environment(settings)
    # The chain's clock and country: its marts are rebuilt on its days, and a phone number
    # written without a country code is read as the chain's.
    with demo_chain(settings):
        try:
            result = forget_guest(identifier, settings, kind=kind, reason=reason)
        except ForgetError as error:
            typer.secho(str(error), fg="red", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            f"Forgot the guest (request {result.request_id}, by {result.identifier_kind}): "
            f"{result.rows_removed} rows removed; their future data is suppressed."
        )
        for removal in result.removals:
            if removal.location_kind == "dlt_load_files":
                typer.echo(f"  {removal.location}: {removal.files} loaded-file copies deleted")
            else:
                files = f" in {removal.files} files" if removal.files else ""
                typer.echo(f"  {removal.location}: {removal.rows} rows{files}")
        if result.affected_sources:
            _rebuild_after_forget(settings, result.affected_sources, result.request_id)


def _rebuild_after_forget(settings: Settings, sources: list[str], request_id: str) -> None:
    """What reads the erased rows, rebuilt as a Dagster run (on record with its checks), under
    the same lock as `materialize`."""
    import dagster as dg

    from orchestration.materialize import rebuild_after_forget
    from regulars.runlock import LockHeld, exclusive

    retry = (
        "Materialise the marts (`regulars materialize`, or the daily job in the UI) so that "
        "aggregates no longer count the guest."
    )
    try:
        with (
            exclusive(settings.state_dir / "materialize.lock", 600),
            dg.DagsterInstance.get() as instance,
        ):
            rebuilt = rebuild_after_forget(settings, instance, sources, request_id)
    except LockHeld as held:
        typer.secho(
            f"The guest is erased, but the marts were not rebuilt: {held} {retry}",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from None
    if rebuilt is None:
        return
    if not rebuilt.success:
        typer.secho(
            f"The guest is erased, but the rebuild of the marts (run {rebuilt.run_id}) failed at "
            f"{', '.join(rebuilt.failed_steps)}. {retry}",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"Marts rebuilt from {', '.join(sources)} in run {rebuilt.run_id}.")


@app.command()
def prepare(
    force: bool = typer.Option(
        False, "--force", help="Parse dbt's project even when nothing it reads changed."
    ),
) -> None:
    """Create the repo-local state folders and Dagster's instance config; re-parse dbt where
    something its parse reads changed."""
    from orchestration import dbt as dbt_module

    settings = load_settings()
    export_environment(settings)
    if not (settings.dbt_project_dir / "dbt_project.yml").is_file():
        typer.secho(
            f"No dbt project in {settings.dbt_project_dir}: REGULARS_PROJECT_DIR "
            f"({settings.project_dir}) must be the Regulars checkout. To keep a world's data "
            "elsewhere, set REGULARS_DATA_DIR, REGULARS_WAREHOUSE and REGULARS_STATE_DIR instead.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    # Refresh dbt's manifest so SQL edits since the last run are part of the graph.
    project = dbt_module.DbtProject(project_dir=settings.dbt_project_dir)
    try:
        if force:
            dbt_module.prepare(project, settings)
            parsed = True
        else:
            parsed = dbt_module.prepare_if_changed(project, settings)
    except dbt_module.DbtParseError as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(1) from None
    manifest = "dbt manifest refreshed" if parsed else "dbt manifest up to date"
    typer.echo(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}; {manifest}.")


@app.command()
def materialize(
    wait: float = typer.Option(
        0,
        min=0,
        metavar="SECONDS",
        help="If another materialize is running, wait up to this long for it to end "
        "(default: stop at once, saying which process runs).",
        show_default=False,
    ),
) -> None:
    """Materialize every asset through Dagster, then print the summary."""
    from ingestion.failures import CONFIGURATION_ERRORS
    from orchestration.materialize import innermost_line
    from regulars.runlock import Holder, LockHeld, exclusive

    settings = load_settings()
    if settings.engine == "spark" and (missing := spark_missing()) is not None:
        typer.secho(f"REGULARS_ENGINE=spark: {missing}", fg="red", err=True)
        raise typer.Exit(1)
    # A service manager stops with SIGTERM: the run then stops as on Ctrl-C, its step marked
    # interrupted and dbt's process ended, instead of dying where it stands. Sent on as SIGINT,
    # it meets whichever handler is in place then (Dagster's, during the run).
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    started = time.perf_counter()

    def waiting(holder: Holder) -> None:
        typer.echo(
            f"Another `regulars materialize` is running ({holder.describe()}): "
            f"waiting up to {wait:.0f}s for it to end."
        )

    try:
        with exclusive(settings.state_dir / "materialize.lock", wait, on_wait=waiting):
            result = _materialize_locked(settings)
    except LockHeld as held:
        typer.secho(str(held), fg="red", err=True)
        raise typer.Exit(1) from None
    except CONFIGURATION_ERRORS as error:
        # Raised while the run is set up (its steps' errors end in the run's result): nothing ran.
        typer.secho(f"The run did not start. {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    elapsed = time.perf_counter() - started
    if interrupted := result.interrupted_steps:
        typer.secho(
            f"Run {result.run_id} stopped at {', '.join(interrupted)} (interrupted). What the "
            "steps before wrote is kept: `regulars materialize` again goes on from there.",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(130)
    if not result.success:
        typer.secho(
            f"Run {result.run_id} failed at "
            f"{', '.join(result.failed_steps) or 'an unknown step'}. "
            "`make ui` shows the run with each step's error; its whole log is named above.",
            fg="red",
            err=True,
        )
        described = result.failure_descriptions
        for step, error in result.step_errors.items():
            # A described failure names its source; any other, its step and innermost error.
            said = described[step] if step in described else f"{step}: {innermost_line(error)}"
            typer.secho(f"  {said}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"\nMaterialized every asset in {elapsed:.0f}s (run {result.run_id}).")
    summary()


def _materialize_locked(settings: Settings):
    """The run itself, under the materialize lock: first the runs a crash left behind."""
    import dagster as dg

    from ingestion.registry import SOURCES
    from orchestration.materialize import materialize_everything
    from orchestration.recovery import clear_crashed_runs, materialize_tags
    from regulars.cli.demo import demo_apis
    from regulars.cli.output import everything_else_to, run_log_path

    # The demo's chain settings first: dbt parses with the vars the run will pass.
    with demo_apis(settings) as stand_ins:
        prepare(force=False)
        with dg.DagsterInstance.get() as instance:
            # Under the lock no other materialize is alive: its unfinished runs are crashed
            # ones, and the slots they hold in the warehouse pool would make this run wait.
            for cleared in clear_crashed_runs(instance, holds_lock=True):
                typer.echo(cleared.describe())
            if any(name.startswith("SOURCES__") for name in stand_ins):
                typer.echo("Serving the simulated GA4 and Meta APIs on 127.0.0.1 for this run.")
            for source in SOURCES.values():
                if missing := source.missing(settings):
                    typer.echo(f"{source.name}: not configured, skipped. {missing}")
            log_path = run_log_path(settings.state_dir, "materialize")
            typer.echo(f"Each step as it ends; dbt's, dlt's and Dagster's own lines: {log_path}")
            with everything_else_to(log_path) as console:
                result = materialize_everything(
                    settings,
                    instance,
                    raise_on_error=False,
                    tags=materialize_tags(),
                    progress=console,
                )
            if not result.success:
                # The steps' tracebacks, which the progress lines leave out, go to the log too.
                with open(log_path, "a", encoding="utf-8") as log:
                    for step, error in result.step_errors.items():
                        log.write(f"\n{step} failed:\n{error.to_string()}")
                typer.secho(f"The whole log of the run: {log_path}", fg="red", err=True)
            return result


# dbt's commands that take --vars: the ones that compile the project.
DBT_COMMANDS_WITH_VARS = frozenset(
    {"build", "compile", "debug", "docs", "list", "ls", "parse", "run", "run-operation",
     "seed", "show", "snapshot", "source", "test"}
)  # fmt: skip


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def dbt(context: typer.Context) -> None:
    """dbt in the project with the chain's vars, as Dagster runs it: `regulars dbt build --select
    customer_features+`. Everything after `dbt` goes to dbt; a `--vars` given wins, key by key."""
    import subprocess

    from orchestration.dbt import dbt_launcher
    from regulars.cli.demo import demo_chain

    settings = load_settings()
    export_environment(settings)
    with demo_chain(settings):
        chain_vars = load_settings().chain.dbt_vars()
        arguments = with_chain_vars(list(context.args), chain_vars)
        # Dagster's launcher: this warehouse, and on Spark the Python models in dbt's session.
        code = subprocess.call([dbt_launcher(settings), *arguments], cwd=settings.dbt_project_dir)
    raise typer.Exit(code)


def with_chain_vars(arguments: list[str], chain_vars: dict) -> list[str]:
    """dbt's `arguments` with the chain's vars for a command that takes them. A by-hand `dbt
    build` reads dbt_project.yml's defaults (UTC, no stores in other zones), so a build of the
    warehouse `make run` made rewrote its marts in another zone's days."""
    command = next((a for a in arguments if not a.startswith("-")), None)
    if command not in DBT_COMMANDS_WITH_VARS:
        return arguments
    import yaml

    def mapping(text: str) -> dict:
        try:
            value = yaml.safe_load(text or "{}") or {}
        except yaml.YAMLError:
            value = None
        if not isinstance(value, dict):
            raise typer.BadParameter(
                f"{text!r} is not a YAML mapping: write --vars '{{churn_inactivity_days: 90}}'",
                param_hint="--vars",
            )
        return value

    given: dict = {}
    rest = []
    pairs = iter(arguments)
    for argument in pairs:
        if argument == "--vars":
            given |= mapping(next(pairs, ""))
        elif argument.startswith("--vars="):
            given |= mapping(argument.removeprefix("--vars="))
        else:
            rest.append(argument)
    return [*rest, "--vars", json.dumps(chain_vars | given)]


@app.command()
def ui(port: int = typer.Option(3000, help="Port on 127.0.0.1.")) -> None:
    """Dagster's UI (webserver and daemon) on 127.0.0.1, with the demo APIs when simulated."""
    import subprocess

    from regulars.cli.demo import demo_apis
    from regulars.settings import beside_python

    prepare(force=False)
    settings = load_settings()
    dagster = beside_python("dagster")
    with demo_apis(settings):
        command = [dagster, "dev", "--host", "127.0.0.1", "--port", str(port)]
        raise typer.Exit(subprocess.call(command, cwd=settings.project_dir))


@app.command()
def collector(
    host: str | None = typer.Option(None, help="Interface (collector.host, else 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (collector.port, else 8088)."),
) -> None:
    """The real-time event collector (Segment's HTTP Tracking API) until Ctrl-C."""
    from ingestion.collector import load_collector_settings, serve
    from ingestion.collector.settings import dev_write_keys

    try:
        settings = load_collector_settings(load_settings(), host=host, port=port)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(
        f"Collector on http://{settings.host}:{settings.port}/v1/batch for sources "
        f"{', '.join(sorted(settings.write_keys))}, landing in {settings.landing_url}"
    )
    if settings.dev_keys_file is not None:
        typer.echo(f"Dev-only write keys (loopback only), from {settings.dev_keys_file}:")
        # The settings hold only the keys' hashes; the dev keys file keeps them readable.
        for source, key in sorted(dev_write_keys(settings.dev_keys_file).items()):
            typer.echo(f"  {source}: {key}")
    serve(settings)


@app.command()
def summary() -> None:
    """Row counts of lake, quarantine and marts, and where to look next."""
    from expectations.gate import is_gate_table
    from regulars.cli.summary import (
        held_batches,
        held_rows,
        latest_exports,
        relation_counts,
        render,
        render_exports,
        render_held,
    )
    from regulars.serving import describe, serving_path

    settings = load_settings()
    if not settings.warehouse_path.exists():
        typer.echo(f"No warehouse at {settings.warehouse_path} yet: run `make run`.")
        raise typer.Exit(1)
    counts = relation_counts(settings.warehouse_path, ("raw_", "marts"))
    # raw_<source>_staging is dlt's scratch space for merges, not part of the lake.
    lake = [c for c in counts if c.schema.startswith("raw_") and not c.schema.endswith("_staging")]
    typer.echo(render([c for c in lake if not is_gate_table(c.name)], "Lake (validated rows)"))
    typer.echo(
        render(
            held_rows(settings.warehouse_path),
            "Quarantine (rows held: failed validation, not replayed nor superseded since)",
        )
    )
    typer.echo(render_held(held_batches(settings.warehouse_path)))
    typer.echo(render([c for c in counts if c.schema == "marts"], "Marts"))
    typer.echo(render_exports(latest_exports(settings.warehouse_path)))
    typer.echo(f"\nWarehouse: {settings.warehouse_path}")
    typer.echo(describe(serving_path(settings.warehouse_path)))
    typer.echo("Open the Dagster UI: make ui  (http://127.0.0.1:3000)")

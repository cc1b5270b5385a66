"""Guest privacy in Dagster: the `forget_guest` job, the same erasure as `regulars forget`, and the
rebuild of what read the erased rows.

The op runs in the warehouse pool, so it waits for any landing, gate or dbt step holding the
DuckDB file and none starts while it erases. Dagster keeps each run's config: launch it with the
customer id (a pseudonymous key) rather than an email or phone, or the run record keeps them.

The erasure deletes the guest's rows from every table, marts included; aggregates built from them
still count the guest until rebuilt. The op tags its run with the lake sources that lost rows,
and the `marts_after_forget` sensor asks for a run of everything that reads them; the command
line runs the same selection in process (`orchestration.materialize.rebuild_after_forget`).
"""

# No `from __future__ import annotations`: Dagster reads ForgetConfig's field types at run time.
import dagster as dg

from ingestion.pipelines import lake_dataset
from orchestration.automation import EVERYTHING_JOB, partitioned_selection
from orchestration.pools import WAREHOUSE_POOL
from regulars.privacy.forget import ForgetError, forget
from regulars.settings import Settings

FORGET_JOB = "forget_guest"
# On the forget run: the lake sources that lost rows; on the rebuild: the forget request.
AFFECTED_SOURCES_TAG = "regulars/forget_affected_sources"
FORGET_REQUEST_TAG = "regulars/forget_request"


def rebuild_selection(sources: list[str]) -> dg.AssetSelection:
    """What reads the erased lake tables: dbt's models, their checks and the serving copy.

    Not the day-partitioned facts: their rows are the guest's own events, already deleted, and
    the other guests' rows stand (a rebuild would redo every day of history). Not the audience
    exports: the guest left them with the erasure, and they go out with the next daily run.
    """
    lake = dg.AssetSelection.key_prefixes(*([lake_dataset(source)] for source in sources))
    # Materializable: the dashboards downstream are Superset's, not a run's.
    rebuilt = lake.downstream().materializable()
    return rebuilt - lake - dg.AssetSelection.groups("activation")


def keys_to_rebuild(asset_graph, sources: list[str]) -> list[dg.AssetKey]:
    if not sources:
        return []
    selection = rebuild_selection(sources) - partitioned_selection(asset_graph)
    return sorted(selection.resolve(asset_graph))


class ForgetConfig(dg.Config):
    """identifier: the guest's customer id (preferred: run config is stored), email or phone;
    kind: customer_id, email or phone when its shape does not say."""

    identifier: str
    kind: str | None = None
    reason: str = "erasure request"


def forget_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(
        name="forget_guest_everywhere",
        pool=WAREHOUSE_POOL,
        description="Erase one guest from lake, landing files and marts; suppress later loads.",
    )
    def forget_guest_everywhere(context: dg.OpExecutionContext, config: ForgetConfig) -> None:
        try:
            result = forget(config.identifier, settings, kind=config.kind, reason=config.reason)
        except ForgetError as error:
            raise dg.Failure(description=str(error)) from None
        # Counts only: the log must not repeat the identifier.
        context.log.info(
            f"Request {result.request_id} ({result.identifier_kind}): "
            f"{result.rows_removed} rows removed from "
            f"{', '.join(result.affected_sources) or 'no lake source'}; "
            "marts_after_forget rebuilds what reads them."
        )
        for removal in result.removals:
            context.log.info(f"{removal.location}: {removal.rows} rows, {removal.files} files")
        context.instance.add_run_tags(
            context.run_id,
            {
                AFFECTED_SOURCES_TAG: ",".join(result.affected_sources),
                FORGET_REQUEST_TAG: result.request_id,
            },
        )

    @dg.job(
        name=FORGET_JOB,
        description="Right to be forgotten: `regulars forget` as a job (config: identifier); "
        "the marts_after_forget sensor then rebuilds the marts that read the erased rows.",
    )
    def forget_guest_job() -> None:
        forget_guest_everywhere()

    return forget_guest_job


@dg.sensor(
    name="marts_after_forget",
    job_name=EVERYTHING_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful forget_guest run: one run of the marts (and the serving "
    "copy) that read the lake sources it erased rows from.",
)
def marts_after_forget(context: dg.SensorEvaluationContext):
    # The cursor is the newest forget run already answered, by its storage id.
    after = int(context.cursor or 0)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=FORGET_JOB, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    graph = context.repository_def.asset_graph
    for record in sorted(records, key=lambda record: record.storage_id):
        if record.storage_id <= after:
            continue
        tags = record.dagster_run.tags
        sources = [s for s in tags.get(AFFECTED_SOURCES_TAG, "").split(",") if s]
        if keys := keys_to_rebuild(graph, sources):
            yield dg.RunRequest(
                run_key=record.dagster_run.run_id,
                asset_selection=keys,
                tags={FORGET_REQUEST_TAG: tags.get(FORGET_REQUEST_TAG, "")},
            )
        after = record.storage_id
    context.update_cursor(str(after))


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(jobs=[forget_job(settings)], sensors=[marts_after_forget])

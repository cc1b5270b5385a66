"""Guest privacy in Dagster: the `forget_guest` job, the same erasure as `regulars forget`.

The op runs in the warehouse pool, so it waits for any landing, gate or dbt step holding the
DuckDB file and none starts while it erases. Dagster keeps each run's config: launch it with the
customer id (a pseudonymous key) rather than an email or phone, or the run record keeps them.
"""

import dagster as dg

from orchestration.pools import WAREHOUSE_POOL
from regulars.privacy.forget import ForgetError, forget
from regulars.settings import Settings

FORGET_JOB = "forget_guest"


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
            f"{result.rows_removed} rows removed; marts rebuilt from "
            f"{', '.join(result.rebuilt_sources) or 'nothing'}."
        )
        for removal in result.removals:
            context.log.info(f"{removal.location}: {removal.rows} rows, {removal.files} files")

    @dg.job(
        name=FORGET_JOB,
        description="Right to be forgotten: `regulars forget` as a job (config: identifier).",
    )
    def forget_guest_job() -> None:
        forget_guest_everywhere()

    return forget_guest_job


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(jobs=[forget_job(settings)])

"""dbt's Python models on Spark in dbt's own process: a submission method for dbt-spark.

dbt-spark hands a Python model only to Databricks (its submission helpers upload a notebook to a
cluster). With `method: session` (profiles.yml's spark target) dbt already holds a Spark session
in its process, which can run the model's compiled code directly: that is the `session` method
added here, and the default of a session connection, so the project needs no engine-specific
config. dbt loads its adapter by import, with no plugin hook, so every way dbt is started on
Spark calls `register()` first: `python -m regulars.spark_python_models <dbt arguments>`
registers and runs dbt's command line (Dagster's launcher on Spark, orchestration/dbt.py), and
an in-process dbtRunner imports this module and registers (tests/engines.py).
"""

from __future__ import annotations

import sys
from typing import Any

from dbt.adapters import spark as dbt_spark
from dbt.adapters.base import PythonJobHelper
from dbt.adapters.spark import SparkCredentials
from dbt.adapters.spark.connections import SparkConnectionMethod
from dbt_common.exceptions import DbtRuntimeError

SUBMISSION_METHOD = "session"


class SessionPythonJobHelper(PythonJobHelper):
    """Runs a Python model's compiled code (dbt-spark's `py_write_table`: the model, then a
    `saveAsTable` of what it returns) on the Spark session of dbt's own process."""

    def __init__(self, parsed_model: dict, credentials: SparkCredentials) -> None:
        if credentials.method != SparkConnectionMethod.SESSION:
            raise DbtRuntimeError(
                f"Python model {parsed_model['alias']}: submission_method '{SUBMISSION_METHOD}' "
                "runs it on the Spark session in dbt's own process, which only `method: session` "
                f"in profiles.yml starts (this target has `method: {credentials.method}`). On "
                "Databricks set submission_method to all_purpose_cluster or job_cluster."
            )
        self.parsed_model = parsed_model
        self.credentials = credentials

    def submit(self, compiled_code: str) -> None:
        from pyspark.sql import SparkSession

        # As dbt-spark's session cursor gets it (dbt/adapters/spark/session.py): the session it
        # started, the same tables, metastore and settings as the SQL models.
        builder = SparkSession.builder.enableHiveSupport()
        for name, value in self.credentials.server_side_parameters.items():
            builder = builder.config(name, value)
        code = compile(compiled_code, self.parsed_model["original_file_path"], "exec")
        exec(code, {"__name__": self.parsed_model["alias"], "spark": builder.getOrCreate()})


# Named as dbt-spark's: dbt finds an adapter's package by its class name (get_adapter_run_info).
class SparkAdapter(dbt_spark.SparkAdapter):
    """dbt-spark's adapter with the `session` submission method, the default on a session."""

    @property
    def default_python_submission_method(self) -> str:
        if self.connections.profile.credentials.method == SparkConnectionMethod.SESSION:
            return SUBMISSION_METHOD
        return super().default_python_submission_method

    @property
    def python_submission_helpers(self) -> dict[str, type[PythonJobHelper]]:
        return {**super().python_submission_helpers, SUBMISSION_METHOD: SessionPythonJobHelper}


def register() -> None:
    """Make dbt build `type: spark` targets with this module's SparkAdapter: dbt reads the
    plugin's adapter class when it loads the adapter, so this must run before dbt starts."""
    dbt_spark.Plugin.adapter = SparkAdapter


def main(arguments: list[str]) -> Any:
    from dbt.cli.main import cli

    register()
    # As dbt's own `dbt` script starts it, with dbt as the program name in its messages.
    return cli(args=arguments, prog_name="dbt")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

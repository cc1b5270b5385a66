"""The submission method that runs dbt's Python models in dbt's own Spark session: what it asks
of the profile. Building with it is tests/test_engine_spark.py's (opt-in)."""

from types import SimpleNamespace

import pytest

dbt_spark = pytest.importorskip("dbt.adapters.spark", reason="the `spark` extra is not installed")

from dbt.adapters.spark.connections import SparkConnectionMethod  # noqa: E402
from dbt_common.exceptions import DbtRuntimeError  # noqa: E402

from regulars import spark_python_models  # noqa: E402

MODEL = {"alias": "int_customers_scored", "original_file_path": "int_customers_scored.py"}


def session_credentials():
    return dbt_spark.SparkCredentials(host="localhost", method="session", schema="main")


def test_a_session_connection_runs_python_models_in_its_session(monkeypatch) -> None:
    monkeypatch.setattr(dbt_spark.Plugin, "adapter", dbt_spark.Plugin.adapter)
    spark_python_models.register()
    adapter = dbt_spark.Plugin.adapter
    assert adapter.type() == "spark"
    # dbt finds the adapter's package by the class name (get_adapter_run_info).
    assert adapter.__name__ == "SparkAdapter"
    # An adapter on a session connection, without dbt's whole config: all the properties read.
    connected = object.__new__(adapter)
    connected.connections = SimpleNamespace(
        profile=SimpleNamespace(credentials=session_credentials())
    )
    assert connected.python_submission_helpers["session"] is (
        spark_python_models.SessionPythonJobHelper
    )
    assert {"job_cluster", "all_purpose_cluster"} <= set(connected.python_submission_helpers)
    assert connected.default_python_submission_method == "session"


def test_another_connection_is_told_what_to_set() -> None:
    credentials = session_credentials()
    # Thrift credentials cannot be built without PyHive; the method is what the helper reads.
    credentials.method = SparkConnectionMethod.THRIFT
    with pytest.raises(DbtRuntimeError, match="method: session") as raised:
        spark_python_models.SessionPythonJobHelper(MODEL, credentials)
    assert "set submission_method to all_purpose_cluster or job_cluster" in str(raised.value)

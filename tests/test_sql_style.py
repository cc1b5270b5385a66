"""The dbt SQL follows the project's sqlfluff rules, so style review is a test, not a debate."""

from __future__ import annotations

from pathlib import Path

import pytest

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


def test_every_dbt_sql_file_passes_sqlfluff(monkeypatch: pytest.MonkeyPatch):
    sqlfluff = pytest.importorskip("sqlfluff")
    from sqlfluff.core import FluffConfig, Linter

    # sqlfluff finds .sqlfluff and sqlfluff_libs/ relative to the working directory.
    monkeypatch.chdir(DBT_PROJECT)
    linter = Linter(config=FluffConfig.from_path(str(DBT_PROJECT)))
    result = linter.lint_paths(("models", "tests"))
    records = result.as_records()
    problems = [
        f"{record['filepath']}:{v['start_line_no']}:{v['start_line_pos']} "
        f"{v['code']} {v['description']}"
        for record in records
        for v in record["violations"]
    ]
    assert len(records) > 10, f"sqlfluff {sqlfluff.__version__} linted too few files"
    assert not problems, "sqlfluff (fix with `make lint` / `sqlfluff fix`):\n" + "\n".join(
        problems
    )

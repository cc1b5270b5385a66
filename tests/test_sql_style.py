"""The dbt SQL follows the project's sqlfluff rules, so style review is a test, not a debate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


def test_every_dbt_sql_file_passes_sqlfluff():
    # A subprocess: sqlfluff's jinja templater imports dbt_project/sqlfluff_libs/dbt.py as the
    # module `dbt`, which would shadow dbt-core for every later test in this process.
    sqlfluff = Path(sys.executable).parent / "sqlfluff"
    completed = subprocess.run(
        [str(sqlfluff), "lint", "models", "tests", "--format", "json", "--nofail"],
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    records = json.loads(completed.stdout)
    problems = [
        f"{record['filepath']}:{v['start_line_no']}:{v['start_line_pos']} "
        f"{v['code']} {v['description']}"
        for record in records
        for v in record["violations"]
    ]
    assert len(records) > 10, f"sqlfluff linted too few files: {completed.stderr}"
    assert not problems, "sqlfluff (fix with `make lint` / `sqlfluff fix`):\n" + "\n".join(problems)

"""Regulars: shared settings and the `regulars` command line.

Kept apart from the four pipeline packages because every one of them (and the CLI) needs the
same answer to "where does this checkout keep its data", and none of them should own it.
"""

import warnings

# dagster-dbt asks for sqlglot[rs] while dlt 1.31 needs sqlglot < 30, whose Rust tokenizer no
# longer matches: sqlglot falls back to its Python tokenizer and warns on every start. Nothing a
# user can act on, so it is silenced here rather than printed before every command.
warnings.filterwarnings("ignore", message=r"sqlglot\[rs\] is deprecated")

# pyspark 4.3 warns that it does not yet support pandas 3 when it is imported (Great Expectations
# imports it whenever the `spark` extra is installed) and on every DataFrame it creates. No pandas
# reaches pyspark here (regulars/analytics/relations.py hands it Arrow), so it is silenced too.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

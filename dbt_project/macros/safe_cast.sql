{#-
    dbt's `safe_cast` is a cast that gives null, not an error, for a value
    that does not convert: one event whose userId is text must not stop every
    mart. dbt's default is a plain `cast` (most engines had no such function)
    and dbt-duckdb does not override it, so the project does, for DuckDB's
    `try_cast`. dbt_project.yml puts this project ahead of dbt in the `dbt`
    namespace's dispatch, so every `dbt.safe_cast` in the models lands here.
    An engine the project adds brings its own `<adapter>__safe_cast`
    (PostgreSQL needs a function).
-#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{#- dbt-spark's own is a plain cast; Spark has try_cast since 3.2. -#}
{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

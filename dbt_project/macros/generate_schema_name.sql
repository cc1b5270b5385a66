{#-
    Use a model's custom schema as-is (`staging`, `marts`) instead of dbt's
    default `<target_schema>_<custom_schema>` (e.g. `main_marts`).

    Why: BI tools, Dagster asset keys and ad-hoc SQL read stable schema names;
    each environment is its own DuckDB file, so schemas need no per-target
    prefix to stay apart. Models without a custom schema land in the target
    schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

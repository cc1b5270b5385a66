{#-
    A lake table, or an empty one of the same shape when the lake does not
    have it: a chain without that channel, or one that has not loaded yet.

    Every staging model reads its source through this instead of source(), so
    `dbt build` (and any `--select +<mart>`) works with any subset of channels:
    a missing channel's staging views are empty and the marts built on them
    have no rows, or nulls in that channel's columns. The empty shape is the
    source's columns as `_<source>__sources.yml` declares them, each with its
    `data_type`; tests/test_lake_contract.py holds those equal to the lake.
    A staging view built empty is rebuilt by the next run after the channel's
    first load, as every run rebuilds staging.
-#}
{% macro lake_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {#- In a yml unit test, source() is the fixture's CTE: no schema, nothing to look up. -#}
    {%- if not execute or relation.schema is none -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=relation.database,
        schema=relation.schema,
        identifier=relation.identifier,
    ) -%}
    {%- if found is not none -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set node = graph.sources["source." ~ project_name ~ "." ~ source_name ~ "." ~ table_name] -%}
    {%- set columns = node.columns.values() | list -%}
    {%- if not columns or columns | selectattr("data_type", "none") | list -%}
        {{ exceptions.raise_compiler_error(
            "Source " ~ source_name ~ "." ~ table_name ~ " is not in the lake, and "
            ~ "its yml does not give every column a data_type to stand in for it."
        ) }}
    {%- endif -%}
    {%- set empty -%}
        (
            select
            {%- for column in columns %}
                cast(null as {{ lake_type(column.data_type) }}) as {{ adapter.quote(column.name) }}
                {{- "," if not loop.last }}
            {%- endfor %}
            where false
        ) as {{ adapter.quote(table_name ~ "_not_loaded") }}
    {%- endset -%}
    {{ return(empty) }}
{%- endmacro %}


{#-
    A source's declared type (DuckDB's name, as the lake contract test reads
    the lake) as this engine names it, for the empty stand-in above.
-#}
{% macro lake_type(data_type) -%}
    {{ return(adapter.dispatch("lake_type")(data_type)) }}
{%- endmacro %}

{% macro default__lake_type(data_type) -%}
    {{ return(data_type) }}
{%- endmacro %}

{#- What Spark reads from dlt's Parquet: text and JSON as string, an instant as timestamp_ltz. -#}
{% macro spark__lake_type(data_type) -%}
    {%- set spark_names = {
        "varchar": "string",
        "json": "string",
        "timestamp with time zone": "timestamp_ltz",
    } -%}
    {{ return(spark_names.get(data_type | lower, data_type)) }}
{%- endmacro %}

{#-
    The lake as relations an engine's SQL can read, made before every run
    (on-run-start in dbt_project.yml).

    On DuckDB there is nothing to do: the lake is dlt's own tables, or the
    views ingestion/lake_views.py publishes over the Parquet files.

    On Spark the lake is the Parquet files dlt writes with
    REGULARS_DESTINATION=filesystem, `<lake>/<dataset>/<table>/*.parquet`.
    Each table the lake has becomes a view `<dataset>.<table>` over its
    files (through a table `lake_files.<dataset>__<table>`), with the same rule as on DuckDB: dlt appends a file per load, so a
    row re-pulled or changed upstream is there once per load that carried it,
    and the view keeps the newest version per primary key (dlt's own
    `primary_key` hints, read from the schema dlt stores beside the data).
    Tables without a key (quarantine, the gate's audit) are logs and keep
    every row. A table the lake does not have gets no view, and lake_source()
    stands in for it as on DuckDB. Views, not copies: the next run reads the
    files as they are then.
-#}
{% macro create_lake_relations() -%}
    {{ return(adapter.dispatch("create_lake_relations")()) }}
{%- endmacro %}

{% macro default__create_lake_relations() -%}
    {{ return("") }}
{%- endmacro %}


{#-
    The lake's root: DESTINATION__FILESYSTEM__BUCKET_URL as dlt reads it, else
    the folder beside the warehouse file, as regulars/settings.py resolves it.
-#}
{% macro lake_root() -%}
    {%- set configured = env_var("DESTINATION__FILESYSTEM__BUCKET_URL", "") -%}
    {%- if configured -%}
        {{ return(configured.rstrip("/")) }}
    {%- endif -%}
    {%- set warehouse = env_var("REGULARS_WAREHOUSE", "../warehouse/regulars.duckdb") -%}
    {{ return(warehouse.rsplit("/", 1)[0] ~ "/lake") }}
{%- endmacro %}


{% macro spark__create_lake_relations() -%}
    {%- if not execute -%}
        {{ return("") }}
    {%- endif -%}
    {%- set root = lake_root() -%}
    {%- set datasets = graph.sources.values() | map(attribute="schema") | unique | sort -%}
    {%- set glob = root ~ "/{" ~ datasets | join(",") ~ "}" -%}

    {#- Every table directory that holds a Parquet file. -#}
    {%- set listed = run_query(
        "select distinct"
        ~ " regexp_extract(path, '/([^/]+)/([^/]+)/[^/]+$', 1) as dataset,"
        ~ " regexp_extract(path, '/([^/]+)/([^/]+)/[^/]+$', 2) as table_name"
        ~ " from binaryFile.`" ~ glob ~ "/*/*.parquet`"
    ) -%}
    {%- set tables = [] -%}
    {%- for row in listed.rows if not row["table_name"].startswith("_dlt") -%}
        {%- do tables.append((row["dataset"], row["table_name"])) -%}
    {%- endfor -%}

    {#- Primary keys from each dataset's newest dlt schema, per pipeline writing it. -#}
    {%- set versions = run_query(
        "select dataset, schema from ("
        ~ " select regexp_extract(input_file_name(), '/([^/]+)/_dlt_version/[^/]+$', 1)"
        ~ " as dataset, schema_name, inserted_at, schema"
        ~ " from json.`" ~ glob ~ "/_dlt_version/*.jsonl`)"
        ~ " qualify row_number() over ("
        ~ " partition by dataset, schema_name order by inserted_at desc) = 1"
    ) -%}
    {%- set keys = {} -%}
    {%- set newest_first = {} -%}
    {%- for row in versions.rows -%}
        {%- for name, table in fromjson(row["schema"])["tables"].items() -%}
            {%- set columns = table.get("columns", {}) -%}
            {%- set key = [] -%}
            {%- for column in columns.values() if column.get("primary_key") -%}
                {%- do key.append(column["name"]) -%}
            {%- endfor -%}
            {%- if key -%}
                {%- do keys.update({(row["dataset"], name): key}) -%}
                {#- The lake load, then the landing batch it promoted (several per lake load). -#}
                {%- do newest_first.update({(row["dataset"], name): [
                    "_dlt_load_id", "_landing_load_id"
                ] | select("in", columns) | list}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}

    {%- if tables -%}
        {%- do run_query("create schema if not exists " ~ lake_files_schema()) -%}
    {%- endif -%}
    {%- for dataset, table_name in tables | sort -%}
        {%- set files = lake_files_schema() ~ "." ~ dataset ~ "__" ~ table_name -%}
        {%- set key = keys.get((dataset, table_name), []) -%}
        {#-
            A catalog table over the folder holds its schema, read once here
            (merged over every file, for columns added after the first
            load); a view straight over the files would infer it again in
            every query that reads it. Dropping it leaves the files alone.
        -#}
        {%- do run_query("drop table if exists " ~ files) -%}
        {%- do run_query(
            "create table " ~ files ~ " using parquet options (mergeSchema 'true')"
            ~ " location '" ~ root ~ "/" ~ dataset ~ "/" ~ table_name ~ "'"
        ) -%}
        {%- do run_query("create schema if not exists " ~ dataset) -%}
        {%- set view -%}
            create or replace view {{ dataset }}.{{ table_name }} as
            select * from {{ files }}
            {%- if key %}
            qualify row_number() over (
                partition by {{ key | join(", ") }}
                order by {{ newest_first[(dataset, table_name)] | join(" desc, ") }} desc
            ) = 1
            {%- endif %}
        {%- endset -%}
        {%- do run_query(view) -%}
    {%- endfor -%}
    {{ return("") }}
{%- endmacro %}


{#- Where the catalog tables over the lake's folders live, apart from the views dbt reads. -#}
{% macro lake_files_schema() -%}
    {{ return("lake_files") }}
{%- endmacro %}

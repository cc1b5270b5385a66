{#-
    What int_sessions_split holds so far: the newest lake load it has
    sessionised, and the session_inactivity_minutes its rows were built with
    (none for an empty table); macros/incremental.sql says why they are read
    before the query. Unit tests set both in `overrides: macros:`.
-#}
{% macro newest_sessionised_load() -%}
    {{ return(newest_in_this('last_dlt_load_id')) }}
{%- endmacro %}


{% macro sessionised_inactivity_minutes() -%}
    {{ return(newest_in_this('inactivity_minutes')) }}
{%- endmacro %}


{#-
    int_sessions_split's incremental strategy. A run returns, for each
    device and platform it sessionised again, the sessions from where it
    resumed (the start of the first stored session a new call could reach,
    or that call), and the first of them starts there. So the stored
    sessions of that device and platform from that start on are replaced,
    and the ones before it, which no new call can change, stay where they
    are: not read, deleted and written back each day. DuckDB only: on Spark
    the model is a table built whole.
-#}
{% macro get_incremental_resumed_sessions_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as stored
    using (
        select anonymous_id, platform, min(session_started_at) as resumed_at
        from {{ source }}
        group by anonymous_id, platform
    ) as resumed
    where stored.anonymous_id = resumed.anonymous_id
        and stored.platform = resumed.platform
        and stored.session_started_at >= resumed.resumed_at;

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}

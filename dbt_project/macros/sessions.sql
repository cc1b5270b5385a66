{#-
    What int_sessions_split holds so far: the newest lake load it has
    sessionised, and the session_inactivity_minutes its rows were built with
    (none for an empty table).

    Read before the model's query runs, so that the load id reaches it as a
    constant: as a subquery over the table, DuckDB read the JSON of every
    call before restricting them to the devices with new ones (39 s against
    4 s for a day's increment of a 100,000-guest year). Unit tests set both
    in `overrides: macros:`.
-#}
{% macro newest_sessionised_load() -%}
    {{ return(_newest_in_sessions('last_dlt_load_id')) }}
{%- endmacro %}


{% macro sessionised_inactivity_minutes() -%}
    {{ return(_newest_in_sessions('inactivity_minutes')) }}
{%- endmacro %}


{% macro _newest_in_sessions(column) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set stored = run_query("select max(" ~ column ~ ") from " ~ this) -%}
    {{ return(stored.columns[0].values()[0]) }}
{%- endmacro %}

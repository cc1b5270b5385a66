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

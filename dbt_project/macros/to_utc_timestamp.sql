{#-
    Turn a zoned timestamp into a zone-less timestamp holding UTC wall time.

    The lake stores `timestamp with time zone`; casting or truncating those
    (to a date, a month, a day difference) follows the *session* time zone,
    so the same data would give different dates on a laptop in Jakarta and a
    server in UTC. Staging normalises every `<event>_at` to UTC once, here.
    There is no dbt cross-database macro for this, hence the dispatch: an
    adapter whose SQL differs adds `<adapter>__to_utc_timestamp`.
-#}
{% macro to_utc_timestamp(column) -%}
    {{ return(adapter.dispatch("to_utc_timestamp")(column)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')
{%- endmacro %}

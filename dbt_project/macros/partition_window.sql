{#-
    The days a partitioned run of an incremental model rewrites.

    Dagster runs the incremental (day-partitioned) models with
    `--vars '{window_start: 2025-03-01, window_end: 2025-03-02}'`: the
    partition's days, end exclusive; a backfill passes its whole range at
    once. Without those vars (a plain `dbt build`) a model falls back to its
    own lookback rule.
-#}
{% macro has_partition_window() -%}
    {{ return(var('window_start', none) is not none) }}
{%- endmacro %}


{% macro in_partition_window(date_expression) -%}
    ({{ date_expression }} >= cast('{{ var("window_start") }}' as date)
    and {{ date_expression }} < cast('{{ var("window_end") }}' as date))
{%- endmacro %}

{#-
    dbt's dateadd on Spark, the project's own (dbt_project.yml puts the
    project first in the `dbt` namespace's dispatch). dbt-spark's goes
    through unix seconds and to_timestamp(number), which drops the
    microseconds and, with `timestamp` zone-less (the spark target's
    spark.sql.timestampType), gives null. timestampadd keeps the type and
    the microseconds; a date becomes its midnight, as `date + interval` does
    on DuckDB.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart | upper }}, {{ interval }}, cast({{ from_date_or_timestamp }} as timestamp))
{%- endmacro %}

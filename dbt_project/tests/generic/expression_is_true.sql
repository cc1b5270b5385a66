{#-
    Fails for every row where `expression` is not true. On a column, the
    expression is appended to the column name (`arguments: {expression: ">= 0"}`).
    A small stand-in for dbt_utils.expression_is_true: the project uses no
    dbt packages (the warehouse builds offline, so `dbt deps` cannot reach
    the hub).
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ column_name ~ " " if column_name else "" }}{{ expression }}), false)

{% endtest %}

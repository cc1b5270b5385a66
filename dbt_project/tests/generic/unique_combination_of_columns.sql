{#-
    Fails for every combination of `columns` that appears more than once: the
    primary key of a model keyed by several columns. A stand-in for
    dbt_utils.unique_combination_of_columns (no dbt packages offline).
-#}
{% test unique_combination_of_columns(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}

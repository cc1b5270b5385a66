{#-
    The scopes the CRM marts report at (churn_monthly, kpi_scorecard): the
    whole chain, each province, and each store within its province. A scope
    is a grain and its keys; the keys a grain does not have are null, so
    every scope's row has the same columns (grain, province, store_id).
-#}
{% macro scope_grains() -%}
    {{ return({
        'chain': [],
        'province': ['province'],
        'store': ['province', 'store_id'],
    }) }}
{%- endmacro %}


{#- A scope's key columns: the grain's own, null for the others. -#}
{% macro scope_columns(grain, keys) -%}
    '{{ grain }}' as grain,
    {{ 'province' if 'province' in keys else 'cast(null as ' ~ dbt.type_string() ~ ')' }}
        as province,
    {{ 'store_id' if 'store_id' in keys else 'cast(null as ' ~ dbt.type_bigint() ~ ')' }}
        as store_id
{%- endmacro %}


{#-
    Every scope, one row each, from a relation of stores (store_id,
    province): the chain always, each province and each store that has a row.
-#}
{% macro scopes_of_stores(stores) -%}
    {%- for grain, keys in scope_grains().items() %}
        select distinct
            {{ scope_columns(grain, keys) }}
        {% if keys %}from {{ stores }}{% endif %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}


{#-
    Unit rows counted at one store (columns province, store_id,
    activity_month and the measures) rolled up to every scope per month:
    `measures` maps each output column to the column it sums. A row without
    a store counts in the chain's sums; at the other grains it sums under
    null keys, which scopes_of_stores has no scope for.
-#}
{% macro sum_by_scope(relation, measures) -%}
    {%- for grain, keys in scope_grains().items() %}
        select
            {{ scope_columns(grain, keys) }},
            activity_month,
            {%- for name, column in measures.items() %}
            sum({{ column }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}

        from {{ relation }}
        group by {% for key in keys %}{{ key }}, {% endfor %}activity_month
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}


{#-
    Whether two rows are of the same scope (a join condition): the same grain
    and keys, a null key matching only a null key. The month is the caller's.
-#}
{% macro same_scope(left, right) -%}
    {{ left }}.grain = {{ right }}.grain
    and coalesce({{ left }}.province, '') = coalesce({{ right }}.province, '')
    and coalesce({{ left }}.store_id, -1) = coalesce({{ right }}.store_id, -1)
{%- endmacro %}

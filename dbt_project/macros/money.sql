{#-
    The one type for money in this project: amounts in the chain's currency,
    major units stored exactly, with two decimals so averages and allocations
    keep their cents.
    dbt.type_numeric() takes no precision, so build the type the same way it
    does, through the adapter's Column class.
-#}
{% macro type_money() -%}
    {{ return(api.Column.numeric_type("numeric", 18, 2)) }}
{%- endmacro %}


{#- Cast an amount in major units (or an expression) to the money type. -#}
{% macro to_money(expression) -%}
    cast({{ expression }} as {{ type_money() }})
{%- endmacro %}


{#-
    The revenue rule every model shares (documented on fct_orders): an order
    earns its charged total only once completed; anything else earns 0.
    Callers pass their own columns; soft-deleted orders are the caller's to
    exclude (most models read live orders only).
-#}
{% macro net_revenue(status, total) -%}
    case when {{ status }} = 'completed' then {{ total }} else {{ to_money(0) }} end
{%- endmacro %}


{#-
    The chain's ISO 4217 currency code, the unit of every money column: the
    marts that carry money carry it as data (`currency`), so a BI user reads
    the unit beside the figure. Null when `[chain] currency` is unset.
-#}
{% macro chain_currency() -%}
    {%- set code = var('chain_currency', none) -%}
    {%- if code is none -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        cast('{{ code | upper }}' as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}

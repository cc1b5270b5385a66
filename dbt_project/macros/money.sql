{#-
    The one type for money in this project: whole rupiah stored exactly, with
    two decimals so averages and allocations keep their cents.
    dbt.type_numeric() takes no precision, so build the type the same way it
    does, through the adapter's Column class.
-#}
{% macro type_money() -%}
    {{ return(api.Column.numeric_type("numeric", 18, 2)) }}
{%- endmacro %}


{#- Cast an integer amount of rupiah (or an expression) to the money type. -#}
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

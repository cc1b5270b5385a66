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

{#-
    The stitching rules' conflict flag (int_identities_stitched): an
    identifier whose candidate links name more than one customer. With
    `partition_by`, a window over the candidates of each identifier (the
    row keeps its own choice); without it, an aggregate over a group by.
    Null when no candidate names a customer.
-#}
{% macro names_several_customers(customer_id, partition_by=none) -%}
    {%- if partition_by is none -%}
        min({{ customer_id }}) != max({{ customer_id }})
    {%- else -%}
        min({{ customer_id }}) over (partition by {{ partition_by }})
        != max({{ customer_id }}) over (partition by {{ partition_by }})
    {%- endif -%}
{%- endmacro %}

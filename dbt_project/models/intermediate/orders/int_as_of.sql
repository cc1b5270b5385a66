{#-
    The as-of of the customer marts: the newest order placed in the data
    (fct_orders, every source), not the wall clock. Rebuilding the same data
    then gives the same figures, tests stay deterministic, and a paused
    pipeline does not age every customer into churn. One row.
-#}
with

orders as (

    select * from {{ ref('fct_orders') }}

),

final as (

    select
        max(placed_at) as as_of_at,
        max(placed_date) as as_of_date,
        cast({{ dbt.date_trunc('month', 'max(placed_date)') }} as date) as as_of_month

    from orders

)

select * from final

{#-
    Each guest's home store and its province: where the CRM marts count a
    customer (churn_monthly, kpi_scorecard, retention_cohorts) and what
    dim_customers shows. The home store itself is int_customers_unioned's
    (the account's, or for an order-history member the store they ordered
    at most); a guest without one, or whose store has no row, has null here.
-#}
with

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

stores as (

    select * from {{ ref('stg_ordering__stores') }}

),

final as (

    select
        customers.customer_id,
        customers.home_store_id,
        stores.province as home_province

    from customers
    left join stores
        on customers.home_store_id = stores.store_id

)

select * from final

{#-
    Retention by acquisition cohort: one row per acquisition month, month of
    activity (from the acquisition month to the as-of month), province and
    platform.

    The cohort is the month the customer was acquired, i.e. signed up: the
    acquisition_date of dim_customers. Guests sign up at their first
    checkout, so for most the first order is the same day; those who signed
    up and never ordered stay in the cohort, so retention is measured against
    every customer acquired. months_since_acquisition 0 is the acquisition
    month itself.

    Province is the home store's, platform the customer's preferred one; both
    are fixed per customer, so every count adds up across provinces and
    platforms (re-compute the rates from the counts). Soft-deleted accounts
    are included: closing an account does not undo its history. Revenue
    follows fct_orders (completed orders only).
-#}

with

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

customer_homes as (

    select * from {{ ref('int_customer_home_stores') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select
        as_of_date,
        as_of_month

    from {{ ref('int_as_of') }}

),

members as (

    select
        customers.customer_id,
        cast(
            {{ dbt.date_trunc('month', utc_to_local_date('customers.acquired_at')) }} as date
        ) as cohort_month,
        customer_homes.home_province as province,
        -- A member known only from an import has no platform: the import is theirs.
        coalesce(customers.preferred_platform, customers.source_system) as platform

    from customers
    left join customer_homes
        on customers.customer_id = customer_homes.customer_id

),

cohorts as (

    select
        cohort_month,
        province,
        platform,
        count(*) as cohort_customers

    from members
    group by
        cohort_month,
        province,
        platform

),

months as (

    select distinct cohort_month as activity_month
    from members

    union

    select distinct cast({{ dbt.date_trunc('month', 'placed_date') }} as date) as activity_month
    from orders

),

member_months as (

    select
        members.cohort_month,
        members.province,
        members.platform,
        cast({{ dbt.date_trunc('month', 'orders.placed_date') }} as date) as activity_month,
        count(distinct orders.customer_id) as active_customers,
        count(*) as orders,
        sum(orders.net_revenue) as net_revenue

    from orders
    inner join members
        on orders.customer_id = members.customer_id
    where orders.is_completed
    group by
        members.cohort_month,
        members.province,
        members.platform,
        cast({{ dbt.date_trunc('month', 'orders.placed_date') }} as date)

),

grid as (

    select
        cohorts.cohort_month,
        months.activity_month,
        cohorts.province,
        cohorts.platform,
        cohorts.cohort_customers,
        coalesce(member_months.active_customers, 0) as active_customers,
        coalesce(member_months.orders, 0) as orders,
        coalesce(member_months.net_revenue, 0) as net_revenue

    from cohorts
    inner join months
        on cohorts.cohort_month <= months.activity_month
    cross join as_of
    left join member_months
        on
            cohorts.cohort_month = member_months.cohort_month
            and months.activity_month = member_months.activity_month
            and coalesce(cohorts.province, '') = coalesce(member_months.province, '')
            and cohorts.platform = member_months.platform
    where months.activity_month <= as_of.as_of_month

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "cast(grid.cohort_month as " ~ dbt.type_string() ~ ")",
            "'|'",
            "cast(grid.activity_month as " ~ dbt.type_string() ~ ")",
            "'|'",
            "coalesce(grid.province, 'unknown')",
            "'|'",
            "grid.platform",
        ]) }} as retention_cohort_id,

        -- grain
        grid.cohort_month,
        grid.activity_month,
        cast(
            {{ dbt.datediff('grid.cohort_month', 'grid.activity_month', 'month') }}
            as {{ dbt.type_int() }}
        ) as months_since_acquisition,
        grid.province,
        grid.platform,

        -- customers
        cast(grid.cohort_customers as {{ dbt.type_bigint() }}) as cohort_customers,
        cast(grid.active_customers as {{ dbt.type_bigint() }}) as active_customers,
        cast(grid.active_customers as double) / grid.cohort_customers as retention_rate,

        -- orders and revenue (completed orders, the chain's currency)
        cast(grid.orders as {{ dbt.type_bigint() }}) as orders,
        {{ to_money('grid.net_revenue') }} as net_revenue,
        {{ to_money(
            'sum(grid.net_revenue) over (
                partition by grid.cohort_month, grid.province, grid.platform
                order by grid.activity_month
                rows between unbounded preceding and current row
            )'
        ) }} as cumulative_net_revenue,

        -- the as-of month is still running
        grid.activity_month < as_of.as_of_month as is_month_complete

    from grid
    cross join as_of

)

select * from final

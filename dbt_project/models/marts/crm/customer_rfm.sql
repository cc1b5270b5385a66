{#-
    RFM scores and segments per customer at every month-end: one row per
    customer and as_of_month, from the month of their first completed order
    to the as-of month (whose as_of_date is the latest order in the data,
    the month-end not having come yet).

    Each row is computed from the order history up to its as_of_date, so the
    whole history is rebuilt from the orders on every run instead of being
    captured by a dbt snapshot: a snapshot records what a run happened to
    see, cannot be back-filled for months before it was switched on, and
    keeps any bug it was built with. Orders count by their latest status, so
    an order refunded after a month-end leaves that month's scores too: the
    same data always gives the same history.

    Recency: days from the last completed order to as_of_date. Frequency:
    completed orders up to as_of_date. Monetary: their net revenue.
    Scores 1-5 are quintiles of the customer's rank among the month's
    customers (5 best: most recent, most orders, most revenue):
    score = 1 + floor(5 * (rank - 1) / customers), rank() ascending in how
    good the value is, so equal values share a score.
    Segments from the recency and frequency scores (R, F):
      champions          R 5,   F 4-5
      loyal              R 3-4, F 4-5
      potential_loyalist R 4-5, F 2-3
      new                R 5,   F 1
      promising          R 4,   F 1
      need_attention     R 3,   F 3
      about_to_sleep     R 3,   F 1-2
      cannot_lose        R 1-2, F 5
      at_risk            R 1-2, F 3-4
      hibernating        R 1-2, F 1-2
-#}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

customer_orders as (

    select
        orders.customer_id,
        orders.placed_date,
        cast({{ dbt.date_trunc('month', 'orders.placed_date') }} as date) as order_month,
        orders.net_revenue

    from orders
    inner join customers
        on orders.customer_id = customers.customer_id
    where orders.is_completed

),

monthly as (

    select
        customer_id,
        order_month,
        count(*) as orders,
        sum(net_revenue) as net_revenue,
        min(placed_date) as first_order_date,
        max(placed_date) as last_order_date

    from customer_orders
    group by
        customer_id,
        order_month

),

months as (

    select distinct order_month as as_of_month
    from customer_orders

),

first_months as (

    select
        customer_id,
        min(order_month) as first_order_month

    from monthly
    group by customer_id

),

spine as (

    select
        first_months.customer_id,
        months.as_of_month

    from first_months
    inner join months
        on first_months.first_order_month <= months.as_of_month

),

cumulative as (

    select
        spine.customer_id,
        spine.as_of_month,
        sum(coalesce(monthly.orders, 0)) over customer_history as frequency_orders,
        sum(coalesce(monthly.net_revenue, 0)) over customer_history as monetary_net_revenue,
        min(monthly.first_order_date) over customer_history as first_order_date,
        max(monthly.last_order_date) over customer_history as last_order_date

    from spine
    left join monthly
        on
            spine.customer_id = monthly.customer_id
            and spine.as_of_month = monthly.order_month
    window customer_history as (
        partition by spine.customer_id
        order by spine.as_of_month
        rows between unbounded preceding and current row
    )

),

dated as (

    select
        cumulative.*,
        case
            when {{ dbt.last_day('cumulative.as_of_month', 'month') }} < as_of.as_of_date
                then cast({{ dbt.last_day('cumulative.as_of_month', 'month') }} as date)
            else as_of.as_of_date
        end as as_of_date

    from cumulative
    cross join as_of

),

measured as (

    select
        *,
        {{ dbt.datediff('last_order_date', 'as_of_date', 'day') }} as recency_days

    from dated

),

ranked as (

    select
        *,
        rank() over (partition by as_of_month order by recency_days desc) as recency_rank,
        rank() over (partition by as_of_month order by frequency_orders asc) as frequency_rank,
        rank() over (partition by as_of_month order by monetary_net_revenue asc)
            as monetary_rank,
        count(*) over (partition by as_of_month) as customers_in_month

    from measured

),

scored as (

    select
        *,
        1 + cast(
            floor(cast(5 * (recency_rank - 1) as double) / customers_in_month)
            as {{ dbt.type_int() }}
        )
            as recency_score,
        1 + cast(
            floor(cast(5 * (frequency_rank - 1) as double) / customers_in_month)
            as {{ dbt.type_int() }}
        )
            as frequency_score,
        1 + cast(
            floor(cast(5 * (monetary_rank - 1) as double) / customers_in_month)
            as {{ dbt.type_int() }}
        )
            as monetary_score

    from ranked

),

segmented as (

    select
        *,
        case
            when recency_score = 5 and frequency_score >= 4 then 'champions'
            when recency_score >= 3 and frequency_score >= 4 then 'loyal'
            when recency_score >= 4 and frequency_score >= 2 then 'potential_loyalist'
            when recency_score = 5 then 'new'
            when recency_score = 4 then 'promising'
            when recency_score = 3 and frequency_score = 3 then 'need_attention'
            when recency_score = 3 then 'about_to_sleep'
            when frequency_score = 5 then 'cannot_lose'
            when frequency_score >= 3 then 'at_risk'
            else 'hibernating'
        end as rfm_segment

    from scored

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "cast(segmented.customer_id as " ~ dbt.type_string() ~ ")",
            "'|'",
            "cast(segmented.as_of_month as " ~ dbt.type_string() ~ ")",
        ]) }} as customer_rfm_id,
        segmented.customer_id,

        -- as of
        segmented.as_of_month,
        segmented.as_of_date,
        segmented.as_of_month < cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date)
            as is_month_complete,

        -- order history up to as_of_date
        segmented.first_order_date,
        segmented.last_order_date,
        cast(segmented.recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(segmented.frequency_orders as {{ dbt.type_bigint() }}) as frequency_orders,
        {{ to_money('segmented.monetary_net_revenue') }} as monetary_net_revenue,

        -- scores and segment
        segmented.recency_score,
        segmented.frequency_score,
        segmented.monetary_score,
        {{ dbt.concat([
            "cast(segmented.recency_score as " ~ dbt.type_string() ~ ")",
            "cast(segmented.frequency_score as " ~ dbt.type_string() ~ ")",
            "cast(segmented.monetary_score as " ~ dbt.type_string() ~ ")",
        ]) }} as rfm_score,
        segmented.rfm_segment,
        lag(segmented.rfm_segment) over (
            partition by segmented.customer_id order by segmented.as_of_month
        ) as previous_rfm_segment

    from segmented
    cross join as_of

)

select * from final

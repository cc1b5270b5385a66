{#-
    Customer flows per month: who became active, came back, and was lost.
    One row per month and scope: the chain, each province, each home store.

    A customer is churned once they go more than churn_inactivity_days
    (default 60) without a completed order. The lapse is dated at the last
    order before it, as the simulator (and the BG/NBD model behind it) dates
    a dropout at the last purchase: a lapse belongs to the month of the visit
    that turned out to be the last. So a month's churn is final only once
    churn_inactivity_days have passed after it (is_churn_final); until then
    it can still grow, churned_customers counts the lapses known so far and
    churn_rate is null.

    Per customer, ordered by completed-order day:
      new          first completed order
      reactivated  a completed order more than churn_inactivity_days after
                   the previous one (the customer had churned)
      churned      a completed order followed by more than
                   churn_inactivity_days without one (up to the as-of date
                   when no order follows)
    These move a customer in and out of the active base, so per scope:
      active_customers_end = active_customers_start + new + reactivated - churned
    and next month's start is this month's end.

    Customers are counted in their home store and its province; soft-deleted
    accounts are included (closing an account does not undo its history).
    The as-of date is the latest order placed in the data, as in
    dim_customers, so a rebuild of the same data gives the same figures.
-#}

{%- set churn_inactivity_days = var('churn_inactivity_days') | int -%}
{#- A lapse from the month's last day is only known churn_inactivity_days later. -#}
{%- set is_churn_final -%}
    {{ dbt.dateadd(
        'day', churn_inactivity_days, dbt.last_day('measured.activity_month', 'month')
    ) }} < as_of.as_of_date
{%- endset -%}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

customer_homes as (

    select * from {{ ref('int_customer_home_stores') }}

),

stores as (

    select * from {{ ref('dim_stores') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

order_days as (

    select distinct
        customer_id,
        placed_date as order_date

    from orders
    where is_completed

),

sequenced as (

    select
        customer_id,
        order_date,
        lag(order_date) over (partition by customer_id order by order_date) as previous_order_date,
        lead(order_date) over (partition by customer_id order by order_date) as next_order_date

    from order_days

),

order_events as (

    select
        sequenced.customer_id,
        cast({{ dbt.date_trunc('month', 'sequenced.order_date') }} as date) as activity_month,
        sequenced.previous_order_date is null as is_first_order,
        coalesce(
            {{ dbt.datediff('sequenced.previous_order_date', 'sequenced.order_date', 'day') }}
            > {{ churn_inactivity_days }},
            false
        ) as is_reactivation,
        {{ dbt.datediff(
            'sequenced.order_date',
            'coalesce(sequenced.next_order_date, as_of.as_of_date)',
            'day'
        ) }} > {{ churn_inactivity_days }} as is_lapse_start,
        sequenced.previous_order_date is not null as is_repeat_order

    from sequenced
    cross join as_of

),

-- At most one of each event per customer and month: a lapse or a comeback
-- spans more than churn_inactivity_days, so two never fall in one month.
customer_months as (

    select
        order_events.customer_id,
        order_events.activity_month,
        customer_homes.home_store_id as store_id,
        customer_homes.home_province as province,
        max(case when order_events.is_first_order then 1 else 0 end) as is_new,
        max(case when order_events.is_reactivation then 1 else 0 end) as is_reactivated,
        max(case when order_events.is_lapse_start then 1 else 0 end) as is_churned,
        max(
            case when order_events.is_lapse_start and order_events.is_repeat_order then 1 else 0 end
        ) as is_churned_repeat

    from order_events
    inner join customer_homes
        on order_events.customer_id = customer_homes.customer_id
    group by
        order_events.customer_id,
        order_events.activity_month,
        customer_homes.home_store_id,
        customer_homes.home_province

),

months as (

    select distinct activity_month
    from customer_months

),

-- The chain, each province and each store (macros/scopes.sql).
scopes as (

    {{ scopes_of_stores('stores') }}

),

spine as (

    select
        scopes.grain,
        scopes.province,
        scopes.store_id,
        months.activity_month

    from scopes
    cross join months

),

flows as (

    {{ sum_by_scope('customer_months', {
        'new_customers': 'is_new',
        'reactivated_customers': 'is_reactivated',
        'churned_customers': 'is_churned',
        'churned_repeat_customers': 'is_churned_repeat',
    }) }}

),

filled as (

    select
        spine.grain,
        spine.province,
        spine.store_id,
        spine.activity_month,
        coalesce(flows.new_customers, 0) as new_customers,
        coalesce(flows.reactivated_customers, 0) as reactivated_customers,
        coalesce(flows.churned_customers, 0) as churned_customers,
        coalesce(flows.churned_repeat_customers, 0) as churned_repeat_customers

    from spine
    left join flows
        on
            spine.activity_month = flows.activity_month
            and {{ same_scope('spine', 'flows') }}

),

balanced as (

    select
        *,
        coalesce(
            sum(new_customers + reactivated_customers - churned_customers) over (
                partition by grain, province, store_id
                order by activity_month
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as active_customers_start

    from filled

),

measured as (

    select
        *,
        active_customers_start + new_customers + reactivated_customers as active_customers

    from balanced

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "measured.grain",
            "'|'",
            "cast(measured.activity_month as " ~ dbt.type_string() ~ ")",
            "'|'",
            "coalesce(cast(measured.store_id as " ~ dbt.type_string() ~ "), measured.province, 'chain')",
        ]) }} as churn_monthly_id,
        measured.grain,
        measured.activity_month,
        measured.province,
        measured.store_id,
        stores.store_code,

        -- flows
        cast(measured.active_customers_start as {{ dbt.type_bigint() }}) as active_customers_start,
        cast(measured.new_customers as {{ dbt.type_bigint() }}) as new_customers,
        cast(measured.reactivated_customers as {{ dbt.type_bigint() }}) as reactivated_customers,
        cast(measured.active_customers as {{ dbt.type_bigint() }}) as active_customers,
        cast(measured.churned_customers as {{ dbt.type_bigint() }}) as churned_customers,
        cast(measured.churned_repeat_customers as {{ dbt.type_bigint() }})
            as churned_repeat_customers,
        cast(measured.active_customers - measured.churned_customers as {{ dbt.type_bigint() }})
            as active_customers_end,

        -- rate (a double division on every engine); null until final, when a
        -- month's churn can still grow: a dashboard would plot 0% otherwise
        case
            when {{ is_churn_final }}
                then
                    cast(measured.churned_customers as double)
                    / nullif(measured.active_customers, 0)
        end as churn_rate,
        {{ is_churn_final }} as is_churn_final

    from measured
    cross join as_of
    left join stores
        on measured.store_id = stores.store_id

)

select * from final

{#-
    One row per experiment and unit: the unit's first Experiment Viewed, the
    session it happened in (the exposure session, whose Product Viewed and
    Product Added counts give the add rate) and whether the guest ordered
    afterwards. The statistics come later, from these rows.
-#}
with

messages as (

    select * from {{ ref('stg_events__messages') }}

),

-- The sessionising view rather than fct_sessions: the same sessions, and no
-- dependency of this table on the day-partitioned fct_sessions, which Dagster
-- builds in its own (partitioned) run.
sessions as (

    select * from {{ ref('int_sessions_sessionised') }}

),

orders as (

    select * from {{ ref('stg_ordering__orders') }}

),

exposure_events as (

    select
        message_id,
        experiment_id,
        experiment_name,
        variation_id,
        variation_name,
        anonymous_id,
        platform,
        customer_id,
        occurred_at
    from messages
    where event_name = 'Experiment Viewed' and experiment_id is not null

),

-- The unit an experiment randomises is not in the event. An experiment whose
-- every exposure carries a userId is only shown to signed-in guests and is
-- randomised by customer; any other is randomised by anonymous id.
experiment_units as (

    select
        experiment_id,
        case
            when count(*) = count(customer_id) then 'customer'
            else 'anonymous_id'
        end as unit_type
    from exposure_events
    group by experiment_id

),

unit_events as (

    select
        exposure_events.*,
        experiment_units.unit_type,
        case
            when experiment_units.unit_type = 'customer'
                then cast(exposure_events.customer_id as {{ dbt.type_string() }})
            else exposure_events.anonymous_id
        end as unit_id
    from exposure_events
    inner join experiment_units
        on exposure_events.experiment_id = experiment_units.experiment_id

),

first_exposures as (

    select
        *,
        count(*) over unit_exposures as exposures,
        min(variation_id) over unit_exposures
        != max(variation_id) over unit_exposures as has_multiple_variations
    from unit_events
    window unit_exposures as (partition by experiment_id, unit_id)
    qualify row_number() over (
            partition by experiment_id, unit_id order by occurred_at asc, message_id asc
        ) = 1

),

exposure_sessions as (

    select
        first_exposures.*,
        sessions.session_id,
        sessions.customer_id as session_customer_id,
        sessions.product_views,
        sessions.product_adds,
        sessions.has_completed_order,
        sessions.order_id as session_order_id
    from first_exposures
    left join sessions
        on
            first_exposures.anonymous_id = sessions.anonymous_id
            and first_exposures.platform = sessions.platform
            and first_exposures.occurred_at between sessions.session_started_at
            and sessions.session_ended_at

),

-- A completed order by the exposed guest within attribution_window_days after
-- the first exposure.
orders_after as (

    select
        exposure_sessions.experiment_id,
        exposure_sessions.unit_id,
        orders.order_id,
        orders.placed_at
    from exposure_sessions
    inner join orders
        on
            exposure_sessions.session_customer_id = orders.customer_id
            and orders.status = 'completed'
            and not orders.is_deleted
            and exposure_sessions.occurred_at <= orders.placed_at
            and orders.placed_at < {{ dbt.dateadd(
                'day', var('attribution_window_days'), 'exposure_sessions.occurred_at'
            ) }}
    qualify row_number() over (
            partition by exposure_sessions.experiment_id, exposure_sessions.unit_id
            order by orders.placed_at asc, orders.order_id asc
        ) = 1

),

-- The CUPED covariate: the exposed guest's completed orders in the
-- pre_exposure_lookback_days before the first exposure. Counted from the
-- orders, so it cannot be moved by the treatment; a unit without a known
-- guest has none (0, not null, so the regression keeps the unit).
orders_before as (

    select
        exposure_sessions.experiment_id,
        exposure_sessions.unit_id,
        count(*) as orders_before_exposure
    from exposure_sessions
    inner join orders
        on
            exposure_sessions.session_customer_id = orders.customer_id
            and orders.status = 'completed'
            and not orders.is_deleted
            and exposure_sessions.occurred_at > orders.placed_at
            and orders.placed_at >= {{ dbt.dateadd(
                'day', -1 * var('pre_exposure_lookback_days', 90), 'exposure_sessions.occurred_at'
            ) }}
    group by
        exposure_sessions.experiment_id,
        exposure_sessions.unit_id

),

final as (

    select
        {{ dbt.hash(
            "exposure_sessions.experiment_id || '|' || exposure_sessions.unit_type || '|' "
            ~ "|| exposure_sessions.unit_id"
        ) }} as exposure_id,
        exposure_sessions.experiment_id,
        exposure_sessions.experiment_name,
        exposure_sessions.variation_id,
        exposure_sessions.variation_name,
        exposure_sessions.unit_type,
        exposure_sessions.unit_id,
        exposure_sessions.anonymous_id,
        exposure_sessions.session_customer_id as customer_id,
        exposure_sessions.platform,
        exposure_sessions.occurred_at as first_exposed_at,
        {{ utc_to_local_date('exposure_sessions.occurred_at') }} as first_exposed_date,
        cast(exposure_sessions.exposures as {{ dbt.type_bigint() }}) as exposures,
        exposure_sessions.has_multiple_variations,
        exposure_sessions.session_id as exposure_session_id,
        cast(exposure_sessions.product_views as {{ dbt.type_bigint() }})
            as exposure_session_product_views,
        cast(exposure_sessions.product_adds as {{ dbt.type_bigint() }})
            as exposure_session_product_adds,
        coalesce(exposure_sessions.product_adds > 0, false) as has_added_product,
        coalesce(exposure_sessions.has_completed_order, false) as has_ordered_in_exposure_session,
        orders_after.order_id is not null as has_ordered_after_exposure,
        orders_after.order_id as first_order_after_exposure_id,
        orders_after.placed_at as first_order_after_exposure_at,
        cast(coalesce(orders_before.orders_before_exposure, 0) as {{ dbt.type_bigint() }})
            as orders_before_exposure
    from exposure_sessions
    left join orders_after
        on
            exposure_sessions.experiment_id = orders_after.experiment_id
            and exposure_sessions.unit_id = orders_after.unit_id
    left join orders_before
        on
            exposure_sessions.experiment_id = orders_before.experiment_id
            and exposure_sessions.unit_id = orders_before.unit_id

)

select * from final

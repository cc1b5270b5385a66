{#-
    One row per customer (an account that is not soft-deleted, as in
    dim_customers) with at least one completed order: the behaviour the
    clusters are built from, as of the latest order placed in the data
    (customer_rfm's and dim_customers' as-of, so a rebuild of the same data
    gives the same features). int_customer_features_as_of computes them, as of
    this day and of the clusters' refit day in one query.
-#}

with

features as (

    select * from {{ ref('int_customer_features_as_of') }}
    where as_of_kind = 'latest'

),

final as (

    select
        -- ids
        customer_id,

        -- as of
        as_of_date,

        -- RFM
        first_order_date,
        last_order_date,
        recency_days,
        tenure_days,
        frequency_orders,
        monetary_net_revenue,
        average_order_value,

        -- order mix: items (by menu category: customer_menu_mix)
        items,

        -- order mix: fulfilment, platform, day-part, marketing touch; promo use
        delivery_order_share,
        pickup_order_share,
        dine_in_order_share,
        app_order_share,
        morning_order_share,
        lunch_order_share,
        afternoon_order_share,
        evening_order_share,
        marketing_touch_order_share,
        promo_order_share,

        -- feedback
        feedback_responses,
        feedback_per_order,
        avg_rating,
        avg_nps_score

    from features

)

select * from final

{#-
    One view for every Segment call: the lake holds them in one table, and
    sessions need identify, track, page and screen calls in one time line.
    JSON fields are read with json_text() (macros/engine_sql.sql: dbt has no
    cross-database JSON macro); each path is read once, here. Numbers inside
    the JSON are cast safely: a malformed amount becomes null instead of
    failing every model downstream.
-#}
with

source as (

    select * from {{ lake_source('events', 'messages') }}

),

extracted as (

    select
        *,
        {{ json_text('context', '$.page.url') }} as context_page_url,
        {{ json_text('properties', '$.url') }} as deep_link_url,
        {{ json_text('context', '$.library.name') }} as library_name,
        coalesce(
            {{ json_text('context', '$.app.namespace') }},
            {{ json_text('context', '$.os.name') }}
        ) as app_marker

    from source

),

final as (

    select
        -- ids
        message_id,
        anonymous_id,
        nullif(trim(user_id), '') as user_id,
        -- userId is the ordering platform's customer_id; anything else stays null here.
        {{ dbt.safe_cast("nullif(trim(user_id), '')", dbt.type_bigint()) }} as customer_id,
        previous_id,

        -- the call
        type as message_type,
        case when type = 'track' then event end as event_name,
        case when type = 'page' then name end as page_name,
        case when type = 'page' then category end as page_category,
        case when type = 'screen' then name end as screen_name,

        -- where it came from: the mobile SDKs always send context.app and context.os
        case
            when app_marker is not null then 'app'
            when library_name = 'analytics.js' or context_page_url is not null then 'web'
            else 'server'
        end as platform,
        {{ json_text('context', '$.device.id') }} as device_id,
        {{ json_text('context', '$.device.type') }} as device_type,
        {{ json_text('context', '$.device.model') }} as device_model,
        {{ json_text('context', '$.os.name') }} as os_name,
        {{ json_text('context', '$.os.version') }} as os_version,
        {{ json_text('context', '$.app.version') }} as app_version,
        {{ json_text('context', '$.app.build') }} as app_build,
        library_name,
        {{ json_text('context', '$.library.version') }} as library_version,
        {{ json_text('context', '$.userAgent') }} as user_agent,
        {{ json_text('context', '$.ip') }} as ip_address,
        {{ json_text('context', '$.locale') }} as locale_code,

        -- web page (every web call carries the page it happened on)
        {{ json_text('context', '$.page.path') }} as page_path,
        context_page_url as page_url,
        nullif({{ json_text('context', '$.page.referrer') }}, '') as page_referrer,
        {{ json_text('context', '$.page.title') }} as page_title,
        nullif({{ json_text('context', '$.page.search') }}, '') as page_search,

        -- app deep link (Deep Link Opened)
        deep_link_url,
        {{ json_text('properties', '$.referring_application') }} as referring_application,

        -- campaign: the utm parameters of the landing page or deep link
        {{ json_text('context', '$.campaign.source') }} as utm_source,
        {{ json_text('context', '$.campaign.medium') }} as utm_medium,
        {{ json_text('context', '$.campaign.name') }} as utm_campaign,
        {{ json_text('context', '$.campaign.content') }} as utm_content,
        {{ json_text('context', '$.campaign.term') }} as utm_term,
        -- ad click ids travel in the landing URL's query string
        nullif(
            regexp_extract(coalesce(context_page_url, deep_link_url), '[?&]gclid=([^&#]+)', 1), ''
        ) as gclid,
        nullif(
            regexp_extract(coalesce(context_page_url, deep_link_url), '[?&]fbclid=([^&#]+)', 1), ''
        ) as fbclid,

        -- Experiment Viewed
        {{ json_text('properties', '$.experiment_id') }} as experiment_id,
        {{ json_text('properties', '$.experiment_name') }} as experiment_name,
        {{ json_text('properties', '$.variation_id') }} as variation_id,
        {{ json_text('properties', '$.variation_name') }} as variation_name,

        -- products (Product Viewed, Product Added)
        {{ json_text('properties', '$.product_id') }} as product_id,
        {{ json_text('properties', '$.sku') }} as product_sku,
        {{ json_text('properties', '$.name') }} as product_name,
        {{ json_text('properties', '$.category') }} as product_category,
        {{ dbt.safe_cast(json_text('properties', '$.quantity'), dbt.type_bigint()) }}
            as product_quantity,
        {{ dbt.safe_cast(json_text('properties', '$.price'), type_money()) }}
            as product_price,
        coalesce(
            {{ json_text('properties', '$.cart_id') }},
            {{ json_text('properties', '$.checkout_id') }}
        ) as cart_id,

        -- Order Completed: order_id is the ordering platform's order_id
        {{ dbt.safe_cast(json_text('properties', '$.order_id'), dbt.type_bigint()) }}
            as order_id,
        {{ json_text('properties', '$.coupon') }} as coupon_code,
        {{ json_text('properties', '$.currency') }} as currency_code,
        {{ dbt.safe_cast(json_text('properties', '$.total'), type_money()) }}
            as order_total,
        {{ dbt.safe_cast(json_text('properties', '$.revenue'), type_money()) }}
            as order_revenue,
        {{ dbt.safe_cast(json_text('properties', '$.shipping'), type_money()) }}
            as order_shipping,
        {{ dbt.safe_cast(json_text('properties', '$.discount'), type_money()) }}
            as order_discount,
        -- Checkout Started
        {{ dbt.safe_cast(json_text('properties', '$.value'), type_money()) }}
            as checkout_value,

        -- identify traits, normalised for matching like stg_ordering__customers
        nullif(lower(trim({{ json_text('traits', '$.email') }})), '') as trait_email,
        nullif(trim({{ json_text('traits', '$.phone') }}), '') as trait_phone,

        -- timestamps (UTC)
        {{ to_utc_timestamp('timestamp') }} as occurred_at,
        {{ to_local_date('timestamp') }} as occurred_date,
        {{ to_utc_timestamp('original_timestamp') }} as device_occurred_at,
        {{ to_utc_timestamp('sent_at') }} as sent_at,
        {{ to_utc_timestamp('received_at') }} as received_at,

        -- lineage
        _landing_file as landing_file,
        _dlt_load_id as dlt_load_id

    from extracted

)

select * from final

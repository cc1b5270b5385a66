{#-
    JSON fields are read with json_text() (macros/engine_sql.sql: dbt has no
    cross-database JSON macro), each path once, here. The recipient's address
    and the identifiers block (personal data) stay in the lake: customer_id is
    the join key.
-#}
with

source as (

    select * from {{ lake_source('messaging', 'delivery_events') }}

),

extracted as (

    select
        *,
        {{ json_text('data', '$.href') }} as link_url

    from source

),

final as (

    select
        -- ids
        event_id,
        delivery_id,
        {{ dbt.safe_cast('campaign_id', dbt.type_bigint()) }} as campaign_id,
        {{ dbt.safe_cast("nullif(trim(customer_id), '')", dbt.type_bigint()) }} as customer_id,

        -- the event
        object_type as channel,
        metric,
        {{ json_text('data', '$.subject') }} as subject,
        nullif({{ json_text('data', '$.failure_message') }}, '') as failure_message,

        -- clicked: the tracked link; email links carry the chain's utm tags
        link_url,
        {{ dbt.safe_cast(json_text('data', '$.link_id'), dbt.type_bigint()) }} as link_id,
        nullif(regexp_extract(link_url, '[?&]utm_source=([^&#]+)', 1), '') as link_utm_source,
        nullif(regexp_extract(link_url, '[?&]utm_medium=([^&#]+)', 1), '') as link_utm_medium,
        nullif(regexp_extract(link_url, '[?&]utm_campaign=([^&#]+)', 1), '') as link_utm_campaign,
        -- link scanners click email links too; the provider flags them
        coalesce(
            {{ dbt.safe_cast(json_text('data', '$.machine'), 'boolean') }}, false
        ) as is_machine_click,

        -- timestamps (UTC)
        {{ to_utc_timestamp('occurred_at') }} as occurred_at,

        -- lineage
        _landing_file as landing_file

    from extracted

)

select * from final

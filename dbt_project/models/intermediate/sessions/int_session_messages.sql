{#-
    The calls sessionisation reads (a device's app and web calls) with the
    fields int_sessions_split takes from them, out of the message's JSON
    once, as its lake load arrives. int_sessions_split sessionises again, in
    each run, every device with a new call over its whole history; read from
    the lake, the filter to those devices came after every message's JSON
    had been read: in a day's increment of a 100,000-guest year, 8 s, of
    which 4 s scanning the JSON of 9.3 million messages for the 0.5 million
    of 5,800 devices.

    Incremental by lake load, as int_identity_messages: a run appends the
    calls of loads newer than the newest this table holds. The lake only
    appends messages, and forget (regulars/privacy/forget.py) deletes a
    guest's rows here as everywhere, so the table is what a full refresh
    would build. On Spark, a table built whole (dbt_project.yml). A change to
    this model's SQL needs
    `dbt build --full-refresh --select int_session_messages+`.
-#}
{{
    config(
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{%- set newest_load_id = none %}
{%- if is_incremental() %}
    {%- set newest_load_id = newest_in_this('dlt_load_id') %}
{%- endif %}

with

messages as (

    select * from {{ ref('stg_events__messages') }}
    -- A session is a device's: server-side calls with only a userId have none.
    where
        anonymous_id is not null
        and platform in ('app', 'web')
        and occurred_at is not null
        {% if newest_load_id is not none %}
            -- A constant, not a subquery over this table: DuckDB would read every
            -- message's JSON before restricting them (macros/incremental.sql).
            and dlt_load_id > '{{ newest_load_id }}'
        {% endif %}

),

final as (

    select
        message_id,
        anonymous_id,
        platform,
        customer_id,
        device_id,
        message_type,
        event_name,
        page_path,
        page_url,
        page_referrer,
        screen_name,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        order_id,
        occurred_at,
        dlt_load_id,
        coalesce(gclid, fbclid) as click_id
    from messages

)

select * from final

{#-
    The fields identity stitching reads from every event message, taken out of
    the message's JSON once, as its lake load arrives. Stitching reads every
    message of the chain's history on each run (a sign-up today re-owns an
    anonymous id of any day), and the device id, click ids and traits are in
    JSON: read from the lake each time, they were two thirds of the 10 s
    int_identities_stitched took for a day's increment of a 100,000-guest year.

    Incremental by lake load: a run appends the messages of loads newer than
    the newest this table holds. The lake only appends messages, and forget
    (regulars/privacy/forget.py) deletes a guest's rows here as everywhere, so
    the table is what a full refresh would build. On Spark, a table built
    whole (dbt_project.yml). A change to this model's SQL needs
    `dbt build --full-refresh --select int_identity_messages+`.
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
    {% if newest_load_id is not none %}
        -- A constant, not a subquery over this table: DuckDB would read every
        -- message's JSON before restricting them (macros/incremental.sql).
        where dlt_load_id > '{{ newest_load_id }}'
    {% endif %}

),

final as (

    select
        message_id,
        message_type,
        anonymous_id,
        previous_id,
        customer_id,
        device_id,
        trait_phone,
        occurred_at,
        dlt_load_id,
        coalesce(gclid, fbclid) as click_id
    from messages

)

select * from final

{#-
    Event messages grouped by the identifiers they carry, with when each group
    was first and last seen: what identity stitching reads instead of every
    message. Every rule of int_identities_stitched is a first-by-time, a min
    or a max over messages, so it gives the same answer over these groups,
    and at 100,000 guests they are 555,000 rows against 9.5 million messages.

    Incremental by lake load, as stg_events__messages: a run groups the
    messages of loads newer than the newest this table holds and merges them
    into the groups they extend (first and last seen, first message), so a
    day's run reads a day's messages. The lake only appends messages; forget
    (regulars/privacy/forget.py) deletes a guest's rows here as everywhere, by
    the anonymous id, previous id and customer id each row carries. On Spark, a
    table built whole (dbt_project.yml). A change to this model's SQL needs
    `dbt build --full-refresh --select int_messages_grouped+`.
-#}
{{
    config(
        incremental_strategy='delete+insert',
        unique_key='group_key',
        on_schema_change='fail',
    )
}}

{#- What a group shares. previous_id only for alias calls and trait_phone only
    for identify calls: the only calls whose rules read them. -#}
{%- set identifiers = [
    'anonymous_id', 'customer_id', 'device_id', 'click_id', 'previous_id', 'trait_phone'
] %}
{#- Each identifier as its length, a colon and itself, or '-' when null: no two
    groups give the same text, whatever their ids hold. -#}
{%- set parts = [] %}
{%- for identifier in identifiers %}
    {%- set as_text = 'cast(' ~ identifier ~ ' as ' ~ dbt.type_string() ~ ')' %}
    {%- do parts.append(
        "coalesce(cast(length(" ~ as_text ~ ") as " ~ dbt.type_string() ~ ") || ':' || "
        ~ as_text ~ ", '-')"
    ) %}
{%- endfor %}
{%- set group_key_text = parts | join(" || '|' || ") %}
{%- set first_message_order = ['first_seen_at', 'first_message_id'] %}
{%- set newest_load_id = none %}
{%- if is_incremental() %}
    {%- set newest_load_id = newest_in_this('dlt_load_id') %}
{%- endif %}

with

messages as (

    select
        anonymous_id,
        customer_id,
        device_id,
        message_id,
        occurred_at,
        dlt_load_id,
        coalesce(gclid, fbclid) as click_id,
        case when message_type = 'alias' then previous_id end as previous_id,
        case when message_type = 'identify' then trait_phone end as trait_phone
    from {{ ref('stg_events__messages') }}
    {% if newest_load_id is not none %}
        where dlt_load_id > '{{ newest_load_id }}'
    {% endif %}

),

new_groups as (

    select
        {{ identifiers | join(',\n        ') }},
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        {{ first_non_null_in_group('message_id', ['occurred_at', 'message_id']) }}
            as first_message_id,
        max(dlt_load_id) as dlt_load_id
    from messages
    group by {{ identifiers | join(', ') }}

),

keyed as (

    select
        {{ dbt.hash(group_key_text) }} as group_key,
        *
    from new_groups

),

{% if newest_load_id is not none %}

    -- The groups the new messages extend, as they stood, merged with them.
    extended as (

        select * from keyed

        union all

        -- The table's columns are keyed's, in its order (on_schema_change: fail).
        select grouped_so_far.*
        from {{ this }} as grouped_so_far
        inner join keyed
            on grouped_so_far.group_key = keyed.group_key

    ),

    final as (

        select
            group_key,
            {{ identifiers | join(',\n            ') }},
            min(first_seen_at) as first_seen_at,
            max(last_seen_at) as last_seen_at,
            {{ first_non_null_in_group('first_message_id', first_message_order) }}
                as first_message_id,
            max(dlt_load_id) as dlt_load_id
        from extended
        group by group_key, {{ identifiers | join(', ') }}

    )

{% else %}

    final as (

        select * from keyed

    )

{% endif %}

select * from final

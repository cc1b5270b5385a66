-- Store rows partition the feedback: their responses add up to every
-- response in staging, per month. Returns the months where they do not.
-- Dagster shows it as a check on feedback_summary.

{{ config(meta={'dagster': {'ref': {'name': 'feedback_summary'}}}) }}

with

summary as (

    select * from {{ ref('feedback_summary') }}

),

feedback as (

    select * from {{ ref('stg_ordering__order_feedback') }}

),

summarised as (

    select
        feedback_month,
        sum(responses) as responses

    from summary
    where grain = 'store'
    group by feedback_month

),

-- Months are the chain's, as in feedback_summary.
received as (

    select
        cast(
            {{ dbt.date_trunc('month', utc_to_local_date('created_at')) }} as date
        ) as feedback_month,
        count(*) as responses

    from feedback
    group by feedback_month

),

final as (

    select
        coalesce(received.feedback_month, summarised.feedback_month) as feedback_month,
        coalesce(received.responses, 0) as received_responses,
        coalesce(summarised.responses, 0) as summarised_responses

    from received
    full outer join summarised
        on received.feedback_month = summarised.feedback_month
    where coalesce(received.responses, 0) != coalesce(summarised.responses, 0)

)

select * from final

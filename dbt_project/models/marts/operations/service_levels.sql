{#-
    Service levels of the backend: one row per UTC day, service and client
    platform. Definitions (also in the yml):
      failed call     a server error (HTTP 5xx) or a client timeout: the
                      service did not do its job. 4xx answers are the
                      client's mistake (bad token, payment declined) and
                      count as answered.
      error_rate      failed calls / calls
      availability    1 - error_rate: the share of calls the service answered
                      (the SLO convention of good events over valid events)
      latency         percentiles over answered calls only: a timeout's
                      latency is the client's cap, not a measurement.

    Incremental on the call date (delete+insert replaces whole days): a
    Dagster partition run rewrites its window's days (macros/
    partition_window.sql); a plain run recomputes from event_lookback_days before the
    newest day already built, so calls that arrive late still land in their
    day. Either way a full refresh gives the same rows.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy=day_partition_strategy(),
        unique_key='call_date',
        partition_by=day_partition_by('call_date'),
        tags=['day_partitioned'],
        on_schema_change='append_new_columns',
    )
}}

{%- set lookback_days = var('event_lookback_days') | int %}

with

api_calls as (

    select * from {{ ref('stg_telemetry__api_calls') }}

    {% if has_partition_window() %}
        -- A Dagster partition (or backfill) run rewrites exactly its days.
        where
            {{ around_partition_window('occurred_at') }}
            and {{ in_partition_window(utc_to_local_date('occurred_at')) }}
    {% elif is_incremental() %}
        -- Whole days from event_lookback_days before the newest day built.
        where
            occurred_at >= (
                select
                    cast(
                        {{ dbt.dateadd('day', -lookback_days, 'max(call_date)') }}
                        as {{ dbt.type_timestamp() }}
                    ) as reprocess_from_at
                from {{ this }}
            )
    {% endif %}

),

classified as (

    select
        {{ utc_to_local_date('occurred_at') }} as call_date,
        service,
        platform,
        latency_ms,
        is_timeout,
        coalesce(status_code < 400, false) as is_successful,
        coalesce(status_code between 400 and 499, false) as is_client_error,
        coalesce(status_code >= 500, false) as is_server_error,
        -- A timeout's latency is the client's cap, not a measurement.
        case when not is_timeout then latency_ms end as answered_latency_ms

    from api_calls

),

daily as (

    select
        call_date,
        service,
        platform,
        count(*) as calls,
        sum(case when is_successful then 1 else 0 end) as successful_calls,
        sum(case when is_client_error then 1 else 0 end) as client_error_calls,
        sum(case when is_server_error then 1 else 0 end) as server_error_calls,
        sum(case when is_timeout then 1 else 0 end) as timeout_calls,
        percentile_cont(0.50) within group (order by answered_latency_ms) as p50_latency_ms,
        percentile_cont(0.95) within group (order by answered_latency_ms) as p95_latency_ms,
        percentile_cont(0.99) within group (order by answered_latency_ms) as p99_latency_ms

    from classified
    group by
        call_date,
        service,
        platform

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "cast(call_date as " ~ dbt.type_string() ~ ")", "'|'", "service", "'|'", "platform"
        ]) }} as service_level_id,

        -- grain
        call_date,
        service,
        platform,

        -- volumes
        cast(calls as {{ dbt.type_bigint() }}) as calls,
        cast(successful_calls as {{ dbt.type_bigint() }}) as successful_calls,
        cast(client_error_calls as {{ dbt.type_bigint() }}) as client_error_calls,
        cast(server_error_calls as {{ dbt.type_bigint() }}) as server_error_calls,
        cast(timeout_calls as {{ dbt.type_bigint() }}) as timeout_calls,
        cast(server_error_calls + timeout_calls as {{ dbt.type_bigint() }}) as failed_calls,

        -- rates (a double division on every engine: Spark divides numerics as decimals)
        cast(server_error_calls + timeout_calls as double) / calls as error_rate,
        cast(client_error_calls as double) / calls as client_error_rate,
        1 - cast(server_error_calls + timeout_calls as double) / calls as availability,

        -- latency (ms, answered calls)
        p50_latency_ms,
        p95_latency_ms,
        p99_latency_ms

    from daily

)

select * from final

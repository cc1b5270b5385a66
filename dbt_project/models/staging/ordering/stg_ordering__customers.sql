with

source as (

    select * from {{ lake_source('ordering', 'customers') }}

),

final as (

    select
        -- ids
        customer_id,
        home_store_id,

        -- personal data, normalised for matching
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(full_name), '') as full_name,

        -- attributes
        preferred_platform,
        acquisition_channel,

        -- flags
        accepts_email_marketing as has_email_consent,
        accepts_sms_marketing as has_sms_consent,
        deleted_at is not null as is_deleted,

        -- timestamps (UTC)
        {{ to_utc_timestamp('signed_up_at') }} as signed_up_at,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ to_utc_timestamp('deleted_at') }} as deleted_at

    from source

)

select * from final

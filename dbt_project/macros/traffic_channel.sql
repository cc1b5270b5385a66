{#-
    The marketing channel of a visit, from its source and medium: a Meta
    platform as source with a paid medium (paid_social, paid*, *cp*, ppc,
    retargeting) -> that platform's channel (meta_ads_channel.sql), cpc ->
    google_search, organic -> organic_search, email, sms, referral, none /
    (none) or no source -> direct, else other (paid_social from a source
    that is not Meta's included). One rule for the campaign marts and the
    clusters' marketing touch, so that a click one counts as paid the other
    does too.
-#}
{% macro traffic_channel(source, medium) -%}
    case
        when
            {{ meta_ads_channel(source) }} is not null
            and {{ regexp_full_match('lower(' ~ medium ~ ')', 'paid.*|.*cp.*|ppc|retargeting') }}
            then {{ meta_ads_channel(source) }}
        when {{ medium }} = 'cpc' then 'google_search'
        when {{ medium }} = 'organic' then 'organic_search'
        when {{ medium }} = 'email' then 'email'
        when {{ medium }} = 'sms' then 'sms'
        when {{ medium }} = 'referral' then 'referral'
        when {{ source }} is null or {{ medium }} is null or {{ medium }} in ('none', '(none)')
            then 'direct'
        else 'other'
    end
{%- endmacro %}


{#- The channels a guest was marketed to through, as a SQL list: paid social, paid search, e-mail. -#}
{% macro marketing_channels() -%}
    ('{{ (meta_ads_channel_names() + ['google_search', 'email']) | join("', '") }}')
{%- endmacro %}

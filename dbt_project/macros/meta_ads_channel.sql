{#-
    Meta places one ad on several publisher platforms, and reports (and a
    click's utm_source names) each placement apart. Each platform is its own
    marketing channel, so Facebook spend is never read as Instagram spend:

    - instagram_ads: Instagram placements (`instagram`, utm_source `ig` too);
    - facebook_ads: Facebook placements (`facebook`, `fb`);
    - meta_audience_network: ads in other publishers' apps
      (`audience_network`, `an`);
    - meta_other_ads: Messenger, Threads, WhatsApp (`messenger`, `msg`,
      `threads`, `whatsapp`), and links tagged with Meta but no platform
      (`meta`).

    Values are compared lower-cased; anything else is not a Meta platform
    (null), so the caller decides: insights rows, always Meta, fall back to
    meta_other_ads; traffic falls through to its other channel rules.
-#}
{% macro meta_ads_channel(platform) -%}
    case lower({{ platform }})
        when 'instagram' then 'instagram_ads'
        when 'ig' then 'instagram_ads'
        when 'facebook' then 'facebook_ads'
        when 'fb' then 'facebook_ads'
        when 'audience_network' then 'meta_audience_network'
        when 'an' then 'meta_audience_network'
        when 'messenger' then 'meta_other_ads'
        when 'msg' then 'meta_other_ads'
        when 'threads' then 'meta_other_ads'
        when 'whatsapp' then 'meta_other_ads'
        when 'meta' then 'meta_other_ads'
    end
{%- endmacro %}


{#- The channels meta_ads_channel can name: those with Meta cost. -#}
{% macro meta_ads_channel_names() -%}
    {{ return(['instagram_ads', 'facebook_ads', 'meta_audience_network', 'meta_other_ads']) }}
{%- endmacro %}


{#- The same, as a SQL list. -#}
{% macro meta_ads_channels() -%}
    ('{{ meta_ads_channel_names() | join("', '") }}')
{%- endmacro %}

{#-
    Personal data: how it is tagged, and the normalised hashes that may leave
    the lake.

    Tagging. Every column that holds personal data carries `meta: {pii: <kind>}`
    (under the column's `config:`); tests/test_pii_classification.py fails on
    an untagged column whose name looks personal, and on a mart column tagged
    with a raw kind. The kinds:

      email        an email address
      phone        a phone number, in any format (order history's POS member
                   number is the member's phone)
      name         a person's name (full, first or last)
      ip           an IP address
      address      a street or postal address (none in the lake today)
      device_id    a device or advertising id (IDFV, IDFA, GAID, Android id)
      free_text    text a guest or a provider wrote that may quote any of the
                   above (feedback comments, bounce messages)
      nested       a JSON column holding personal data at the paths listed in
                   `meta.pii_fields`, path -> kind (or a list of kinds)

    and the hashed kinds, the only ones a mart may carry:

      email_sha256 hashed_email() below
      phone_sha256 hashed_phone() below

    Pseudonymous keys (customer_id, Segment's anonymous_id and user_id) are
    not tagged: they are what marts join on, and they identify a guest only
    through the lake.

    Hashing. The same normalisation as regulars/privacy/hashing.py, byte for
    byte (tests/test_privacy_hashing.py runs both on the same inputs): email
    trimmed and lower-cased; phone as E.164 digits without `+`, a national
    0... number taking the default country code; SHA-256 as lower-case hex,
    the form Meta's and Google's customer matching take. What cannot be an
    email or a phone number hashes to null. The whitespace and character
    classes are spelled out because `\s` differs between Python, RE2 and
    Java, and `\x0B` stands for Python's `\v` (Java's `\v` is any vertical
    space). A backslash is doubled in a Jinja string (Jinja reads `\t` as a tab);
    regex() writes the pattern as a literal each engine reads unchanged.
-#}

{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex')(expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro spark__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}


{#- The text without leading or trailing whitespace (Python's strip of " \t\n\r\f\v"). -#}
{% macro pii_trimmed(column) -%}
    {{ regexp_replace_all(column, '^[ \\t\\n\\r\\f\\x0B]+|[ \\t\\n\\r\\f\\x0B]+$', '') }}
{%- endmacro %}


{#- Trimmed and lower-cased email; null when not shaped like local@domain.tld. -#}
{% macro normalised_email(column) -%}
    case
        when {{ regexp_full_match(
            "lower(" ~ pii_trimmed(column) ~ ")",
            '[^@ \\t\\n\\r\\f\\x0B]+@[^@ \\t\\n\\r\\f\\x0B]+\\.[^@ \\t\\n\\r\\f\\x0B]+',
        ) }}
            then lower({{ pii_trimmed(column) }})
    end
{%- endmacro %}


{#-
    E.164 digits without `+`: `+<cc>...` and `00<cc>...` keep their country
    code; otherwise the number is the default country's (the chain's, the var
    `chain_phone_country_code` from `[chain] country`, unless given): `0...`
    swaps its trunk 0 for the country code, digits not starting with it get
    it. Without a default country such a number is null, not a guess.
    8-15 digits not starting with 0, else null.
-#}
{% macro normalised_phone(column, default_country_code=none) -%}
    {%- set country_code = default_country_code or var('chain_phone_country_code', none) -%}
    {%- set trimmed = pii_trimmed(column) -%}
    {%- set digits = regexp_replace_all(trimmed, '[^0-9]', '') -%}
    {%- set phone -%}
        case
            when not {{ regexp_full_match(trimmed, '\\+?[0-9 ()./-]+') }} then null
            when {{ trimmed }} like '+%' then {{ digits }}
            when {{ digits }} like '00%' then substr({{ digits }}, 3)
            {%- if country_code is none %}
            else null
            {%- else %}
            when {{ digits }} like '0%'
                then '{{ country_code }}' || substr({{ digits }}, 2)
            when not {{ digits }} like '{{ country_code }}%'
                then '{{ country_code }}' || {{ digits }}
            else {{ digits }}
            {%- endif %}
        end
    {%- endset -%}
    case
        when not {{ phone }} like '0%' and length({{ phone }}) between 8 and 15
            then {{ phone }}
    end
{%- endmacro %}


{#- SHA-256 hex of the normalised email (kind email_sha256). -#}
{% macro hashed_email(column) -%}
    {{ sha256_hex(normalised_email(column)) }}
{%- endmacro %}


{#- SHA-256 hex of the normalised phone (kind phone_sha256), Meta's form. -#}
{% macro hashed_phone(column, default_country_code=none) -%}
    {{ sha256_hex(normalised_phone(column, default_country_code)) }}
{%- endmacro %}

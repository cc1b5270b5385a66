{#-
    A bigint key for a row whose source has no integer id of its own (an
    imported guest or receipt), so it can join the marts' bigint keys without
    widening them to text: the first 60 bits of the md5 of `expression`,
    negated and minus one. Negative keys never collide with the ordering
    platform's ids (positive); among a million imported guests the chance of
    two sharing a key is below one in a million, and the marts' unique tests
    would catch it. The same text always gives the same key, so a rebuild or
    a re-import keeps every guest's key. There is no dbt cross-database macro
    for reading hex as an integer, hence the dispatch.
-#}
{% macro negative_bigint_key(expression) -%}
    {{ return(adapter.dispatch("negative_bigint_key")(expression)) }}
{%- endmacro %}

{% macro default__negative_bigint_key(expression) -%}
    (-1 - cast(('0x' || substr(md5({{ expression }}), 1, 15)) as {{ dbt.type_bigint() }}))
{%- endmacro %}

{#- Spark reads no `0x` literal from text: conv() turns the hex digits to decimal text. -#}
{% macro spark__negative_bigint_key(expression) -%}
    (-1 - cast(conv(substr(md5({{ expression }}), 1, 15), 16, 10) as {{ dbt.type_bigint() }}))
{%- endmacro %}

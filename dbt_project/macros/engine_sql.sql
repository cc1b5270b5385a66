{#-
    SQL that DuckDB and Spark spell differently and dbt has no cross-database
    macro for. Each macro has DuckDB's spelling as the default and Spark's as
    `spark__`; an engine the project adds brings its own where it differs.
-#}

{#-
    A regular expression as a SQL literal, written once for both engines:
    DuckDB keeps a backslash in a string literal as it is, while Spark's
    parser reads `\.` as `.` (and `\v` as `v`) unless the literal is raw.
-#}
{% macro regex(pattern) -%}
    {{ return(adapter.dispatch("regex")(pattern)) }}
{%- endmacro %}

{% macro default__regex(pattern) -%}
    '{{ pattern }}'
{%- endmacro %}

{% macro spark__regex(pattern) -%}
    r'{{ pattern }}'
{%- endmacro %}


{#- Whether the whole of `value` matches `pattern` (a Jinja string, see regex()). -#}
{% macro regexp_full_match(value, pattern) -%}
    {{ return(adapter.dispatch("regexp_full_match")(value, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(value, pattern) -%}
    regexp_full_match({{ value }}, {{ regex(pattern) }})
{%- endmacro %}

{% macro spark__regexp_full_match(value, pattern) -%}
    ({{ value }} rlike {{ regex("^(?:" ~ pattern ~ ")$") }})
{%- endmacro %}


{#- Every match of `pattern` in `value` replaced (DuckDB replaces the first unless 'g'). -#}
{% macro regexp_replace_all(value, pattern, replacement) -%}
    {{ return(adapter.dispatch("regexp_replace_all")(value, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(value, pattern, replacement) -%}
    regexp_replace({{ value }}, {{ regex(pattern) }}, '{{ replacement }}', 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(value, pattern, replacement) -%}
    regexp_replace({{ value }}, {{ regex(pattern) }}, '{{ replacement }}')
{%- endmacro %}


{#-
    A text field of a JSON document by JSONPath (`$.page.url`); a number or a
    boolean comes back as its JSON text, a missing path or JSON null as null.
-#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch("json_text")(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    json_extract_string({{ column }}, '{{ path }}')
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
    get_json_object({{ column }}, '{{ path }}')
{%- endmacro %}

{#-
    The text fields of a JSON document at each of `paths`, as a list in that
    order (list_item reads one), like json_text. DuckDB parses the document
    once for the whole list, where each json_text call parses it again.
-#}
{% macro json_texts(column, paths) -%}
    {{ return(adapter.dispatch("json_texts")(column, paths)) }}
{%- endmacro %}

{% macro default__json_texts(column, paths) -%}
    json_extract_string({{ column }}, [
        {%- for path in paths %}'{{ path }}'{{ ", " if not loop.last }}{% endfor -%}
    ])
{%- endmacro %}

{% macro spark__json_texts(column, paths) -%}
    array(
        {%- for path in paths %}get_json_object({{ column }}, '{{ path }}')
        {{- ", " if not loop.last }}{% endfor -%}
    )
{%- endmacro %}

{#- The item at `position` (from 1) of a list. -#}
{% macro list_item(list, position) -%}
    {{ return(adapter.dispatch("list_item")(list, position)) }}
{%- endmacro %}

{% macro default__list_item(list, position) -%}
    {{ list }}[{{ position }}]
{%- endmacro %}

{% macro spark__list_item(list, position) -%}
    element_at({{ list }}, {{ position }})
{%- endmacro %}


{#-
    The first non-null value of `expression` in a group, first by
    `order_columns` (which must order the group's rows strictly): one
    aggregate, where first_value(... ignore nulls) over a window of the same
    rows sorted every row of the table once more.
-#}
{% macro first_non_null_in_group(expression, order_columns) -%}
    {{ return(adapter.dispatch("first_non_null_in_group")(expression, order_columns)) }}
{%- endmacro %}

{% macro default__first_non_null_in_group(expression, order_columns) -%}
    arg_min({{ expression }}, row({{ order_columns | join(', ') }}))
        filter (where {{ expression }} is not null)
{%- endmacro %}

{% macro spark__first_non_null_in_group(expression, order_columns) -%}
    min_by({{ expression }}, struct({{ order_columns | join(', ') }}))
        filter (where {{ expression }} is not null)
{%- endmacro %}

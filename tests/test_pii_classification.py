"""Personal data is tagged where it is, and the marts carry none of it raw.

The vocabulary of `meta.pii` kinds is in dbt_project/macros/pii.sql. The manifest checks read the
one the session's `fresh_dbt_manifest` fixture parsed from the project as it is now; the data
scan reads the marts world's warehouse.
"""

from __future__ import annotations

import json
import re

import pytest

from orchestration.dbt import dbt_project
from regulars.settings import load_settings

RAW_KINDS = {"email", "phone", "name", "ip", "address", "device_id", "free_text", "nested"}
HASHED_KINDS = {"email_sha256", "phone_sha256"}

# A column name with one of these words in it (between underscores) looks personal.
PERSONAL_WORD = re.compile(r"(^|_)(e?mail|phone|mobile|msisdn|name|ip|address)(_|$)")
# ... unless it is the name of a thing, not of a person (explicit, so a new one is a decision).
NAMES_OF_THINGS = {
    "ad_name",
    "adset_name",
    "campaign_name",
    "cluster_name",
    "event_name",
    "experiment_name",
    "item_name",
    "library_name",
    "menu_item_name",
    "os_name",
    "page_name",
    "product_name",
    "screen_name",
    "session_campaign_name",
    "store_name",
    "variation_name",
}
# A bare `name` column is personal or not by its table: these tables name things.
BARE_NAME_OF_THINGS = {
    "source.regulars.meta_ads.campaigns",
    "source.regulars.meta_ads.adsets",
    "source.regulars.meta_ads.ads",
    "source.regulars.ordering.stores",
    "source.regulars.ordering.menu_items",
    "source.regulars.events.messages",  # a page's or screen's name
}
# Flags say whether there is consent or a contact, not what it is.
FLAG_PREFIXES = ("is_", "has_", "accepts_")

# A value that is an email address, or an Indonesian mobile number in the forms the lake holds
# (+62 8..., 62 8..., 08...), standing alone: not inside a longer run of letters, digits or
# dashes, so that hex digests and UUIDs (whose digit runs can start with 08) are not phones.
EMAIL_VALUE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE_VALUE = r"(^|[^0-9A-Za-z_-])(\+62|62|0)8[0-9]{7,11}($|[^0-9A-Za-z_-])"


@pytest.fixture(scope="module")
def manifest(fresh_dbt_manifest) -> dict:
    return json.loads(dbt_project(load_settings()).manifest_path.read_text())


def resources(manifest: dict):
    """Models and sources of this project, with their columns."""
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        kind_of_node = node["resource_type"] in ("model", "source", "seed", "snapshot")
        if kind_of_node and node["package_name"] == "regulars":
            yield node


def pii_meta(column: dict) -> dict:
    return column.get("config", {}).get("meta") or column.get("meta") or {}


def is_mart(node: dict) -> bool:
    return node["resource_type"] == "model" and node["fqn"][1] == "marts"


def looks_personal(node: dict, column: str) -> bool:
    if not PERSONAL_WORD.search(column) or column.startswith(FLAG_PREFIXES):
        return False
    if column in NAMES_OF_THINGS:
        return False
    return not (column == "name" and node["unique_id"] in BARE_NAME_OF_THINGS)


def test_every_column_that_looks_personal_is_tagged(manifest):
    untagged = [
        f"{node['unique_id']}.{column}"
        for node in resources(manifest)
        for column, spec in node["columns"].items()
        if looks_personal(node, column) and "pii" not in pii_meta(spec)
    ]
    assert not untagged, (
        "Columns whose name looks like personal data have no `meta: {pii: <kind>}` (kinds in "
        f"dbt_project/macros/pii.sql; a name of a thing goes in NAMES_OF_THINGS): {untagged}"
    )


def test_the_known_personal_columns_are_tagged(manifest):
    """The lake's personal data as found in it, including columns no name rule would catch."""
    expected = {
        "source.regulars.ordering.customers": {"email": "email", "phone": "phone"},
        "source.regulars.ordering.order_feedback": {"comment": "free_text"},
        "source.regulars.order_history.orders": {"customer_id": "phone"},
        "source.regulars.events.messages": {"traits": "nested", "context": "nested"},
        "source.regulars.messaging.delivery_events": {"data": "nested"},
        "model.regulars.stg_ordering__customers": {"full_name": "name"},
        "model.regulars.stg_ordering__order_feedback": {"comment_text": "free_text"},
        "model.regulars.stg_order_history__orders": {"source_customer_ref": "phone"},
        "model.regulars.stg_events__messages": {"ip_address": "ip", "device_id": "device_id"},
        "model.regulars.stg_messaging__delivery_events": {"failure_message": "free_text"},
    }
    nodes = {node["unique_id"]: node for node in resources(manifest)}
    found = {
        node_id: {
            column: pii_meta(nodes[node_id]["columns"][column]).get("pii") for column in columns
        }
        for node_id, columns in expected.items()
    }
    assert found == expected


def test_kinds_come_from_the_vocabulary(manifest):
    unknown = []
    for node in resources(manifest):
        for column, spec in node["columns"].items():
            meta = pii_meta(spec)
            if "pii" not in meta:
                continue
            kinds = [meta["pii"]]
            if meta["pii"] == "nested":
                fields = meta.get("pii_fields") or {}
                if not fields:
                    unknown.append(f"{node['unique_id']}.{column}: nested without pii_fields")
                for kind in fields.values():
                    kinds += kind if isinstance(kind, list) else [kind]
            unknown += [
                f"{node['unique_id']}.{column}: {kind}"
                for kind in kinds
                if kind not in RAW_KINDS | HASHED_KINDS
            ]
    assert not unknown, unknown


def test_marts_carry_no_raw_personal_data_kind(manifest):
    marts = [node for node in resources(manifest) if is_mart(node)]
    assert len(marts) >= 10, "the marts were not found in the manifest"
    raw = [
        f"{node['unique_id']}.{column} ({pii_meta(spec)['pii']})"
        for node in marts
        for column, spec in node["columns"].items()
        if pii_meta(spec).get("pii") in RAW_KINDS
    ]
    assert not raw, f"Marts expose raw personal data; hash it (macros/pii.sql) or drop it: {raw}"


def test_no_mart_value_is_an_email_or_a_phone_number(warehouse):
    columns = warehouse.execute(
        """
        select table_name, column_name
        from information_schema.columns
        where table_schema = 'marts' and data_type = 'VARCHAR'
        order by table_name, column_name
        """
    ).fetchall()
    tables = {table for table, _ in columns}
    assert len(tables) >= 10, f"too few marts to scan: {sorted(tables)}"
    found = {}
    for table, column in columns:
        emails, phones = warehouse.execute(
            f"""
            select
                count(*) filter (where regexp_matches("{column}", '{EMAIL_VALUE}')),
                count(*) filter (where regexp_matches("{column}", '{PHONE_VALUE}'))
            from marts."{table}"
            """
        ).fetchone()
        if emails or phones:
            found[f"{table}.{column}"] = {"emails": emails, "phones": phones}
    assert not found, f"Marts hold raw emails or phone numbers (values per column): {found}"


def test_the_scan_finds_what_it_looks_for(warehouse):
    """The patterns catch the lake's own contact details, and not the ids marts do carry."""
    hits = warehouse.execute(
        f"""
        select
            count(*) filter (where regexp_matches(email, '{EMAIL_VALUE}')),
            count(*) filter (where regexp_matches(phone, '{PHONE_VALUE}')),
            count(email),
            count(phone)
        from staging.stg_ordering__customers
        """
    ).fetchone()
    assert hits[0] == hits[2] > 0 and hits[1] == hits[3] > 0
    members = warehouse.execute(
        f"""
        select count(*) filter (where regexp_matches(source_customer_ref, '{PHONE_VALUE}')),
            count(*)
        from staging.stg_order_history__orders
        """
    ).fetchone()
    assert members[0] == members[1] > 0
    for harmless in (
        "3e77f6c4-8eb8-4a3c-8f1c-081234567890",  # a UUID whose last group reads like 08...
        "a081234567890b" + "0" * 50,  # a hex digest with such a run
        "pos_orders_until_20250101.csv:JBR-01-000001",
    ):
        assert not re.search(PHONE_VALUE, harmless), harmless
        assert not re.search(EMAIL_VALUE, harmless), harmless

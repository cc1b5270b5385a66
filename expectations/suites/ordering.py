"""What bad data from the ordering platform looks like, table by table."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from expectations.suites import LandedTables, TableSuite
from expectations.suites.common import (
    between,
    day_at,
    in_chain_currency,
    in_set,
    keyed,
    not_null,
    timestamps_in_chain_lifetime,
)

# Money above this on one order or item is a typo or a test order, not a meal.
ABSURD_ORDER_IDR = 50_000_000
ABSURD_ITEM_PRICE_IDR = 5_000_000
MAX_ITEM_QUANTITY = 100

ORDER_STATUSES = ["placed", "preparing", "completed", "cancelled", "refunded"]
PLATFORMS = ["app", "web"]
FULFILMENT_TYPES = ["delivery", "pickup", "dine_in"]
ACQUISITION_CHANNELS = ["organic", "instagram_ads", "google_search", "referral", "email_sms"]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

AUDIT_COLUMNS = ("created_at", "updated_at")
STAR_RATINGS = ("food_rating", "price_rating", "service_rating")  # 1 to 5 stars


def _money(column: str, upper: int):
    return between(column, 0, upper)


def _opened_at(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_opened_at=day_at(frame, "opened_on"))


def _order_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    expected_total = frame["subtotal_idr"] - frame["discount_idr"] + frame["delivery_fee_idr"]
    return frame.assign(_total_mismatch=frame["total_idr"] - expected_total)


def items_against_subtotal(frame: pd.DataFrame, landed: LandedTables) -> pd.DataFrame:
    """The order's landed items summed, minus its subtotal: 0 when they agree.

    Items are read from the whole landing table, not only this batch: the source lands an order
    again each time its status changes, and its items (which never change) only the first time.
    Every landed item counts, quarantined or not: a held item is still part of what the guest
    ordered, and the order is right or wrong whatever the gate thinks of its lines.
    """
    order_ids = frame["order_id"].dropna().unique().tolist()
    items = landed.read(
        "order_items", ["order_item_id", "order_id", "line_total_idr"], "order_id", order_ids
    )
    # The filesystem landing keeps every version of an item: count each item once, its newest.
    newest = items.sort_values("_dlt_load_id").drop_duplicates("order_item_id", keep="last")
    totals = newest.groupby("order_id")["line_total_idr"].sum()
    items_total = frame["order_id"].map(totals).fillna(0).where(frame["order_id"].notna())
    return frame.assign(_items_minus_subtotal=items_total - frame["subtotal_idr"])


def _item_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    expected_line = frame["quantity"] * frame["unit_price_idr"]
    return frame.assign(_line_mismatch=frame["line_total_idr"] - expected_line)


def table_suites() -> dict[str, TableSuite]:
    return {
        suite.table_name: suite
        for suite in [
            TableSuite(
                table_name="stores",
                primary_key="store_id",
                required_columns=["store_id", "store_code", "province", "opened_on", "updated_at"],
                expectations=[
                    *keyed("store_id"),
                    *not_null("store_code", "name", "province", "opened_on", *AUDIT_COLUMNS),
                    *timestamps_in_chain_lifetime("_opened_at", *AUDIT_COLUMNS, "deleted_at"),
                ],
                derive=_opened_at,
            ),
            TableSuite(
                table_name="menu_items",
                primary_key="menu_item_id",
                required_columns=["menu_item_id", "sku", "category", "price_idr", "updated_at"],
                expectations=[
                    *keyed("menu_item_id"),
                    *not_null("sku", "name", "category", "price_idr", *AUDIT_COLUMNS),
                    between("price_idr", 1, ABSURD_ITEM_PRICE_IDR),
                    *timestamps_in_chain_lifetime(*AUDIT_COLUMNS, "deleted_at"),
                ],
            ),
            TableSuite(
                table_name="customers",
                primary_key="customer_id",
                required_columns=[
                    "customer_id",
                    "preferred_platform",
                    "acquisition_channel",
                    "signed_up_at",
                    "updated_at",
                ],
                expectations=[
                    *keyed("customer_id"),
                    *not_null(
                        "preferred_platform", "acquisition_channel", "signed_up_at", *AUDIT_COLUMNS
                    ),
                    in_set("preferred_platform", PLATFORMS),
                    in_set("acquisition_channel", ACQUISITION_CHANNELS),
                    gx.expectations.ExpectColumnValuesToMatchRegex(
                        column="email", regex=EMAIL_PATTERN
                    ),
                    *timestamps_in_chain_lifetime("signed_up_at", *AUDIT_COLUMNS, "deleted_at"),
                ],
            ),
            TableSuite(
                table_name="orders",
                primary_key="order_id",
                required_columns=[
                    "order_id",
                    "customer_id",
                    "store_id",
                    "status",
                    "platform",
                    "currency",
                    "subtotal_idr",
                    "discount_idr",
                    "delivery_fee_idr",
                    "total_idr",
                    "placed_at",
                    "updated_at",
                ],
                expectations=[
                    *keyed("order_id"),
                    *not_null(
                        "customer_id",
                        "store_id",
                        "status",
                        "platform",
                        "fulfilment_type",
                        "currency",
                        "placed_at",
                        *AUDIT_COLUMNS,
                    ),
                    in_set("status", ORDER_STATUSES),
                    in_set("platform", PLATFORMS),
                    in_set("fulfilment_type", FULFILMENT_TYPES),
                    # A dollar order at a rupiah chain is a foreign test order.
                    *in_chain_currency("currency"),
                    _money("subtotal_idr", ABSURD_ORDER_IDR),
                    _money("discount_idr", ABSURD_ORDER_IDR),
                    _money("delivery_fee_idr", ABSURD_ORDER_IDR),
                    _money("total_idr", ABSURD_ORDER_IDR),
                    in_set("_total_mismatch", [0]),
                    in_set("_items_minus_subtotal", [0]),
                    *timestamps_in_chain_lifetime(
                        "placed_at",
                        "completed_at",
                        "cancelled_at",
                        "refunded_at",
                        *AUDIT_COLUMNS,
                        "deleted_at",
                    ),
                ],
                derive=_order_arithmetic,
                derive_across=items_against_subtotal,
            ),
            TableSuite(
                table_name="order_items",
                primary_key="order_item_id",
                required_columns=[
                    "order_item_id",
                    "order_id",
                    "menu_item_id",
                    "quantity",
                    "unit_price_idr",
                    "line_total_idr",
                    "updated_at",
                ],
                expectations=[
                    *keyed("order_item_id"),
                    *not_null(
                        "order_id",
                        "menu_item_id",
                        "quantity",
                        "unit_price_idr",
                        "line_total_idr",
                        *AUDIT_COLUMNS,
                    ),
                    between("quantity", 1, MAX_ITEM_QUANTITY),
                    _money("unit_price_idr", ABSURD_ITEM_PRICE_IDR),
                    in_set("_line_mismatch", [0]),
                    *timestamps_in_chain_lifetime(*AUDIT_COLUMNS),
                ],
                derive=_item_arithmetic,
            ),
            TableSuite(
                table_name="order_feedback",
                primary_key="feedback_id",
                required_columns=[
                    "feedback_id",
                    "order_id",
                    "food_rating",
                    "price_rating",
                    "service_rating",
                    "nps_score",
                    "updated_at",
                ],
                expectations=[
                    *keyed("feedback_id"),
                    *not_null(
                        "order_id",
                        "customer_id",
                        "store_id",
                        *STAR_RATINGS,
                        "nps_score",
                        *AUDIT_COLUMNS,
                    ),
                    *(between(column, 1, 5) for column in STAR_RATINGS),
                    between("nps_score", 0, 10),
                    *timestamps_in_chain_lifetime("submitted_at", *AUDIT_COLUMNS),
                ],
            ),
        ]
    }

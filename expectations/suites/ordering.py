"""What bad data from the ordering platform looks like, table by table."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import great_expectations as gx
import pandas as pd

from expectations.suites import TableSuite

# Money above this on one order or item is a typo or a test order, not a meal.
ABSURD_ORDER_IDR = 50_000_000
ABSURD_ITEM_PRICE_IDR = 5_000_000
MAX_ITEM_QUANTITY = 100

ORDER_STATUSES = ["placed", "preparing", "completed", "cancelled", "refunded"]
PLATFORMS = ["app", "web"]
FULFILMENT_TYPES = ["delivery", "pickup", "dine_in"]
ACQUISITION_CHANNELS = ["organic", "instagram_ads", "google_search", "referral", "email_sms"]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def chain_opened_at() -> pd.Timestamp:
    """No row of the chain can be older than its first store (REGULARS_CHAIN_OPENED_ON)."""
    return pd.Timestamp(os.environ.get("REGULARS_CHAIN_OPENED_ON", "2015-01-01"), tz="UTC")


def _not_null(*columns: str):
    return [gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in columns]


def timestamps_in_chain_lifetime(*columns: str):
    # A day of slack: a source clock slightly ahead of ours is not bad data.
    latest = pd.Timestamp(datetime.now(UTC) + timedelta(days=1))
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=column, min_value=chain_opened_at(), max_value=latest
        )
        for column in columns
    ]


def _keyed(primary_key: str):
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=primary_key),
        gx.expectations.ExpectColumnValuesToBeUnique(column=primary_key),
    ]


def _money(column: str, upper: int):
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column, min_value=0, max_value=upper
    )


def _order_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    expected_total = frame["subtotal_idr"] - frame["discount_idr"] + frame["delivery_fee_idr"]
    return frame.assign(_total_mismatch_idr=frame["total_idr"] - expected_total)


def _item_arithmetic(frame: pd.DataFrame) -> pd.DataFrame:
    expected_line = frame["quantity"] * frame["unit_price_idr"]
    return frame.assign(_line_mismatch_idr=frame["line_total_idr"] - expected_line)


def table_suites() -> dict[str, TableSuite]:
    audit_columns = ("created_at", "updated_at")
    return {
        suite.table_name: suite
        for suite in [
            TableSuite(
                table_name="stores",
                primary_key="store_id",
                required_columns=["store_id", "store_code", "province", "opened_on", "updated_at"],
                expectations=[
                    *_keyed("store_id"),
                    *_not_null("store_code", "name", "province", "opened_on", *audit_columns),
                    *timestamps_in_chain_lifetime(*audit_columns),
                ],
            ),
            TableSuite(
                table_name="menu_items",
                primary_key="menu_item_id",
                required_columns=["menu_item_id", "sku", "category", "price_idr", "updated_at"],
                expectations=[
                    *_keyed("menu_item_id"),
                    *_not_null("sku", "name", "category", "price_idr", *audit_columns),
                    gx.expectations.ExpectColumnValuesToBeBetween(
                        column="price_idr", min_value=1, max_value=ABSURD_ITEM_PRICE_IDR
                    ),
                    *timestamps_in_chain_lifetime(*audit_columns),
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
                    *_keyed("customer_id"),
                    *_not_null("signed_up_at", *audit_columns),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="preferred_platform", value_set=PLATFORMS
                    ),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="acquisition_channel", value_set=ACQUISITION_CHANNELS
                    ),
                    gx.expectations.ExpectColumnValuesToMatchRegex(
                        column="email", regex=EMAIL_PATTERN
                    ),
                    *timestamps_in_chain_lifetime("signed_up_at", *audit_columns),
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
                    "currency",
                    "subtotal_idr",
                    "discount_idr",
                    "delivery_fee_idr",
                    "total_idr",
                    "placed_at",
                    "updated_at",
                ],
                expectations=[
                    *_keyed("order_id"),
                    *_not_null("customer_id", "store_id", "placed_at", *audit_columns),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="status", value_set=ORDER_STATUSES
                    ),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="platform", value_set=PLATFORMS
                    ),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="fulfilment_type", value_set=FULFILMENT_TYPES
                    ),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="currency", value_set=["IDR"]
                    ),
                    _money("subtotal_idr", ABSURD_ORDER_IDR),
                    _money("discount_idr", ABSURD_ORDER_IDR),
                    _money("delivery_fee_idr", ABSURD_ORDER_IDR),
                    _money("total_idr", ABSURD_ORDER_IDR),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="_total_mismatch_idr", value_set=[0]
                    ),
                    *timestamps_in_chain_lifetime("placed_at", *audit_columns),
                ],
                derive=_order_arithmetic,
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
                    *_keyed("order_item_id"),
                    *_not_null("order_id", "menu_item_id", *audit_columns),
                    gx.expectations.ExpectColumnValuesToBeBetween(
                        column="quantity", min_value=1, max_value=MAX_ITEM_QUANTITY
                    ),
                    _money("unit_price_idr", ABSURD_ITEM_PRICE_IDR),
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column="_line_mismatch_idr", value_set=[0]
                    ),
                    *timestamps_in_chain_lifetime(*audit_columns),
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
                    *_keyed("feedback_id"),
                    *_not_null("order_id", "customer_id", "store_id", *audit_columns),
                    *(
                        gx.expectations.ExpectColumnValuesToBeBetween(
                            column=column, min_value=1, max_value=5
                        )
                        for column in ("food_rating", "price_rating", "service_rating")
                    ),
                    gx.expectations.ExpectColumnValuesToBeBetween(
                        column="nps_score", min_value=0, max_value=10
                    ),
                    *timestamps_in_chain_lifetime("submitted_at", *audit_columns),
                ],
            ),
        ]
    }

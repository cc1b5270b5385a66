"""What bad data from an order-history import looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite
from expectations.suites.ordering import ABSURD_ORDER_IDR, timestamps_in_chain_lifetime


def table_suites() -> dict[str, TableSuite]:
    return {
        "orders": TableSuite(
            table_name="orders",
            primary_key="import_row_id",
            required_columns=["import_row_id", "customer_id", "ordered_at", "amount_idr"],
            expectations=[
                gx.expectations.ExpectColumnValuesToNotBeNull(column="import_row_id"),
                gx.expectations.ExpectColumnValuesToBeUnique(column="import_row_id"),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="customer_id"),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="amount_idr", min_value=0, max_value=ABSURD_ORDER_IDR
                ),
                *timestamps_in_chain_lifetime("ordered_at"),
            ],
        )
    }

"""What bad data from an order-history import looks like."""

from __future__ import annotations

import great_expectations as gx

from expectations.suites import TableSuite
from expectations.suites.common import between, keyed, not_null, timestamps_in_chain_lifetime
from expectations.suites.ordering import ABSURD_ORDER_IDR, MAX_ITEM_QUANTITY


def table_suites() -> dict[str, TableSuite]:
    # No volume rule: an import is a one-off file of whatever size the old system exported.
    return {
        "orders": TableSuite(
            table_name="orders",
            primary_key="import_row_id",
            required_columns=["import_row_id", "customer_id", "ordered_at", "amount"],
            expectations=[
                *keyed("import_row_id"),
                # A line that is not a row, a repeated order id: file, line and why (ingestion).
                gx.expectations.ExpectColumnValuesToBeNull(column="_malformed_fields"),
                *not_null("customer_id", "ordered_at", "amount"),
                between("amount", 0, ABSURD_ORDER_IDR),
                between("quantity", 1, MAX_ITEM_QUANTITY),
                *timestamps_in_chain_lifetime("ordered_at"),
            ],
        )
    }

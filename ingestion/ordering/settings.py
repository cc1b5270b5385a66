"""The ordering platform's tables, their keys and the cursor every one of them carries."""

# Explicit rather than reflected: this list is the contract with the ordering backend, and merge
# needs the primary key before the first row is read (dlt defers reflection to extraction time).
TABLE_PRIMARY_KEYS: dict[str, str] = {
    "stores": "store_id",
    "menu_items": "menu_item_id",
    "customers": "customer_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "order_feedback": "feedback_id",
}

CURSOR_COLUMN = "updated_at"

# Earlier than any row the chain can have; the first run therefore loads everything.
INITIAL_CURSOR = "1970-01-01T00:00:00"

# Rows per Arrow batch read from the database: large enough to be cheap, small enough to stream.
DEFAULT_CHUNK_SIZE = 50_000

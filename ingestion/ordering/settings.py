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

# Earlier than any row the chain can have, so the first run loads everything; zoned, like the
# cursor values the type adapter makes of updated_at.
INITIAL_CURSOR = "1970-01-01T00:00:00+00:00"

# Rows per Arrow batch read from the database: large enough to be cheap, small enough to stream.
DEFAULT_CHUNK_SIZE = 50_000

# A column the backend adds lands as it is (staging selects its columns by name, so nothing
# downstream breaks, and the column is there to model when wanted). A column whose type changes
# (money turned text, an id turned float) stops the load with dlt's error naming table and column:
# the marts' sums would be wrong otherwise.
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}

"""The fields an order-history file can map, and which of them every file must have."""

REQUIRED_FIELDS = ("customer_id", "order_date", "amount")
OPTIONAL_FIELDS = ("order_id", "quantity", "store", "channel")

# date_format = "iso8601" (the default) tries these in order: ISO 8601 as most exports write it.
ISO8601 = "iso8601"
ISO_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")

DEFAULT_FILE_GLOB = "*.csv"

# How a CSV file is written: its column separator (Excel where the decimal separator is a comma
# writes ";") and its text encoding, the two DuckDB reads without an extension.
DEFAULT_DELIMITER = ","
ENCODINGS = ("utf-8", "latin-1")

# The column mapping is the contract: unmapped file columns are never read and mapped ones are
# converted to fixed types, so a new or retyped lake column can only be a bug in the import.
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "freeze", "data_type": "freeze"}

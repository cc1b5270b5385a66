"""dlt pipelines that land each channel's raw data in the warehouse's landing datasets."""

# Every source, in the order runs take them: each is the folder of that name, which declares its
# `SOURCE` (ingestion/registry.py finds them). Here, where importing costs nothing, so
# `regulars --help` lists them without dlt.
SOURCE_NAMES = ("ordering", "order_history", "events", "messaging", "telemetry", "ga4", "meta_ads")

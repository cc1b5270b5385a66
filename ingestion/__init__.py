"""dlt pipelines that land each channel's raw data in the warehouse's landing datasets."""

# Every source, in the registry's order (ingestion/registry.py, which checks the two agree on
# import). Here, where importing costs nothing, so `regulars --help` lists them without dlt.
SOURCE_NAMES = ("ordering", "order_history", "events", "messaging", "telemetry", "ga4", "meta_ads")

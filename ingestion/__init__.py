"""dlt pipelines that land each channel's raw data in the warehouse's landing datasets."""

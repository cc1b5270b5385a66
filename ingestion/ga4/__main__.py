"""Land GA4 alone: `python -m ingestion.ga4` (no gate, no Dagster); settings from .dlt/."""

from ingestion.ga4 import SOURCE_NAME, ga4_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import load_settings

if __name__ == "__main__":
    load_info = landing_pipeline(SOURCE_NAME, load_settings()).run(ga4_source())
    print(load_info)

"""Land Meta ads alone: `python -m ingestion.meta_ads` (no gate, no Dagster); config in .dlt/."""

from ingestion.meta_ads import SOURCE_NAME, meta_ads_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import load_settings

if __name__ == "__main__":
    load_info = landing_pipeline(SOURCE_NAME, load_settings()).run(meta_ads_source())
    print(load_info)

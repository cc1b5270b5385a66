"""Land the order-history files alone: `python -m ingestion.order_history` (no gate)."""

from ingestion.order_history import SOURCE_NAME, order_history_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import load_settings

if __name__ == "__main__":
    settings = load_settings()
    load_info = landing_pipeline(SOURCE_NAME, settings).run(
        order_history_source(bucket_url=settings.order_history_url)
    )
    print(load_info)

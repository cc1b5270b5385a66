"""Land the ordering DB alone: `python -m ingestion.ordering` (no gate, no Dagster)."""

from ingestion.ordering import SOURCE_NAME, ordering_source
from ingestion.ordering.helpers import require_database
from ingestion.pipelines import landing_pipeline
from regulars.settings import load_settings

if __name__ == "__main__":
    settings = load_settings()
    require_database(settings.ordering_db_url)
    load_info = landing_pipeline(SOURCE_NAME, settings).run(
        ordering_source(credentials=settings.ordering_db_url)
    )
    print(load_info)

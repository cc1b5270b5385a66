"""Customer analytics models, called by the dbt Python models in models/marts/analytics/."""

"""Activation (reverse ETL): audiences defined as config, exported to the channels with consent.

See README.md. `load_config` reads the audiences, `selection` picks members and applies consent,
`exporters` shapes each channel's records and files, `export` diffs, syncs and logs.
"""

from regulars.activation.config import ActivationConfig, ConfigError, load_config
from regulars.activation.export import ExportResult, export_channel
from regulars.activation.selection import checked, store_audience

__all__ = [
    "ActivationConfig",
    "ConfigError",
    "ExportResult",
    "checked",
    "export_channel",
    "load_config",
    "store_audience",
]

"""Superset's configuration for Regulars (bi/superset.py points SUPERSET_CONFIG_PATH here).

What differs per machine comes from SUPERSET_HOME, the folder bi/superset.py keeps Superset's
state in (var/superset/ for `make bi`, a temporary folder for the tests): the secret key it
generated there once, and the metadata database. Nothing in this file is a secret.
"""

import os
from pathlib import Path

_HOME = Path(os.environ["SUPERSET_HOME"])

# Signs the session cookies and encrypts the connection settings kept in the metadata database.
SECRET_KEY = (_HOME / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}"

# Dashboards only read: a connection may not be to Superset's own metadata or to SQLite files.
PREVENT_UNSAFE_DB_CONNECTIONS = True

"""Apache Airflow provider for the AI/ML API (aimlapi.com) chat-completions service."""

__version__ = "0.1.0"

DEFAULT_CONN_ID = "aiml_default"
"""The connection id tasks use unless they name one. It lives here, in the package Airflow imports to discover the
provider, so that a DAG file's operators need no other module for it."""

"""The hook of the AI/ML API and the pieces it is built from (settings, request building, parsing, retries)."""

from airflow_provider_aiml import DEFAULT_CONN_ID

__all__ = ["DEFAULT_CONN_ID"]

"""The hook of the AI/ML API and the pieces it is built from (settings, request building, parsing, retries)."""

DEFAULT_CONN_ID = "aiml_default"
"""The connection id tasks use unless they name one; importable without loading the hook."""

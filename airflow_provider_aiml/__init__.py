"""Apache Airflow provider for the AI/ML API (aimlapi.com) chat-completions service."""

__version__ = "0.1.0"

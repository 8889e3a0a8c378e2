"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

Airflow 3.3 builds the connection form from this dictionary alone, without importing the hook, so the form
(labels, hidden fields, extra fields with their defaults) is declared here. Keep this module free of imports:
every ``airflow providers`` command loads it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_aiml import __version__

_INTEGRATION = "AI/ML API"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow's providers manager."""
    return {
        "package-name": "airflow-provider-aiml",
        "name": _INTEGRATION,
        "description": "Chat completions with reasoning and vision models through the AI/ML API (aimlapi.com).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.aimlapi.com/",
                "tags": ["ai"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_aiml.hooks.aiml"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_provider_aiml.operators.chat",
                    "airflow_provider_aiml.operators.batch",
                    "airflow_provider_aiml.operators.embedding",
                    "airflow_provider_aiml.operators.agent",
                    "airflow_provider_aiml.operators.branch",
                ],
            }
        ],
        "task-decorators": [
            {"name": "aiml", "class-name": "airflow_provider_aiml.decorators.aiml.aiml_task"},
            {"name": "aiml_batch", "class-name": "airflow_provider_aiml.decorators.aiml_batch.aiml_batch_task"},
            {"name": "aiml_embed", "class-name": "airflow_provider_aiml.decorators.aiml_embed.aiml_embed_task"},
            {"name": "aiml_agent", "class-name": "airflow_provider_aiml.decorators.aiml_agent.aiml_agent_task"},
            {"name": "aiml_branch", "class-name": "airflow_provider_aiml.decorators.aiml_branch.aiml_branch_task"},
        ],
        "triggers": [{"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_aiml.triggers.aiml"]}],
        "connection-types": [
            {
                "connection-type": "aimlapi",
                "hook-name": _INTEGRATION,
                "hook-class-name": "airflow_provider_aiml.hooks.aiml.AimlApiHook",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "API Key", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://api.aimlapi.com/v1",
                        "password": "Your AI/ML API key",
                        "description": "e.g. AI/ML API, production key of the data team",
                    },
                },
                "conn-fields": {
                    "model": {
                        "label": "Default model",
                        "description": "Model used when a task does not name one.",
                        "schema": {"type": ["string", "null"], "default": "alibaba/qwen3-vl-32b-thinking"},
                    },
                    "embedding_model": {
                        "label": "Default embedding model",
                        "description": "Model the embedding tasks use when they do not name one.",
                        "schema": {"type": ["string", "null"], "default": "text-embedding-3-small"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Seconds to wait for one answer. Thinking models can take minutes.",
                        "schema": {"type": ["number", "null"], "default": 300, "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": (
                            "Retries of rate limits (429), server errors (5xx), timeouts and broken "
                            "connections. A retried call that had already reached the model can be billed twice."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 2, "minimum": 0, "maximum": 10},
                    },
                    "max_usd_per_day": {
                        "label": "Max USD per day",
                        "description": (
                            "Spend cap of this connection per UTC day, across every task and worker: once it is "
                            "reached new calls fail before sending (calls in flight finish). Empty: no cap."
                        ),
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "max_requests_per_minute": {
                        "label": "Max requests per minute",
                        "description": (
                            "Requests this connection may start in any 60 seconds, across every task and worker "
                            "(calls wait their turn). Empty: no limit."
                        ),
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "max_concurrency": {
                        "label": "Max concurrent requests",
                        "description": (
                            "Requests this connection may have in flight at once, across every task and worker. "
                            "Empty: no limit."
                        ),
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "limits_redis_conn_id": {
                        "label": "Limits store (Redis connection id)",
                        "description": (
                            "Redis connection that holds the shared limits when workers run on several machines. "
                            "Empty: a local file on each machine ($AIRFLOW_HOME/aiml-limits.sqlite)."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "catalog_checks": {
                        "label": "Check calls against the model catalog",
                        "description": (
                            "Before sending, check each call against its model's catalog entry and schema "
                            "(images, tools, JSON schema, each parameter's range). Off: the seed model's ranges."
                        ),
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                },
            }
        ],
    }

"""Enrichment: classify each record with one model call per record (``.expand()``), then collect the labels.

Each mapped task is its own API call with its own ``X-Client-Request-Id`` (map index included) and its own
XCom ``usage``; the collect task adds them up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

REVIEWS = [
    "The blender is loud but crushes ice in seconds. Worth the price.",
    "Arrived broken, and support never answered my emails.",
    "Does what it says. Nothing special, nothing wrong.",
]

SENTIMENT = {
    "type": "json_schema",
    "json_schema": {
        "name": "review_sentiment",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
                "reason": {"type": "string"},
            },
            "required": ["sentiment", "reason"],
            "additionalProperties": False,
        },
    },
}

with DAG(
    dag_id="example_aiml_enrichment",
    description="Label the sentiment of each review with one mapped model call per review.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:

    @task
    def load_reviews() -> list[str]:
        """Stand-in for reading the records of the day from a table or a file."""
        return [f"Classify the sentiment of this product review:\n\n{review}" for review in REVIEWS]

    # --8<-- [start:classify]
    classify = AimlChatCompletionOperator.partial(
        task_id="classify",
        system_prompt="You label product reviews. Answer with JSON only.",
        response_format=SENTIMENT,
        max_completion_tokens=2048,
    ).expand(prompt=load_reviews())
    # --8<-- [end:classify]

    @task
    def collect(answers: list[str], ti: Any = None) -> dict[str, Any]:
        """Pair each review with its label and add up the tokens and cost of all calls."""
        # --8<-- [start:collect-pull]
        parsed = list(ti.xcom_pull(task_ids="classify", key="parsed"))
        usages = list(ti.xcom_pull(task_ids="classify", key="usage"))
        costs = [usage["usd_spent"] for usage in usages if usage["usd_spent"] is not None]
        # --8<-- [end:collect-pull]
        return {
            "labels": [item["sentiment"] for item in parsed],
            "answers": list(answers),
            "total_tokens": sum(usage["total_tokens"] for usage in usages),
            "usd_spent": sum(costs) if costs else None,
        }

    collect(classify.output)

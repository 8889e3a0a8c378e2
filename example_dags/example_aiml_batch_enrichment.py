"""Nightly enrichment of a few hundred records in ONE task: bounded concurrency, a budget and a checkpoint.

Compared with ``example_aiml_enrichment`` (one mapped task per record), the batch operator runs all calls inside
one task on the async client: no task instance per record, a token/cost budget for the whole run, progress in
the log, and a checkpoint so a retried task pays for no record twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

PRODUCTS = ["kettle", "blender", "toaster", "lamp", "desk", "chair", "backpack", "headphones"]
ISSUES = ["arrived late", "works well", "stopped after a week", "great value", "too loud", "easy to set up"]

TICKET_LABEL = {
    "type": "json_schema",
    "json_schema": {
        "name": "ticket_label",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": ["delivery", "quality", "praise", "usability", "other"]},
                "urgent": {"type": "boolean"},
            },
            "required": ["category", "urgent"],
            "additionalProperties": False,
        },
    },
}

with DAG(
    dag_id="example_aiml_batch_enrichment",
    description="Label a few hundred support tickets in one task, within a budget, resumable.",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
    params={
        "records": Param(300, type="integer", minimum=1, maximum=100_000, description="How many tickets to label."),
        "checkpoint_dir": Param("/tmp/aiml-checkpoints", type="string"),
    },
) as dag:

    @task
    def load_tickets(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Stand-in for reading the day's tickets from a warehouse table."""
        count = int((params or {})["records"])
        return [
            {"id": 1000 + i, "text": f"My {PRODUCTS[i % len(PRODUCTS)]} {ISSUES[i % len(ISSUES)]}."}
            for i in range(count)
        ]

    label = AimlBatchChatCompletionOperator(
        task_id="label_tickets",
        inputs=load_tickets(),
        system_prompt="You label customer support tickets. Answer with JSON only.",
        prompt="Ticket {{ record.id }}: {{ record.text }}",
        response_format=TICKET_LABEL,
        max_completion_tokens=2048,
        concurrency=16,
        max_requests_per_minute=600,
        max_cost_usd=5.0,
        on_error="continue",
        checkpoint_path="{{ params.checkpoint_dir }}/{{ dag.dag_id }}/{{ run_id | replace(':', '_') }}.jsonl",
        progress_interval=10,
    )

    @task
    def summarize_labels(results: list[dict[str, Any]], ti: Any = None) -> dict[str, Any]:
        """Count the labels; records that failed carry an ``error`` instead of ``parsed``."""
        counts: dict[str, int] = {}
        for item in results:
            category = item["parsed"]["category"] if item["error"] is None else "failed"
            counts[category] = counts.get(category, 0) + 1
        usage = ti.xcom_pull(task_ids="label_tickets", key="usage")
        return {"labels": counts, "total_tokens": usage["total_tokens"], "usd_spent": usage["usd_spent"]}

    summarize_labels(label.output)

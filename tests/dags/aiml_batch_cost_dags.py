"""Batch DAGs for the cost end-to-end tests: a dry run, a run reconciled with ``GET /v2/logs``, and a batch whose
low estimate is over its ``max_cost_usd`` (run against the emulator, whose catalog prices its models)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

START = datetime(2026, 1, 1)
CITIES = [f"city number {i:03d} on the river" for i in range(6)]
PROMPT = "Describe {{ record }} in two sentences."


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"])


with _dag("aiml_batch_cost_dry_run"):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs=CITIES, prompt=PROMPT, max_completion_tokens=400, dry_run=True
    )

with _dag("aiml_batch_cost_reconciled"):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=CITIES,
        prompt=PROMPT,
        max_completion_tokens=400,
        concurrency=2,
        reconcile_billing=True,
        reconcile_timeout=10,
    )

with _dag("aiml_batch_cost_refused"):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs=CITIES, prompt=PROMPT, max_completion_tokens=400, max_cost_usd=0.0000001
    )

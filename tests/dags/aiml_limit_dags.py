"""DAGs whose tasks share one connection's limits (the e2e tests point ``aiml_limited`` at the emulator)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

SHARDS = [[f"shard {shard} record {i:02d}" for i in range(12)] for shard in range(3)]

with DAG(
    dag_id="aiml_limits_shared", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["aiml-test"]
):

    @task
    def shards() -> list[list[str]]:
        return SHARDS

    # Each shard asks for 8 calls at once; the connection lets 3 run across all of them.
    AimlBatchChatCompletionOperator.partial(
        task_id="enrich",
        aiml_conn_id="aiml_limited",
        prompt="Describe {{ record }}.",
        concurrency=8,
        on_error="continue",
    ).expand(inputs=shards())

"""The enrichment DAG of ``make test-cluster``: records in mapped batch shards spread over the Celery workers.

Every shard calls through the ``aiml_cluster`` connection, whose connection-wide limits (Redis store) hold
across both workers. Each shard keeps a checkpoint, so a shard whose worker is killed is retried, on either
worker, without asking again for a record it had finished. Sizes come from the environment the test sets.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

RECORDS = int(os.environ.get("AIML_CLUSTER_RECORDS", "20000"))
SHARDS = int(os.environ.get("AIML_CLUSTER_SHARDS", "8"))
CONCURRENCY = int(os.environ.get("AIML_CLUSTER_CONCURRENCY", "32"))
WORK = os.environ.get("AIML_CLUSTER_DIR", "/tmp/aiml-cluster")

with DAG(
    dag_id="aiml_cluster_enrichment",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=16,
    tags=["aiml-test"],
):

    @task
    def shard_records() -> list[list[str]]:
        """The records, dealt into shards of about equal size."""
        records = [f"record {index:05d} of the catalogue" for index in range(RECORDS)]
        return [records[shard::SHARDS] for shard in range(SHARDS)]

    AimlBatchChatCompletionOperator.partial(
        task_id="enrich",
        aiml_conn_id="aiml_cluster",
        prompt="Summarize {{ record }} in one line.",
        concurrency=CONCURRENCY,
        checkpoint_path=WORK + "/checkpoints/{{ run_id }}/shard-{{ ti.map_index }}.jsonl",
        output_path=WORK + "/results/{{ run_id }}/shard-{{ ti.map_index }}.jsonl",
        progress_interval=10,
        retries=3,
        retry_delay=timedelta(seconds=1),
    ).expand(inputs=shard_records())

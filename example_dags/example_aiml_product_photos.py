"""Describe every product photo in an S3 bucket, in one task; the descriptions go back to the bucket.

The photos are listed from ``s3://<bucket>/photos/*`` when the task runs and read through Airflow's object
storage with the ``aws_default`` connection. Each one is fitted before it is sent: turned upright from its EXIF
orientation and scaled down to what the model looks at (``max_image_pixels``), so a 12-megapixel camera file
costs no more than it must. The descriptions are written to ``s3://<bucket>/descriptions/<date>.jsonl``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

with DAG(
    dag_id="example_aiml_product_photos",
    description="A short catalog description for every product photo in a bucket.",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example", "vision"],
    params={"bucket": Param("aiml-examples", type="string", description="The bucket holding photos/.")},
) as dag:
    # --8<-- [start:describe]
    describe = AimlBatchChatCompletionOperator(
        task_id="describe_photos",
        inputs="s3://{{ params.bucket }}/photos/*",
        storage_conn_id="aws_default",
        system_prompt="You write product catalog copy: two sentences, no superlatives.",
        prompt="Describe the product in the photo {{ record.name }}.",
        max_completion_tokens=2048,
        concurrency=16,
        max_files=500,
        on_error="continue",
        output_path="s3://{{ params.bucket }}/descriptions/{{ ds }}.jsonl",
    )
    # --8<-- [end:describe]

    @task
    def report(manifest: dict[str, Any]) -> str:
        """The manifest is all that XCom holds: where the results are and how many succeeded."""
        return f"{manifest['succeeded']} of {manifest['records']} photos described in {manifest['path']}"

    report(describe.output)

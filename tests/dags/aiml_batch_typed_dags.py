"""A batch with typed output, for the end-to-end tests."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from pydantic import BaseModel

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator


class Place(BaseModel):
    name: str
    river: str | None = None


with DAG(dag_id="aiml_batch_typed", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=["Lyon", "Porto"],
        prompt="Describe {{ record }}.",
        output_type=Place,
        max_validation_retries=1,
        on_error="continue",
    )

"""Vision: ask a vision-language model a question about an image shipped next to the DAG file.

A local file is sent inline (base64 data URI); an http(s) URL would be passed through for the API to fetch.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

with DAG(
    dag_id="example_aiml_vision",
    description="Describe a chart image with alibaba/qwen3-vl-32b-thinking.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:
    # --8<-- [start:describe-chart]
    AimlChatCompletionOperator(
        task_id="describe_chart",
        model="alibaba/qwen3-vl-32b-thinking",
        prompt="What does this chart show? Name the tallest bar and its colour.",
        images=["images/bar_chart.png"],
        max_completion_tokens=4096,
    )
    # --8<-- [end:describe-chart]

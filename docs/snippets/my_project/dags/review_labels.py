from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

with DAG(dag_id="review_labels", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AimlChatCompletionOperator(
        task_id="label",
        prompt="Label this review as positive, neutral or negative: Arrived broken.",
        response_format={"type": "json_object"},
        max_completion_tokens=2048,
    )

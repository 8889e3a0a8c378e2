"""The samples of the operator guide (docs/operator.md and docs/reasoning-and-costs.md), as one runnable DAG.

The guide shows the parts between the ``--8<--`` markers; the test suite runs the whole DAG against the
emulator, so every sample on those pages is code that works. It sits next to the example DAGs, whose
``prompts/`` and ``images/`` folders it uses.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task
from pydantic import BaseModel, Field

# --8<-- [start:import]
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

# --8<-- [end:import]

SENTIMENT_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "review_sentiment",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]}},
            "required": ["sentiment"],
            "additionalProperties": False,
        },
    },
}


# --8<-- [start:typed-model]
class Invoice(BaseModel):
    """An invoice's key fields."""

    vendor: str
    total: float = Field(ge=0)
    currency: str


# --8<-- [end:typed-model]

with DAG(
    dag_id="docs_operator_guide",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "text": Param("Airflow 3 ships a new UI and task SDK.", type="string"),
        "city": Param("Lyon", type="string"),
        "max_sentences": Param(2, type="integer"),
    },
    tags=["docs"],
):
    # --8<-- [start:prompt]
    summarize = AimlChatCompletionOperator(
        task_id="summarize",
        system_prompt="You write short, factual summaries.",
        prompt="Summarize for a busy reader: {{ params.text }}",
        max_completion_tokens=4096,  # includes the reasoning tokens of a thinking model
    )
    # --8<-- [end:prompt]

    # --8<-- [start:messages]
    AimlChatCompletionOperator(
        task_id="guide",
        messages=[
            {"role": "system", "content": "You are a travel guide."},
            {"role": "user", "content": [{"type": "text", "text": "One sight in {{ params.city }}?"}]},
        ],
    )
    # --8<-- [end:messages]

    # --8<-- [start:template-file]
    AimlChatCompletionOperator(
        task_id="summarize_from_file",
        prompt="prompts/summarize.j2",  # a file next to the DAG file, rendered with params, ds, ...
    )
    # --8<-- [end:template-file]

    # --8<-- [start:images]
    AimlChatCompletionOperator(
        task_id="describe_chart",
        prompt="What does this chart show?",
        images=["images/bar_chart.png", {"url": "https://example.com/photo.jpg", "detail": "low"}],
    )
    # --8<-- [end:images]

    # --8<-- [start:extra-body]
    AimlChatCompletionOperator(
        task_id="quick_answer",
        model="openai/gpt-5",
        prompt="Name one sight in Lyon.",
        extra_body={"reasoning_effort": "low"},
    )
    # --8<-- [end:extra-body]

    # --8<-- [start:typed-task]
    AimlChatCompletionOperator(
        task_id="extract_invoice",
        prompt="Extract the invoice: ACME, 12.50 EUR.",
        output_type=Invoice,
        max_validation_retries=1,
    )
    # --8<-- [end:typed-task]

    # --8<-- [start:thinking-budget]
    AimlChatCompletionOperator(
        task_id="think_hard",
        model="alibaba/qwen3-32b",
        prompt="Is 9,991 a prime number?",
        stream=True,
        extra_body={"enable_thinking": True, "thinking_budget": 2048},
    )
    # --8<-- [end:thinking-budget]

    @task
    def load_reviews() -> list[str]:
        return ["Loud, but crushes ice in seconds.", "Arrived broken."]

    # --8<-- [start:expand]
    classify = AimlChatCompletionOperator.partial(
        task_id="classify",
        system_prompt="You label product reviews. Answer with JSON only.",
        response_format=SENTIMENT_SCHEMA,
        max_completion_tokens=2048,
    ).expand(prompt=load_reviews())  # load_reviews() returns a list of prompts
    # --8<-- [end:expand]

    # --8<-- [start:pull]
    @task
    def report(ti=None) -> str:
        usage = ti.xcom_pull(task_ids="summarize", key="usage")
        answer = ti.xcom_pull(task_ids="summarize", key="content")
        return f"{answer} ({usage['total_tokens']} tokens, {usage['usd_spent']} USD)"

    summarize >> report()
    # --8<-- [end:pull]

"""DAGs behind docs/xcom.md and docs/parameters.md: their samples are included from here (``--8<--``), and
tests/e2e/test_docs_xcom_shapes.py runs them and compares what they push with the shapes on the page."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task
from pydantic import BaseModel

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

START = datetime(2026, 1, 1)
# --8<-- [start:invoice-format]
INVOICE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "invoice",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
            "required": ["vendor", "total"],
            "additionalProperties": False,
        },
    },
}
# --8<-- [end:invoice-format]
LABEL_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "label",
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["positive", "neutral", "negative"]}},
            "required": ["label"],
            "additionalProperties": False,
        },
    },
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class CityFacts(BaseModel):
    city: str
    population: int


def _dag(dag_id: str, **kwargs: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"], **kwargs)


with _dag("aiml_docs_xcom_chat", params={"review": "Arrived broken."}):
    # --8<-- [start:pull-output]
    summarize = AimlChatCompletionOperator(task_id="summarize", prompt="Summarize: the council approved the budget.")

    @task
    def report(answer: str, usage: dict) -> str:
        return f"{answer} ({usage['total_tokens']} tokens)"

    report(summarize.output, summarize.output["usage"])
    # --8<-- [end:pull-output]

    # --8<-- [start:pull-xcom]
    @task
    def check(ti=None) -> None:
        response = ti.xcom_pull(task_ids="summarize", key="response")
        if response["finish_reason"] == "length":
            raise ValueError("The answer was cut off: raise max_completion_tokens.")

    summarize >> check()
    # --8<-- [end:pull-xcom]

    # --8<-- [start:pull-template]
    translate = AimlChatCompletionOperator(
        task_id="translate",
        prompt="Translate to French: {{ ti.xcom_pull(task_ids='summarize') }}",
    )
    summarize >> translate
    # --8<-- [end:pull-template]

    # --8<-- [start:pass-parameters]
    AimlChatCompletionOperator(
        task_id="label_review",
        prompt="Label this review as positive, neutral or negative: {{ params.review }}",
        max_completion_tokens=2048,
        temperature=0.2,
        stop=["\n\n"],
    )
    # --8<-- [end:pass-parameters]

    AimlChatCompletionOperator(
        task_id="extract", prompt="Extract the invoice: ACME, 12.50 EUR.", response_format=INVOICE_FORMAT
    )
    AimlChatCompletionOperator(
        task_id="call_tool", prompt="What is the weather in Lyon?", tools=[WEATHER_TOOL], tool_choice="required"
    )
    AimlChatCompletionOperator(task_id="summarize_later", prompt="Summarize: the bridge reopens.", deferrable=True)
    AimlChatCompletionOperator(task_id="summarize_streamed", prompt="Summarize: the ferry is late.", stream=True)
    AimlChatCompletionOperator(task_id="quiet", prompt="Say hello.", do_xcom_push=False)

    @task.aiml(output_type=CityFacts)
    def city_facts() -> str:
        return "Oslo has about 700000 people."

    @task.aiml
    def one_line() -> str:
        return "Describe Oslo in one line."

    @task.aiml_batch(prompt="Describe {{ record.name }}.")
    def people() -> list[dict[str, str]]:
        return [{"name": "Ada"}, {"name": "Grace"}]

    city_facts()
    one_line()
    people()

with _dag("aiml_docs_xcom_batch"):
    label_reviews = AimlBatchChatCompletionOperator(
        task_id="label_reviews",
        inputs=["Arrived broken.", "Works fine.", "Great value."],
        prompt="Label this review: {{ record }}",
        response_format=LABEL_FORMAT,
        concurrency=1,
        on_error="continue",
    )

    # --8<-- [start:keep-labels]
    @task
    def keep_labels(results: list[dict]) -> list[str]:
        return [item["parsed"]["label"] for item in results if item["error"] is None]

    keep_labels(label_reviews.output)
    # --8<-- [end:keep-labels]

"""DAGs written with @task.aiml and @task.aiml_batch, for the end-to-end tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task
from pydantic import BaseModel

START = datetime(2026, 1, 1)


class CityFacts(BaseModel):
    city: str
    country: str
    population: int


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"])


with _dag("aiml_decorator_basic"):

    @task.aiml(system_prompt="Be brief.", max_completion_tokens=500)
    def summarize(text: str) -> str:
        return f"Summarize this: {text}"

    @task
    def use(answer: str, ti: Any = None) -> dict[str, Any]:
        return {
            "answer": answer,
            "reasoning": ti.xcom_pull(task_ids="summarize", key="reasoning"),
            "usage": ti.xcom_pull(task_ids="summarize", key="usage"),
        }

    use(summarize("The quick brown fox jumps over the lazy dog."))

with _dag("aiml_decorator_expand"):

    @task.aiml(temperature=0.2)
    def describe(city: str) -> str:
        return f"Describe {city} in one line."

    describe.expand(city=["Oslo", "Lyon", "Porto"])

with _dag("aiml_decorator_messages"):

    @task.aiml
    def converse() -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a river in Lyon."},
        ]

    converse()

with _dag("aiml_decorator_typed"):

    @task.aiml(output_type=CityFacts)
    def extract() -> str:
        return "Oslo is the capital of Norway, home to about 700000 people."

    extract()

with _dag("aiml_decorator_deferrable"):

    @task.aiml(deferrable=True)
    def ask_later(topic: str) -> str:
        return f"Explain {topic}."

    ask_later("deferral")

with _dag("aiml_decorator_bad_return"):

    @task.aiml
    def nothing() -> str:
        return ""

    nothing()

with _dag("aiml_decorator_batch"):

    @task.aiml_batch(prompt="Describe {{ record.name }} ({{ index }}).", concurrency=2)
    def people() -> list[dict[str, str]]:
        return [{"name": "Ada"}, {"name": "Grace"}, {"name": "Linus"}]

    people()

with _dag("aiml_decorator_batch_plain"):

    @task.aiml_batch
    def prompts() -> list[str]:
        return ["First question?", "Second question?"]

    prompts()

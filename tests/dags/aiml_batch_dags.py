"""Batch-operator DAGs for the end-to-end tests (run against the emulator)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

START = datetime(2026, 1, 1)
CITIES = [f"city number {i:03d} on the river" for i in range(40)]


def _dag(dag_id: str, **kwargs: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"], **kwargs)


with _dag("aiml_batch_basic", params={"concurrency": 4}):

    @task
    def load() -> list[str]:
        return CITIES

    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=load(),
        prompt="Describe {{ record }} (record {{ index }}) for {{ ds }}.",
        system_prompt="Be brief.",
        concurrency=4,
        progress_interval=0.2,
        on_error="continue",
    )

with _dag("aiml_batch_dicts"):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=[{"name": "Ada", "job": "engineer"}, {"name": "Grace", "job": "admiral"}],
        messages=[
            {"role": "system", "content": "Answer with JSON."},
            {"role": "user", "content": "Summarize {{ record.name }}, who is an {{ record.job }}."},
        ],
        response_format={"type": "json_object"},
    )

with _dag("aiml_batch_fail"):
    AimlBatchChatCompletionOperator(task_id="batch", inputs=CITIES[:6], prompt="Describe {{ record }}.")

with _dag("aiml_batch_budget", params={"max_total_tokens": 1000}):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=CITIES[:12],
        prompt="Describe {{ record }}.",
        concurrency=1,
        max_total_tokens=1000,
    )

with _dag("aiml_batch_cost"):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs=CITIES[:12], prompt="Describe {{ record }}.", concurrency=1, max_cost_usd=0.0005
    )

with _dag("aiml_batch_checkpoint", params={"checkpoint": "/tmp/unset.jsonl"}):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=CITIES[:20],
        prompt="Describe {{ record }}.",
        concurrency=2,
        checkpoint_path="{{ params.checkpoint }}",
    )

with _dag("aiml_batch_bad_template"):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=[{"name": "Ada"}, {"title": "no name here"}],
        prompt="Describe {{ record.name.upper() }}.",
    )

with _dag("aiml_batch_not_a_list"):
    AimlBatchChatCompletionOperator(task_id="batch", inputs="{{ 'not a list' }}", prompt="Describe {{ record }}.")

with _dag("aiml_batch_empty"):
    AimlBatchChatCompletionOperator(task_id="batch", inputs=[], prompt="Describe {{ record }}.")

with _dag("aiml_batch_prompt_file", params={"style": "a travel guide"}):
    AimlBatchChatCompletionOperator(task_id="batch", inputs=CITIES[:3], prompt="prompts/batch_prompt.j2")

with _dag("aiml_batch_budget_wave"):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=CITIES[:12],
        prompt="Describe {{ record }}.",
        concurrency=4,
        max_completion_tokens=400,
        max_total_tokens=1000,
    )

with _dag("aiml_batch_native", render_template_as_native_obj=True):
    AimlBatchChatCompletionOperator(task_id="batch", inputs=["2024", "notes.txt"], prompt="{{ record }}")

with _dag("aiml_batch_bad_checkpoint"):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs=CITIES[:4], prompt="Describe {{ record }}.", checkpoint_path="/dev/null/ck.jsonl"
    )

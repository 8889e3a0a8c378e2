"""DAGs whose OpenLineage events the lineage tests read (run against the emulator)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

START = datetime(2026, 1, 1)
RECORDS = ["the tram line", "the new bridge", "the river port", "the night market"]


def _dag(dag_id: str, **kwargs: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"], **kwargs)


with _dag("aiml_lineage_chat"):
    AimlChatCompletionOperator(task_id="chat", prompt="Summarize: the bridge reopens on Monday.")

    @task.aiml(task_id="decorated")
    def ask() -> str:
        return "Summarize: the tram runs every ten minutes."

    ask()

with _dag("aiml_lineage_deferred"):
    AimlChatCompletionOperator(task_id="chat", prompt="Summarize: the port opens at night.", deferrable=True)

with _dag("aiml_lineage_batch"):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs=RECORDS, prompt="Describe {{ record }} in one line.", on_error="continue"
    )

with _dag("aiml_lineage_batch_fails"):
    AimlBatchChatCompletionOperator(task_id="batch", inputs=RECORDS, prompt="Describe {{ record }} in one line.")

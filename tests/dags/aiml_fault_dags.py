"""Batch DAGs for the fault-injection suite (tests/faults), run against the emulator with faults switched on.

Each record names itself ("Record 0042 ..."), so the emulator's deterministic reply ("Summary: Record 0042 ...")
traces every answer back to its record.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

START = datetime(2026, 1, 1)
FAULTS_CONN_ID = "aiml_faults"
"""The connection the fault tests set up: the emulator, a short timeout and the default 2 retries."""
CHAOS_RECORDS = 2000
CHAOS_CONCURRENCY = 16
RESUME_RECORDS = 300
RESUME_CONCURRENCY = 4
_DOCKS = ("north", "south", "east", "west")


def record_text(index: int) -> str:
    """The text of record ``index``; the emulator's answer starts with ``Summary: Record NNNN``."""
    return f"Record {index:04d} of the fault batch. It lists crate {index * 7 % 1000} at the {_DOCKS[index % 4]} dock."


def _dag(dag_id: str, **kwargs: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-faults"], **kwargs)


with _dag("aiml_faults_chaos"):

    @task
    def chaos_records() -> list[str]:
        return [record_text(index) for index in range(CHAOS_RECORDS)]

    AimlBatchChatCompletionOperator(
        task_id="batch",
        aiml_conn_id=FAULTS_CONN_ID,
        inputs=chaos_records(),
        prompt="{{ record }}",
        system_prompt="Be brief.",
        concurrency=CHAOS_CONCURRENCY,
        progress_interval=5,
        on_error="continue",
    )

with _dag("aiml_faults_resume", params={"checkpoint": "/tmp/unset.jsonl"}):

    @task
    def resume_records() -> list[str]:
        return [record_text(index) for index in range(RESUME_RECORDS)]

    AimlBatchChatCompletionOperator(
        task_id="batch",
        aiml_conn_id=FAULTS_CONN_ID,
        inputs=resume_records(),
        prompt="{{ record }}",
        concurrency=RESUME_CONCURRENCY,
        progress_interval=5,
        on_error="continue",
        checkpoint_path="{{ params.checkpoint }}",
    )

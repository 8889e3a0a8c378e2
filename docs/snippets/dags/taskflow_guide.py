"""The samples of the TaskFlow guide (docs/taskflow.md), as one runnable DAG; the guide shows the marked parts."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="docs_taskflow_guide", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["docs"]):

    @task
    def changes() -> list[str]:
        return ["Retries honour Retry-After", "Batch checkpoints resume after a crash"]

    # --8<-- [start:task-aiml]
    from airflow.sdk import task

    @task.aiml(system_prompt="You write crisp release notes.", max_completion_tokens=1024)
    def release_note(change: str) -> str:
        return f"Write one line of release notes for this change: {change}"

    @task
    def publish(notes: list[str]) -> str:
        return "\n".join(f"- {note}" for note in notes)

    publish(release_note.expand(change=changes()))
    # --8<-- [end:task-aiml]

    # --8<-- [start:task-aiml-batch]
    @task.aiml_batch(prompt="Describe {{ record.name }} in one line.", concurrency=8, max_total_tokens=200_000)
    def people() -> list[dict[str, str]]:
        return [{"name": "Ada"}, {"name": "Grace"}, {"name": "Linus"}]

    people()
    # --8<-- [end:task-aiml-batch]

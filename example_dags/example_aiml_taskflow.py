"""TaskFlow with ``@task.aiml``: the function builds the prompt, the decorator asks the model.

The task returns the answer text (so it can be passed straight to the next task), and still pushes
``reasoning``, ``usage`` and ``response`` as XCom keys. ``.expand()`` maps it over a list like any task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

with DAG(
    dag_id="example_aiml_taskflow",
    description="Write a one-line release note per change with @task.aiml, then join them.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:

    @task
    def changes() -> list[str]:
        return [
            "Retry 429 responses with the server's Retry-After",
            "Stream reasoning into the task log",
            "Add a token budget to batch runs",
        ]

    @task.aiml(system_prompt="You write crisp release notes.", max_completion_tokens=1024)
    def release_note(change: str) -> str:
        return f"Write one line of release notes for this change: {change}"

    @task
    def publish(notes: list[str], ti: Any = None) -> str:
        usages = ti.xcom_pull(task_ids="release_note", key="usage")
        tokens = sum(usage["total_tokens"] for usage in usages)
        return "\n".join(f"- {note}" for note in notes) + f"\n({tokens} tokens)"

    publish(release_note.expand(change=changes()))

"""A release note that waits for approval: the model writes it, a person approves, edits or rejects it.

``review`` waits in Airflow's "Required actions" view with the note in an editable field; the note that is
approved (as written or edited) is what ``publish`` gets. A rejection skips ``publish``. Nobody asks the model
again while the review waits, or when it is answered.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.approval import AimlApprovalOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

log = logging.getLogger(__name__)

CHANGELOG = """\
- Retry 429 responses after the server's Retry-After
- Stream the model's reasoning into the task log
- Add a cost budget to batch runs
- Fix: an empty prompt template now fails before the call"""

# --8<-- [start:dag]
with DAG(
    dag_id="example_aiml_release_note_approval",
    description="Write a release note with the model and publish it once a person has approved it.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example", "approval"],
    user_defined_macros={"default_changelog": CHANGELOG},
) as dag:
    write_note = AimlChatCompletionOperator(
        task_id="write_note",
        system_prompt="You write short, friendly release notes for users, in Markdown.",
        # Trigger with --conf '{"version": "2.5.0", "changelog": "- ..."}' for another release.
        prompt=(
            "Write the release note for version {{ dag_run.conf.get('version', '2.4.0') }} from this changelog:"
            "\n\n{{ dag_run.conf.get('changelog') or default_changelog }}"
        ),
        max_completion_tokens=4096,
    )

    review = AimlApprovalOperator(
        task_id="review",
        subject="Release note for {{ dag_run.conf.get('version', '2.4.0') }}",
        content="{{ ti.xcom_pull(task_ids='write_note') }}",
    )
    # --8<-- [end:dag]

    @task
    def publish(ti: Any = None) -> str:
        """Stand-in for posting the note: log it and hand it on. Runs only when the note was approved."""
        # --8<-- [start:publish-pull]
        note = ti.xcom_pull(task_ids="review", key="content")
        edited = ti.xcom_pull(task_ids="review", key="edited")
        # --8<-- [end:publish-pull]
        log.info("Publishing the release note (%s):\n%s", "edited by the reviewer" if edited else "as written", note)
        return note

    write_note >> review >> publish()

"""Deferrable summarization: the worker slot is free while the thinking model works.

With ``deferrable=True`` the task validates its input, hands the call to the triggerer and frees its worker
slot; the triggerer makes the call (same retries and errors) and the task resumes to push the same XCom
values. Needs a running triggerer (``airflow standalone`` starts one); ``[operators] default_deferrable``
turns it on for every operator that supports it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

REPORT = (
    "Quarterly operations report. Ticket volume rose 18% to 12,400, driven by the new billing system launched in "
    "May. Median first response time improved from 4.1 to 2.6 hours after the team added a follow-the-sun rota. "
    "Customer satisfaction held at 4.4 of 5. Two incidents exceeded the four-hour SLA, both caused by a payment "
    "provider outage. Next quarter the team will automate refunds under 50 euros."
)

with DAG(
    dag_id="example_aiml_deferrable",
    description="Summarize a report with the call running in the triggerer.",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:
    AimlChatCompletionOperator(
        task_id="summarize_report",
        system_prompt="Summarize for an executive in three bullet points.",
        prompt=REPORT,
        max_completion_tokens=4096,
        deferrable=True,
    )

"""Support-ticket triage: the model reads each new ticket and picks the team's branch; the others are skipped."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.branch import AimlBranchOperator

with DAG(
    dag_id="example_aiml_ticket_triage",
    description="Route a support ticket to the team that handles it, chosen by the model.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
    params={"ticket": "I was charged twice for my March order and the parcel has not arrived."},
) as dag:
    # --8<-- [start:triage]
    triage = AimlBranchOperator(
        task_id="triage",
        system_prompt="You route support tickets. Choose the one team that must act first.",
        prompt="Ticket: {{ params.ticket }}",
        choices={
            "billing": "payments, refunds, invoices, double charges",
            "shipping": "lost, late or damaged parcels",
            "account": "logins, passwords, profile changes",
        },
        temperature=0.0,
        max_completion_tokens=2048,
    )

    @task
    def billing(reason: str) -> str:
        return f"billing ticket opened: {reason}"

    @task
    def shipping(reason: str) -> str:
        return f"shipping ticket opened: {reason}"

    @task
    def account(reason: str) -> str:
        return f"account ticket opened: {reason}"

    reason = "{{ ti.xcom_pull(task_ids='triage', key='reason') }}"  # the model's reason, for the ticket
    triage >> [billing(reason), shipping(reason), account(reason)]
    # --8<-- [end:triage]

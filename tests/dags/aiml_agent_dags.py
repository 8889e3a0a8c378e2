"""Agent and branch DAGs for the end-to-end tests, run against the emulator."""

from __future__ import annotations

import os
import time
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.agent import AimlAgentOperator
from airflow_provider_aiml.operators.branch import AimlBranchOperator

START = datetime(2026, 1, 1)


def _log_run(sku: str) -> None:
    """Count a tool's run in the file the tests name (the DAG file is loaded as a module of its own)."""
    with open(os.environ["AIML_TEST_TOOL_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{sku}\n")


def stock_level(sku: str) -> dict[str, object]:
    """How many units of a product are in stock.

    :param sku: the product's stock-keeping unit, e.g. ``A-100``.
    """
    _log_run(sku)
    return {"sku": sku, "units": 40 if sku == "A-100" else 0}


def reserve_stock(sku: str, units: int) -> str:
    """Reserve units of a product for an order (a side effect: it must run at most once per call).

    :param sku: the product's stock-keeping unit.
    :param units: how many to reserve.
    """
    _log_run(sku)
    if sku == os.environ.get("AIML_TEST_TOOL_BLOCK"):
        time.sleep(60)  # the test kills the worker while this call runs
    return f"reserved {units} x {sku}"


def _dag(dag_id: str, **params: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"], params=params)


def service_config() -> str:
    """The payment service's settings (host and credentials)."""
    from airflow.sdk import Connection

    conn = Connection.get("aiml_test_service")  # the task SDK registers its password with the masker
    return f"host={conn.host} user={conn.login} password={conn.password}"


with _dag("aiml_agent", checkpoint="", question="Is A-100 in stock?"):
    AimlAgentOperator(
        task_id="agent",
        prompt="{{ params.question }}",
        tools=[stock_level],
        checkpoint_path="{{ params.checkpoint or '' }}",
        retries=0,
    )

with _dag("aiml_agent_reserve", checkpoint=""):
    AimlAgentOperator(
        task_id="agent",
        prompt="Reserve 2 x A-100 and 1 x B-200 for order 7.",
        tools=[reserve_stock],
        checkpoint_path="{{ params.checkpoint }}",
    )

with _dag("aiml_agent_secret"):
    AimlAgentOperator(task_id="agent", prompt="Is the payment service configured?", tools=[service_config])

with _dag("aiml_branch"):
    pick = AimlBranchOperator(
        task_id="route",
        prompt="A customer writes: 'my parcel never arrived'. Which team handles it?",
        choices={"shipping": "lost or late parcels", "billing": "payments and refunds"},
    )

    @task
    def shipping() -> str:
        return "shipping team"

    @task
    def billing() -> str:
        return "billing team"

    @task
    def other() -> str:
        return "never chosen"

    pick >> [shipping(), billing(), other()]

with _dag("aiml_branch_decorator"):

    @task.aiml_branch(allow_multiple=True)
    def route(ticket: str = "refund for a lost parcel") -> str:
        return f"Which teams handle this ticket: {ticket!r}?"

    @task
    def shipping_team() -> str:
        return "shipping"

    @task
    def billing_team() -> str:
        return "billing"

    route() >> [shipping_team(), billing_team()]

with _dag("aiml_branch_deferred"):

    @task.aiml_branch(deferrable=True)
    def route_later(ticket: str = "my parcel never arrived") -> str:
        return f"Which team handles this ticket: {ticket!r}?"

    @task
    def parcels() -> str:
        return "parcels"

    @task
    def payments() -> str:
        return "payments"

    route_later() >> [parcels(), payments()]

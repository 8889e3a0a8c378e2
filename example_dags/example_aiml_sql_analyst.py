"""Every week, ask the shop's database a question: an agent that writes its own read-only SQL, then a report.

An ``@task.aiml_agent`` task dates the question and gives the model the read-only ``SqlToolset`` over the
``aiml_shop_db`` connection: the model lists the allowed tables, describes them and runs SELECTs until it can
answer. Every query is parsed before it runs and refused (with nothing sent to the database) unless it is one
SELECT over ``customers``, ``products`` or ``orders``; the ``staff_salaries`` table of the same file is not
allowed, so its rows never reach the model. Each step is recorded in a checkpoint named after the run id, so a
retried task neither pays for a model step again nor re-runs a query. ``weekly_report`` reads the answer and the
steps from XCom.

The sample database is ``example_dags/files/shop.sqlite`` (made by ``scripts/make_sample_files.py``; its tables are
described in ``example_dags/files/README.md``). The DAG sets no connection itself: create it once, pointing at
the file, with ``mode=ro`` so that SQLite opens it read-only (a second guard after the parser)::

    export AIRFLOW_CONN_AIML_SHOP_DB='{"conn_type": "sqlite", "host": "/path/to/shop.sqlite", "extra": {"mode": "ro"}}'

or ``airflow connections add aiml_shop_db --conn-type sqlite --conn-host "$PWD/example_dags/files/shop.sqlite"
--conn-extra '{"mode": "ro"}'``. In the URI form the path is the URL-encoded host,
``sqlite://%2Fpath%2Fto%2Fshop.sqlite?mode=ro``; ``sqlite:////path/to/shop.sqlite`` does not open. Any other
common-sql connection (Postgres, MySQL, ...) works the same way, with a database login that can only read.

It needs the ``sql`` extra and the SQLite provider: ``pip install "airflow-provider-aiml[sql]"
apache-airflow-providers-sqlite``. The sample orders run from 2025-12-01 to 2026-11-30; to ask about them after
that, trigger the DAG with ``{"as_of": "2026-12-07"}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_aiml.agents.sql import SqlToolset

QUESTION = "Which three products earned the most last month, and how does that compare with the month before?"

with DAG(
    dag_id="example_aiml_sql_analyst",
    description="A scheduled question answered by an agent that queries the shop database read-only.",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example", "agent"],
    params={
        "question": Param(QUESTION, type="string", description="What to ask the shop's database."),
        "as_of": Param(None, type=["null", "string"], format="date", description="Today's date for the question."),
        "checkpoint_dir": Param("/tmp/aiml-checkpoints", type="string", description="Where the steps are recorded."),
    },
) as dag:
    # --8<-- [start:agent]
    @task.aiml_agent(
        tools=[SqlToolset("aiml_shop_db", allowed_tables=["customers", "products", "orders"], max_rows=50)],
        system_prompt=(
            "You are the data analyst of a small online shop. Answer from its database only, using the SQL "
            "tools: list the tables, describe the ones you need, then query them. Revenue is quantity times "
            "orders.unit_price_cents (the price paid, in euro cents): give it in euros. Name the months you "
            "compared."
        ),
        max_steps=8,
        max_tool_errors=3,
        max_cost_usd=0.5,
        max_completion_tokens=4096,
        checkpoint_path="{{ params.checkpoint_dir }}/{{ dag.dag_id }}/{{ run_id | replace(':', '_') }}.jsonl",
        preview_chars=1000,
    )
    def ask_the_shop_db(params: dict[str, Any] | None = None, dag_run: Any = None) -> str:
        """The question, dated: "last month" is the month before the run's date, or before ``params.as_of``."""
        params = params or {}
        today = params["as_of"] or dag_run.run_after.date().isoformat()
        return f"Today is {today}. {params['question']}"

    # --8<-- [end:agent]

    # --8<-- [start:report]
    @task
    def weekly_report(ti: Any = None) -> dict[str, Any]:
        """The answer, with how the agent got it: the queries that ran and the calls that were refused."""
        answer = ti.xcom_pull(task_ids="ask_the_shop_db", key="content")
        steps = ti.xcom_pull(task_ids="ask_the_shop_db", key="steps")
        calls = [call for step in steps for call in step["tool_calls"]]
        return {
            "answer": answer,
            "queries": [call["arguments"] for call in calls if call["name"] == "run_query" and not call["error"]],
            "refused": [{"call": call["arguments"], "why": call["result"]} for call in calls if call["error"]],
            "model_steps": len(steps),
        }

    ask_the_shop_db() >> weekly_report()
    # --8<-- [end:report]

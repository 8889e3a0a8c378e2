"""The SQL analyst example through a real DAG run: the emulator plays the model over real HTTP, a copy of the
shipped shop database answers the queries, and the toolset refuses what it must before the database or the API
sees anything of it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, ScriptedReply
from tests.airflow_env import REPO
from tests.e2e.test_operator_dags import run, state, xcom

SHOP = REPO / "example_dags" / "files" / "shop.sqlite"
DAG_ID = "example_aiml_sql_analyst"
TASK = "ask_the_shop_db"
TODAY = datetime(2026, 12, 6, tzinfo=UTC)  # a Sunday, when "@weekly" runs
LAST_MONTH, MONTH_BEFORE = "2026-11", "2026-10"
ANSWER_PREFIX = "From the shop database: "

TOP_THREE = f"""
WITH revenue AS (
    SELECT p.name AS product, strftime('%Y-%m', o.ordered_on) AS month,
           SUM(o.quantity * o.unit_price_cents) AS cents
    FROM orders AS o JOIN products AS p ON p.id = o.product_id
    WHERE strftime('%Y-%m', o.ordered_on) IN ('{LAST_MONTH}', '{MONTH_BEFORE}')
    GROUP BY p.name, month
)
SELECT l.product, l.cents AS last_month_cents, COALESCE(b.cents, 0) AS month_before_cents
FROM revenue AS l LEFT JOIN revenue AS b ON b.product = l.product AND b.month = '{MONTH_BEFORE}'
WHERE l.month = '{LAST_MONTH}'
ORDER BY l.cents DESC, l.product
LIMIT 3
"""
SALARIES = "SELECT name, annual_salary_eur FROM staff_salaries ORDER BY annual_salary_eur DESC"
DELETE = f"DELETE FROM orders WHERE ordered_on < '{LAST_MONTH}-01'"


@pytest.fixture
def shop_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped database behind ``aiml_shop_db``, writable: only the parser stands in the way."""
    path = tmp_path / "shop.sqlite"
    shutil.copyfile(SHOP, path)
    monkeypatch.setenv("AIRFLOW_CONN_AIML_SHOP_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


def top_three(path: Path) -> list[list[Any]]:
    """The answer to TOP_THREE, added up in Python from the raw orders (not by the SQL the model sends)."""
    names = dict(rows(path, "SELECT id, name FROM products"))
    cents: dict[tuple[str, str], int] = {}
    for product_id, ordered_on, quantity, price in rows(
        path, "SELECT product_id, ordered_on, quantity, unit_price_cents FROM orders"
    ):
        key = (names[product_id], ordered_on[:7])
        cents[key] = cents.get(key, 0) + quantity * price
    last = [(product, total) for (product, month), total in cents.items() if month == LAST_MONTH]
    last.sort(key=lambda item: (-item[1], item[0]))
    return [[product, total, cents.get((product, MONTH_BEFORE), 0)] for product, total in last[:3]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_sql_analyst_answers_from_its_queries_and_never_reads_the_salaries(dagbag, emulator, shop_db, tmp_path):
    expected = top_three(shop_db)
    assert len(expected) == 3
    assert all(last > 0 for _, last, _ in expected)
    staff = rows(shop_db, "SELECT name, annual_salary_eur FROM staff_salaries")
    assert staff  # the secret table is there to be read, and must not be
    before, orders = digest(shop_db), rows(shop_db, "SELECT COUNT(*) FROM orders")
    emulator.script(
        ScriptedReply.tool_calls(
            ("list_tables", {}), ("describe_table", {"table": "orders"}), ("run_query", {"sql": TOP_THREE})
        ),
        ScriptedReply.tool_calls(("run_query", {"sql": SALARIES}), ("run_query", {"sql": DELETE})),
        ScriptedReply.from_tool_results(ANSWER_PREFIX),
    )

    dag_run = run(dagbag, DAG_ID, logical_date=TODAY, run_after=TODAY, run_conf={"checkpoint_dir": str(tmp_path)})

    assert dag_run.state == "success"
    assert state(dag_run, "weekly_report") == "success"
    assert len(emulator.chat_requests) == 3
    first, second = (request.json for request in emulator.chat_requests[:2])
    assert [tool["function"]["name"] for tool in first["tools"]] == ["list_tables", "describe_table", "run_query"]
    question = first["messages"][-1]["content"]
    assert question.startswith("Today is 2026-12-06. Which three products earned the most last month")
    assert first["messages"][0]["role"] == "system"

    # Step 1's results, as the model received them: the allowed tables only, the real columns, the real rows.
    tables, columns, top = (message["content"] for message in emulator.chat_requests[1].tool_results)
    assert json.loads(tables) == ["customers", "products", "orders"]
    order_columns = [row[1] for row in rows(shop_db, "PRAGMA table_info(orders)")]
    assert [column["name"] for column in json.loads(columns)["columns"]] == order_columns
    assert json.loads(top) == {"columns": ["product", "last_month_cents", "month_before_cents"], "rows": expected}
    assert len(second["messages"]) == len(first["messages"]) + 4  # the calls and their three results

    # Step 2: both statements refused by the parser, so nothing ran: the writable file is byte for byte the same.
    salaries, deleted = (message["content"] for message in emulator.chat_requests[2].tool_results[3:])
    assert salaries.startswith("Refused: the table 'staff_salaries' is not one you may use")
    assert deleted.startswith("Refused: only SELECT queries may run")
    assert digest(shop_db) == before
    assert rows(shop_db, "SELECT COUNT(*) FROM orders") == orders

    # Nothing of the salaries table reached the API, in any request.
    secrets = [value for name, salary in staff for value in (name, str(salary), f"{salary:,}")]
    bodies = [request.body.decode() for request in emulator.requests]
    assert [value for value in secrets if any(value in body for body in bodies)] == []

    # XCom: the final answer holds every tool result, and the steps show what ran and what was refused.
    results = emulator.chat_requests[2].tool_results
    names = ["list_tables", "describe_table", "run_query", "run_query", "run_query"]
    answered = [f"{name}: {result['content']}" for name, result in zip(names, results, strict=True)]
    content = ANSWER_PREFIX + "; ".join(answered)
    assert xcom(dag_run, "content", TASK) == content
    assert xcom(dag_run, "return_value", TASK) == content
    steps = xcom(dag_run, "steps", TASK)
    assert [(step["step"], [call["name"] for call in step["tool_calls"]]) for step in steps] == [
        (1, ["list_tables", "describe_table", "run_query"]),
        (2, ["run_query", "run_query"]),
        (3, []),
    ]
    step1, step2 = steps[0]["tool_calls"], steps[1]["tool_calls"]
    assert [call["error"] for call in step1] == [None, None, None]
    assert json.loads(step1[2]["result"])["rows"] == expected  # the preview is the whole result
    assert [call["result"] for call in step2] == [salaries, deleted]
    assert [call["error"] for call in step2] == [salaries, deleted]
    assert [json.loads(call["arguments"])["sql"] for call in step2] == [SALARIES, DELETE]

    # The downstream report reads content and steps.
    assert xcom(dag_run, "answer", "weekly_report") == content
    assert [json.loads(query)["sql"] for query in xcom(dag_run, "queries", "weekly_report")] == [TOP_THREE]
    assert xcom(dag_run, "refused", "weekly_report") == [
        {"call": json.dumps({"sql": SALARIES}), "why": salaries},
        {"call": json.dumps({"sql": DELETE}), "why": deleted},
    ]
    assert xcom(dag_run, "model_steps", "weekly_report") == 3

    # Every step was recorded in the run's checkpoint, under the checkpoint_dir param.
    (record,) = (tmp_path / DAG_ID).glob("*.jsonl")
    assert record.name == dag_run.run_id.replace(":", "_") + ".jsonl"
    assert record.read_text().count('"model:') == 3


def test_as_of_dates_the_question_instead_of_the_run(dagbag, emulator, shop_db, tmp_path):
    emulator.script(ScriptedReply.text("No orders in that month."))

    dag_run = run(dagbag, DAG_ID, run_conf={"as_of": "2026-12-07", "checkpoint_dir": str(tmp_path)})

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 1
    assert emulator.chat_requests[0].json["messages"][-1]["content"].startswith("Today is 2026-12-07. Which three")
    assert xcom(dag_run, "answer", "weekly_report") == "No orders in that month."
    assert xcom(dag_run, "queries", "weekly_report") == []
    assert xcom(dag_run, "model_steps", "weekly_report") == 1

"""The read-only SQL toolset against a real SQLite file: what it runs, and what it refuses without running."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.agents.sql import DENIED_FUNCTIONS, SqlToolset
from airflow_provider_aiml.exceptions import AimlParameterError
from tests.sql_toolset_helpers import Spy, query, record_sql, result, tools_of
from tests.sql_toolset_helpers import spied as spied_fixture

spied = spied_fixture  # the fixture, over this module's ``toolset``


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, bio TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL);
            CREATE TABLE secrets (k TEXT, v TEXT);
            INSERT INTO secrets VALUES ('root', 'hunter2');
            """
        )
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?)", [(i, f"user{i}", "x" * (i * 100)) for i in range(1, 251)]
        )
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(1, 1, 9.5), (2, 1, 0.5), (3, 2, 4.0)])
    # The SQLite provider reads the file path from the connection's host (URL-encoded in the URI form).
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_DB", "sqlite://" + urllib.parse.quote(str(path), safe=""))
    return path


@pytest.fixture
def toolset(db: Path) -> SqlToolset:
    return SqlToolset("shop_db", ["users", "orders"], max_rows=100, max_cell_chars=50)


def test_three_read_only_tools(toolset: SqlToolset) -> None:
    tools = tools_of(toolset)
    assert list(tools) == ["list_tables", "describe_table", "run_query"]
    assert not any(t.side_effects for t in tools.values())
    assert tools["run_query"].parameters["required"] == ["sql"]
    assert tools["describe_table"].parameters["properties"]["table"]["type"] == "string"


def test_nothing_happens_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    toolset = SqlToolset("nowhere", ["t"])  # the connection does not exist: only use would find out
    assert [t.name for t in toolset.tools()] == ["list_tables", "describe_table", "run_query"]
    outcome = asyncio.run(tools_of(toolset)["list_tables"].run("{}"))
    assert json.loads(outcome.content) == ["t"]


def test_hook_is_cached(toolset: SqlToolset) -> None:
    assert toolset.hook is toolset.hook
    assert toolset.dialect == "sqlite"


def test_unknown_functions_are_refused_unless_allowed(db: Path) -> None:
    strict = SqlToolset("shop_db", ["users"])
    outcome = asyncio.run(tools_of(strict)["run_query"].run('{"sql": "SELECT quote(name) FROM users"}'))
    assert outcome.error is not None
    assert "quote() is not allowed: only functions known to be read-only may run" in outcome.content

    allowing = SqlToolset("shop_db", ["users"], allowed_functions=["QUOTE", "load_extension"])
    outcome = asyncio.run(tools_of(allowing)["run_query"].run('{"sql": "SELECT quote(name) FROM users"}'))
    assert outcome.error is None
    assert json.loads(outcome.content)["rows"]
    denied = asyncio.run(tools_of(allowing)["run_query"].run('{"sql": "SELECT load_extension(\'x\')"}'))
    assert "load_extension() is not allowed (it has side effects" in denied.content  # denied stays denied


def test_a_task_holding_a_toolset_can_be_deep_copied(toolset: SqlToolset) -> None:
    import copy

    from airflow_provider_aiml.operators.agent import AimlAgentOperator

    toolset.hook  # noqa: B018  # a used toolset, with a hook and its lock
    agent = AimlAgentOperator(task_id="agent", prompt="How many users?", tools=[toolset])
    copied = copy.deepcopy(agent).tools[0]
    assert copied is not toolset
    assert (
        repr(copied)
        == repr(toolset)
        == "SqlToolset(conn_id='shop_db', allowed_tables=['users', 'orders'], max_rows=100)"
    )
    assert copied.max_cell_chars == toolset.max_cell_chars
    assert copied.hook is not toolset.hook  # a hook of its own, made when first used


def test_describe_table(toolset: SqlToolset) -> None:
    outcome = asyncio.run(tools_of(toolset)["describe_table"].run('{"table": "users"}'))
    assert result(outcome) == {
        "table": "users",
        "columns": [
            {"name": "id", "type": "INTEGER"},
            {"name": "name", "type": "TEXT"},
            {"name": "bio", "type": "TEXT"},
        ],
    }


def test_describe_table_refuses_other_tables(spied: SqlToolset) -> None:
    outcome = asyncio.run(tools_of(spied)["describe_table"].run('{"table": "secrets"}'))
    assert outcome.error is not None
    assert "'secrets' is not one of the tables you may use: users, orders" in outcome.content
    assert Spy.calls == 0


def test_select_with_where(toolset: SqlToolset) -> None:
    data = result(query(toolset, "SELECT id, name FROM users WHERE id <= 2 ORDER BY id"))
    assert data == {"columns": ["id", "name"], "rows": [[1, "user1"], [2, "user2"]]}


def test_join_and_aggregate(toolset: SqlToolset) -> None:
    sql = (
        "SELECT u.name, SUM(o.amount) AS total FROM users u JOIN orders o ON o.user_id = u.id "
        "GROUP BY u.name ORDER BY total DESC"
    )
    assert result(query(toolset, sql))["rows"] == [["user1", 10.0], ["user2", 4.0]]


def test_cte_and_union(toolset: SqlToolset) -> None:
    sql = "WITH big AS (SELECT user_id FROM orders WHERE amount > 1) SELECT COUNT(*) FROM big"
    assert result(query(toolset, sql))["rows"] == [[2]]
    union = "SELECT id FROM users WHERE id = 1 UNION SELECT id FROM orders WHERE id = 3 ORDER BY 1"
    assert result(query(toolset, union))["rows"] == [[1], [3]]


def test_row_cap_says_truncated_and_limits_the_read(toolset: SqlToolset, db: Path) -> None:
    capped = SqlToolset("shop_db", ["users"], max_rows=5)
    seen = record_sql(capped)
    data = result(query(capped, "SELECT id FROM users ORDER BY id"))
    assert data["rows"] == [[1], [2], [3], [4], [5]]
    assert data["note"].startswith("truncated to 5 rows")
    assert seen == ["SELECT id FROM users ORDER BY id LIMIT 6"]
    # A query's own limit is kept; the cap still applies to what comes back.
    data = result(query(capped, "SELECT id FROM users LIMIT 7"))
    assert len(data["rows"]) == 5
    assert seen[-1] == "SELECT id FROM users LIMIT 7"
    assert "note" not in result(query(capped, "SELECT id FROM users LIMIT 5"))


def test_cells_are_clipped(toolset: SqlToolset) -> None:
    data = result(query(toolset, "SELECT bio FROM users WHERE id = 3"))
    (cell,) = data["rows"][0]
    assert cell.startswith("x" * 50 + "…[clipped, 300 characters]")
    assert len(cell) < 100


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO users VALUES (999, 'x', 'y')", "only SELECT queries may run, and this is a INSERT"),
        ("UPDATE users SET name = 'x'", "only SELECT queries may run"),
        ("DELETE FROM users", "only SELECT queries may run"),
        ("DROP TABLE users", "only SELECT queries may run"),
        ("ATTACH DATABASE '/tmp/other.db' AS other", "only SELECT queries may run"),
        ("PRAGMA table_info(secrets)", "only SELECT queries may run"),
        ("SELECT 1; DROP TABLE users", "send exactly one statement, not 2"),
        ("SELECT * FROM users; SELECT * FROM orders", "send exactly one statement, not 2"),
        ("SELECT * FROM secrets", "the table 'secrets' is not one you may use; the tables are: users, orders"),
        ("SELECT * FROM users WHERE id IN (SELECT k FROM secrets)", "'secrets' is not one you may use"),
        ("SELECT ('root', 'hunter2') IN secrets", "not a table name"),  # SQLite reads the table for this
        ("SELECT 1 FROM users WHERE (name, 1) IN main.secrets", "not a table name"),
        ("WITH s AS (SELECT * FROM secrets) SELECT * FROM s", "'secrets' is not one you may use"),
        ("SELECT * FROM users u JOIN secrets s ON 1 = 1", "'secrets' is not one you may use"),
        ("SELECT * FROM users UNION SELECT k, v, 1 FROM secrets", "'secrets' is not one you may use"),
        ("SELECT * FROM sqlite_master", "'sqlite_master' is not one you may use"),
        ("SELECT * FROM pragma_table_info('secrets')", "pragma_table_info() is not allowed"),
        # A CTE hides a table of its name only inside its own query: the outer `secrets` is the real table.
        (
            "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) AS a, secrets",
            "'secrets' is not one you may use",
        ),
        ("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d", "the query may only read"),
        ("SELECT load_extension('/tmp/evil.so')", "load_extension() is not allowed"),
        ("SELECT readfile('/etc/passwd')", "readfile() is not allowed"),
        ("SELECT name FROM users WHERE id = (SELECT pg_sleep(10))", "pg_sleep() is not allowed"),
        ("SELECT * FROM users WHERE", "does not parse as SQL"),
        ("", "the query is empty"),
    ],
)
def test_refusals_run_nothing(spied: SqlToolset, db: Path, sql: str, reason: str) -> None:
    outcome = query(spied, sql)
    assert outcome.error is not None
    assert outcome.content.startswith("Refused: ")
    assert reason in outcome.content
    assert "\x1b" not in outcome.content  # plain text for the model, no terminal styles
    assert Spy.calls == 0
    with sqlite3.connect(db) as conn:  # and the database is as it was
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (250,)


def test_postgres_dialect_select_into_and_locks_refused(toolset: SqlToolset) -> None:
    for sql in ("SELECT * INTO copy FROM users", "SELECT * FROM users FOR UPDATE"):
        with pytest.raises(Exception, match="may only read"):
            toolset.check(sql)


def test_deny_list_covers_the_documented_functions() -> None:
    assert {"load_extension", "readfile", "pg_read_file", "lo_import", "dblink", "pg_sleep"} <= DENIED_FUNCTIONS


def test_cte_names_are_fine(toolset: SqlToolset) -> None:
    sql = "WITH recent AS (SELECT * FROM orders), rich AS (SELECT * FROM recent WHERE amount > 5) SELECT * FROM rich"
    assert result(query(toolset, sql))["rows"] == [[1, 1, 9.5]]


def test_quoted_and_qualified_names(toolset: SqlToolset) -> None:
    assert result(query(toolset, 'SELECT COUNT(*) FROM "users"'))["rows"] == [[250]]
    assert result(query(toolset, "SELECT COUNT(*) FROM USERS"))["rows"] == [[250]]
    assert query(toolset, "SELECT COUNT(*) FROM main.secrets").error is not None
    assert query(toolset, 'SELECT COUNT(*) FROM "USERS"').error is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allowed_tables": []}, "non-empty list of allowed tables"),
        ({"allowed_tables": "users"}, "non-empty list of allowed tables"),
        ({"allowed_tables": ["users", ""]}, "not a table name"),
        ({"allowed_tables": ["users"], "max_rows": 0}, "max_rows must be a positive integer"),
        ({"allowed_tables": ["users"], "max_rows": -3}, "max_rows must be a positive integer"),
        ({"allowed_tables": ["users"], "max_cell_chars": 0}, "max_cell_chars must be a positive integer"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AimlParameterError, match=message):
        SqlToolset("shop_db", **kwargs)

"""The read-only SQL toolset against a real PostgreSQL server (tests/pg_server.py): what it runs, what it refuses.

One throwaway cluster serves the module. Its database has two tables the toolset may read (``customers``,
``orders``) and one it may not (``secret``); every expected result is computed by running the same SQL through
psycopg2 directly, and after every refusal (and once more at the end) the database is checked to be as it was.
Without PostgreSQL's server binaries the tests fail; ``make test`` installs them (``make postgres-binaries``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_aiml.agents.sql import DENIED_FUNCTIONS, SqlToolset
from tests.pg_server import PostgresServer, PostgresUnavailable, postgres_connection_env
from tests.sql_toolset_helpers import Spy, query, record_sql, result, tools_of
from tests.sql_toolset_helpers import spied as spied_fixture

spied = spied_fixture  # the fixture, over this module's ``toolset``

CONN_ID = "pg_shop"
SCHEMA = """
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    amount numeric(10, 2) NOT NULL,
    placed date NOT NULL
);
CREATE TABLE secret (k text, v text);
INSERT INTO secret VALUES ('root', 'hunter2');
INSERT INTO customers
    SELECT i, 'Customer ' || i, CASE WHEN i % 3 = 0 THEN 'FR' WHEN i % 3 = 1 THEN 'DE' ELSE 'IT' END
    FROM generate_series(1, 40) AS i;
INSERT INTO orders (customer_id, amount, placed)
    SELECT 1 + i % 40, (i * 1.25)::numeric(10, 2), DATE '2026-01-01' + i FROM generate_series(1, 120) AS i;
"""
# What must not change, whatever the toolset is asked: rows, sums, tables, large objects, the sequence.
FINGERPRINT = """
SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT sum(amount) FROM orders),
       (SELECT string_agg(k || '=' || v, ',') FROM secret),
       (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'),
       (SELECT count(*) FROM pg_largeobject_metadata), (SELECT last_value FROM orders_id_seq)
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        pytest.fail(f"these tests need PostgreSQL's server binaries (`make postgres-binaries` installs them): {error}")
    with server:
        server.execute(SCHEMA)
        yield server


@pytest.fixture(scope="module")
def baseline(pg: PostgresServer) -> list[tuple[Any, ...]]:
    """The database's fingerprint before any test asked the toolset anything."""
    return pg.execute(FINGERPRINT)


@pytest.fixture
def pg_env(pg: PostgresServer, baseline: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> PostgresServer:
    # An Airflow connection by URI, as the SQLite tests do: postgresql://user:password@127.0.0.1:port/db.
    for name, value in postgres_connection_env(CONN_ID, pg).items():
        monkeypatch.setenv(name, value)
    return pg


@pytest.fixture
def toolset(pg_env: PostgresServer) -> SqlToolset:
    return SqlToolset(CONN_ID, ["orders", "customers"], max_rows=100, max_cell_chars=50)


def direct(pg: PostgresServer, sql: str) -> list[list[Any]]:
    """The rows of ``sql`` run through psycopg2 itself, as the toolset shows cells (JSON numbers, else text)."""
    return [
        [value if value is None or isinstance(value, bool | int | float) else str(value) for value in row]
        for row in pg.execute(sql)
    ]


def assert_unchanged(pg: PostgresServer, baseline: list[tuple[Any, ...]]) -> None:
    assert pg.execute(FINGERPRINT) == baseline


def test_the_connection_is_postgres_and_so_is_the_dialect(toolset: SqlToolset) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = toolset.hook
    assert isinstance(hook, PostgresHook)
    assert (hook.conn_type, hook.dialect_name) == ("postgres", "postgresql")
    assert toolset.dialect == "postgres"  # sqlglot reads and writes PostgreSQL, not its generic SQL


def test_the_server_wants_the_password(pg: PostgresServer) -> None:
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**{**pg.dsn(), "password": "wrong"}, connect_timeout=5)


def test_describe_table(toolset: SqlToolset) -> None:
    outcome = asyncio.run(tools_of(toolset)["describe_table"].run('{"table": "orders"}'))
    assert result(outcome) == {
        "table": "orders",
        "columns": [
            {"name": "id", "type": "INTEGER"},
            {"name": "customer_id", "type": "INTEGER"},
            {"name": "amount", "type": "NUMERIC(10, 2)"},
            {"name": "placed", "type": "DATE"},
        ],
    }


def test_describe_table_refuses_other_tables(spied: SqlToolset) -> None:
    for table in ("secret", "public.secret", "pg_catalog.pg_authid"):
        outcome = asyncio.run(tools_of(spied)["describe_table"].run(json.dumps({"table": table})))
        assert outcome.error is not None
        assert f"{table!r} is not one of the tables you may use: orders, customers" in outcome.content
    assert Spy.calls == 0


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, name, country FROM customers WHERE id <= 5 ORDER BY id",
        "SELECT id, customer_id, amount, placed FROM orders WHERE placed BETWEEN '2026-02-01' AND '2026-02-05' "
        "ORDER BY id",
        "SELECT country, COUNT(*) AS n FROM customers GROUP BY country ORDER BY country",
    ],
)
def test_allowed_select_returns_the_rows(toolset: SqlToolset, pg: PostgresServer, sql: str) -> None:
    data = result(query(toolset, sql))
    assert data["rows"] == direct(pg, sql)
    assert data["rows"]
    assert "note" not in data


def test_allowed_select_columns_and_cell_types(toolset: SqlToolset) -> None:
    data = result(query(toolset, "SELECT id, amount, placed, amount > 2 AS big FROM orders WHERE id <= 2 ORDER BY id"))
    assert data == {
        "columns": ["id", "amount", "placed", "big"],
        "rows": [[1, "1.25", "2026-01-02", False], [2, "2.50", "2026-01-03", True]],
    }


def test_join_over_allowed_tables(toolset: SqlToolset, pg: PostgresServer) -> None:
    sql = (
        "SELECT c.country, COUNT(o.id) AS orders, SUM(o.amount) AS total FROM customers c "
        "JOIN orders o ON o.customer_id = c.id WHERE o.amount > 10 GROUP BY c.country ORDER BY total DESC"
    )
    data = result(query(toolset, sql))
    assert data["columns"] == ["country", "orders", "total"]
    assert data["rows"] == direct(pg, sql)
    assert len(data["rows"]) == 3


@pytest.mark.parametrize(
    "sql",
    [
        # PostgreSQL's own syntax goes through sqlglot's postgres dialect and comes out as PostgreSQL.
        "SELECT DISTINCT ON (customer_id) customer_id, amount FROM orders ORDER BY customer_id, amount DESC",
        "SELECT country, COUNT(*) FILTER (WHERE id > 20) AS late FROM customers GROUP BY country ORDER BY country",
        "SELECT name FROM customers WHERE name ILIKE 'customer 1%' ORDER BY id",
        "SELECT date_trunc('month', placed)::date AS month, SUM(amount) FROM orders GROUP BY 1 ORDER BY 1",
        "SELECT id, amount, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC) FROM orders "
        "WHERE customer_id = 3 ORDER BY id",
        "WITH big AS (SELECT customer_id FROM orders WHERE amount > 100) SELECT COUNT(DISTINCT customer_id) FROM big",
        "SELECT id FROM customers WHERE id < 3 UNION SELECT id FROM orders WHERE id > 118 ORDER BY 1",
        "SELECT id FROM orders ORDER BY id OFFSET 110",
    ],
)
def test_postgres_syntax_round_trips(toolset: SqlToolset, pg: PostgresServer, sql: str) -> None:
    assert result(query(toolset, sql))["rows"] == direct(pg, sql)


def test_max_rows_truncates_and_limits_the_read(pg_env: PostgresServer) -> None:
    capped = SqlToolset(CONN_ID, ["orders"], max_rows=5)
    seen = record_sql(capped)
    data = result(query(capped, "SELECT id FROM orders ORDER BY id"))
    assert data["rows"] == [[1], [2], [3], [4], [5]]
    assert data["note"].startswith("truncated to 5 rows")
    assert seen == ["SELECT id FROM orders ORDER BY id LIMIT 6"]
    # A query's own limit is kept; the cap still applies to what comes back.
    data = result(query(capped, "SELECT id FROM orders ORDER BY id LIMIT 50"))
    assert len(data["rows"]) == 5
    assert "note" in data
    assert seen[-1] == "SELECT id FROM orders ORDER BY id LIMIT 50"
    assert "note" not in result(query(capped, "SELECT id FROM orders LIMIT 5"))
    assert result(query(capped, "SELECT COUNT(*) FROM orders"))["rows"] == [[120]]


def test_cells_are_clipped(toolset: SqlToolset) -> None:
    (cell,) = result(query(toolset, "SELECT repeat('x', 300) FROM customers WHERE id = 1"))["rows"][0]
    assert cell.startswith("x" * 50 + "…[clipped, 300 characters]")


def test_schema_qualified_allowed_tables(pg_env: PostgresServer) -> None:
    qualified = SqlToolset(CONN_ID, ["public.orders"], max_rows=10)
    assert result(query(qualified, "SELECT COUNT(*) FROM public.orders"))["rows"] == [[120]]
    assert result(query(qualified, 'SELECT COUNT(*) FROM "public"."orders"'))["rows"] == [[120]]
    assert query(qualified, "SELECT COUNT(*) FROM public.secret").error is not None
    described = qualified.describe_table("public.orders")
    assert [column["name"] for column in described["columns"]] == ["id", "customer_id", "amount", "placed"]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        # Tables that are not allowed, however they are named or reached.
        ("SELECT * FROM secret", "the table 'secret' is not one you may use; the tables are: orders, customers"),
        ("SELECT * FROM public.secret", "the table 'public.secret' is not one you may use"),
        ('SELECT * FROM "public"."secret"', "the table 'public.secret' is not one you may use"),
        ("SELECT * FROM aiml.public.secret", "the table 'aiml.public.secret' is not one you may use"),
        ("SELECT * FROM public.orders", "the table 'public.orders' is not one you may use"),
        ('SELECT * FROM "ORDERS"', "the table 'ORDERS' is not one you may use"),
        ("SELECT * FROM ONLY secret", "'secret' is not one you may use"),
        ("TABLE secret", "'secret' is not one you may use"),
        ("SELECT id, amount::text, placed::text, 'x' FROM orders UNION TABLE secret", "'secret' is not one"),
        ("SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM secret)", "'secret' is not one you may use"),
        ("SELECT (SELECT v FROM secret LIMIT 1)", "'secret' is not one you may use"),
        ("SELECT * FROM orders o, LATERAL (SELECT * FROM secret) s", "'secret' is not one you may use"),
        ("WITH s AS (SELECT * FROM secret) SELECT * FROM s", "'secret' is not one you may use"),
        ("SELECT * FROM customers c JOIN secret s ON true", "'secret' is not one you may use"),
        ("SELECT * FROM pg_catalog.pg_authid", "'pg_catalog.pg_authid' is not one you may use"),
        ("SELECT usename, passwd FROM pg_shadow", "'pg_shadow' is not one you may use"),
        ("SELECT * FROM pg_user", "'pg_user' is not one you may use"),
        ("SELECT * FROM pg_stat_activity", "'pg_stat_activity' is not one you may use"),
        ("SELECT name, setting FROM pg_settings", "'pg_settings' is not one you may use"),
        ("SELECT table_name FROM information_schema.tables", "'information_schema.tables' is not one you may use"),
        ("SELECT * FROM information_schema.columns", "'information_schema.columns' is not one you may use"),
        # Table-valued functions.
        ("SELECT * FROM generate_series(1, 3)", "table-valued functions are not allowed"),
        ("SELECT * FROM ROWS FROM (generate_series(1, 3))", "table-valued functions are not allowed"),
        ("SELECT * FROM dblink('dbname=aiml', 'SELECT v FROM secret') AS t(v text)", "dblink() is not allowed"),
        # Anything but a SELECT.
        ("DELETE FROM orders", "only SELECT queries may run, and this is a DELETE"),
        ("UPDATE orders SET amount = 0", "only SELECT queries may run, and this is a UPDATE"),
        ("INSERT INTO orders (customer_id, amount, placed) VALUES (1, 1, now())", "this is a INSERT"),
        ("DROP TABLE orders", "only SELECT queries may run, and this is a DROP"),
        ("TRUNCATE orders", "only SELECT queries may run"),
        ("ALTER TABLE orders ADD COLUMN x int", "only SELECT queries may run"),
        ("CREATE TABLE stolen AS SELECT * FROM orders", "only SELECT queries may run"),
        ("GRANT SELECT ON secret TO PUBLIC", "only SELECT queries may run"),
        ("MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE", "only SELECT"),
        ("COPY orders TO '/tmp/orders.csv'", "only SELECT queries may run"),
        ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/aiml-pwned'", "only SELECT queries may run"),
        ("EXPLAIN ANALYZE DELETE FROM orders", "only SELECT queries may run"),
        ("SET search_path TO pg_catalog", "only SELECT queries may run"),
        ("SET ROLE postgres", "only SELECT queries may run"),
        ("DO $$ BEGIN DELETE FROM orders; END $$", "only SELECT queries may run"),
        ("CALL some_procedure()", "only SELECT queries may run"),
        ("LOCK TABLE orders", "only SELECT queries may run"),
        ("VACUUM orders", "only SELECT queries may run"),
        ("NOTIFY chan", "only SELECT queries may run"),
        ("LISTEN chan", "only SELECT queries may run"),
        ("PREPARE p AS DELETE FROM orders", "only SELECT queries may run"),
        ("EXECUTE p", "only SELECT queries may run"),
        ("REFRESH MATERIALIZED VIEW v", "only SELECT queries may run"),
        ("COMMENT ON TABLE orders IS 'x'", "only SELECT queries may run"),
        ("CHECKPOINT", "only SELECT queries may run"),
        ("DISCARD ALL", "only SELECT queries may run"),
        ("VALUES (1)", "only SELECT queries may run"),
        # More than one statement, however it is hidden.
        ("SELECT 1; DROP TABLE orders", "send exactly one statement, not 2"),
        ("SELECT * FROM orders; SELECT * FROM secret", "send exactly one statement, not 2"),
        ("SELECT 1; COMMIT; DROP TABLE orders", "send exactly one statement, not 3"),
        ("SELECT E'\\''; DROP TABLE orders; --'", "send exactly one statement"),
        # Clauses that write or lock inside a SELECT.
        ("SELECT * INTO stolen FROM orders", "the query may only read, and it contains 'INTO stolen'"),
        ("SELECT * INTO TEMP stolen FROM orders", "the query may only read"),
        ("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", "the query may only read"),
        ("WITH x AS (UPDATE orders SET amount = 0 RETURNING *) SELECT * FROM x", "the query may only read"),
        (
            "WITH x AS (INSERT INTO orders (customer_id, amount, placed) VALUES (1, 1, now()) RETURNING *) "
            "SELECT * FROM x",
            "the query may only read",
        ),
        ("SELECT * FROM orders FOR UPDATE", "the query may only read"),
        ("SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", "the query may only read"),
        ("SELECT * FROM orders FOR SHARE", "the query may only read"),
        ("SELECT * FROM orders FOR KEY SHARE NOWAIT", "the query may only read"),
        ("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o", "may only read"),
        # Functions of the deny list, however they are spelt.
        ("SELECT pg_sleep(10)", "pg_sleep() is not allowed"),
        ("SELECT id FROM orders WHERE id = (SELECT 1 FROM pg_sleep(10))", "pg_sleep"),
        ("SELECT pg_catalog.pg_sleep(10)", "pg_sleep() is not allowed"),
        ('SELECT "pg_sleep"(10)', "pg_sleep() is not allowed"),
        ("SELECT PG_SLEEP_FOR('10 seconds')", "pg_sleep_for() is not allowed"),
        ("SELECT id FROM orders WHERE pg_sleep(1) IS NULL", "pg_sleep() is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not allowed"),
        ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file() is not allowed"),
        ("SELECT pg_ls_dir('.')", "pg_ls_dir() is not allowed"),
        ("SELECT lo_import('/etc/passwd')", "lo_import() is not allowed"),
        ("SELECT lo_export(1, '/tmp/aiml-pwned')", "lo_export() is not allowed"),
        ("SELECT dblink('dbname=aiml', 'SELECT v FROM secret')", "dblink() is not allowed"),
        ("SELECT dblink_exec('dbname=aiml', 'DELETE FROM orders')", "dblink_exec() is not allowed"),
        ("SELECT set_config('search_path', 'pg_catalog', false)", "set_config() is not allowed"),
        ("SELECT nextval('orders_id_seq')", "nextval() is not allowed"),
        ("SELECT setval('orders_id_seq', 1)", "setval() is not allowed"),
        ("SELECT pg_terminate_backend(pid) FROM orders", "pg_terminate_backend() is not allowed"),
        ("SELECT pg_reload_conf()", "pg_reload_conf() is not allowed"),
        ("SELECT query_to_xml('SELECT * FROM secret', true, true, '')", "query_to_xml() is not allowed"),
        ("SELECT table_to_xml('secret', true, true, '')", "table_to_xml() is not allowed"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock() is not allowed"),
        # Not SQL.
        ("SELECT * FROM orders WHERE", "does not parse as SQL"),
        ("   ", "the query is empty"),
    ],
)
def test_refusals_run_nothing(
    spied: SqlToolset, pg: PostgresServer, baseline: list[tuple[Any, ...]], sql: str, reason: str
) -> None:
    outcome = query(spied, sql)
    assert outcome.error is not None
    assert outcome.content.startswith("Refused: ")
    assert reason in outcome.content
    assert Spy.calls == 0
    assert_unchanged(pg, baseline)  # and the database is as it was


@pytest.mark.parametrize("name", sorted(DENIED_FUNCTIONS))
def test_every_denied_function_is_refused_in_the_postgres_dialect(spied: SqlToolset, name: str) -> None:
    # sqlglot turns some names into typed functions: each must still be seen under its PostgreSQL name.
    outcome = query(spied, f"SELECT id FROM orders WHERE {name}(1) IS NOT NULL")
    assert outcome.error is not None
    assert f"{name}() is not allowed" in outcome.content
    assert Spy.calls == 0


@pytest.mark.parametrize(
    "sql",
    [
        # sqlglot renders comments as /* ... */ and defuses a */ inside them, so PostgreSQL sees one statement.
        "SELECT COUNT(*) FROM orders -- */; DROP TABLE orders; --",
        "SELECT COUNT(*) FROM orders /* a /* nested */ ; DROP TABLE orders; -- */",
        # Dollar quotes are strings, whatever they hold.
        "SELECT COUNT(*), $$;DROP TABLE orders;$$ FROM orders",
        "SELECT COUNT(*), $q$ '; DROP TABLE orders; -- $q$ FROM orders",
    ],
)
def test_hidden_statements_stay_text(
    toolset: SqlToolset, pg: PostgresServer, baseline: list[tuple[Any, ...]], sql: str
) -> None:
    assert result(query(toolset, sql))["rows"][0][0] == 120
    assert_unchanged(pg, baseline)


def test_the_database_is_unchanged_after_everything(pg: PostgresServer, baseline: list[tuple[Any, ...]]) -> None:
    assert_unchanged(pg, baseline)
    assert direct(pg, "SELECT k, v FROM secret") == [["root", "hunter2"]]
    assert direct(pg, "SELECT to_regclass('public.stolen')") == [[None]]


# PostgreSQL functions that read tables that are not allowed (SQL or table names given as text, whole-schema
# dumps) or change the server's state (large objects created and committed, statistics reset, notifications
# sent, locks taken): each ran through run_query on PostgreSQL 15 before unknown functions were refused.
@pytest.mark.parametrize(
    "sql",
    [
        # Reads of tables that are not allowed.
        "SELECT database_to_xml(true, true, '')",
        "SELECT database_to_xml_and_xmlschema(true, true, '')",
        "SELECT schema_to_xml('public', true, true, '')",
        "SELECT schema_to_xml_and_xmlschema('public', true, true, '')",
        "SELECT table_to_xml_and_xmlschema('secret', true, true, '')",
        "SELECT query_to_xml_and_xmlschema('SELECT * FROM secret', true, true, '')",
        "SELECT ts_stat('SELECT to_tsvector(v) FROM secret')",
        "SELECT ts_rewrite('a'::tsquery, 'SELECT v::tsquery, v::tsquery FROM secret')",
        "SELECT lo_get(1)",
        "SELECT pg_stat_get_activity(NULL)",
        # Writes and other side effects.
        "SELECT lo_from_bytea(0, 'x')",
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        "SELECT lo_unlink(1)",
        "SELECT lo_put(1, 0, 'x')",
        "SELECT pg_import_system_collations('pg_catalog')",
        "SELECT pg_logical_emit_message(true, 'x', 'y')",
        "SELECT pg_stat_reset()",
        "SELECT pg_notify('chan', 'x')",
        "SELECT pg_try_advisory_lock(1)",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_advisory_lock_shared(1)",
        "SELECT pg_create_physical_replication_slot('aiml')",
        "SELECT pg_ls_waldir()",
        "SELECT dblink_connect('x', 'dbname=aiml')",
        "SELECT dblink_send_query('x', 'DELETE FROM orders')",
    ],
)
def test_postgres_side_effect_and_exfiltration_functions_are_refused(
    spied: SqlToolset, pg: PostgresServer, baseline: list[tuple[Any, ...]], sql: str
) -> None:
    outcome = query(spied, sql)
    assert outcome.error is not None
    assert "is not allowed" in outcome.content
    assert Spy.calls == 0
    assert_unchanged(pg, baseline)

"""A read-only SQL toolset over any common-sql connection: list the allowed tables, describe one, query them.

Every query the model writes is parsed with sqlglot before anything runs, and refused unless it is exactly one
``SELECT`` (``WITH ... SELECT`` and ``UNION``/``INTERSECT``/``EXCEPT`` of selects included) that reads only the
allowed tables (in subqueries, CTE bodies and joins too; CTE names are fine), with no data-changing clause
(``SELECT ... INTO``, ``FOR UPDATE``, a ``DELETE`` inside a CTE), no table-valued function and no function of
:data:`DENIED_FUNCTIONS`. The statement that runs is sqlglot's rendering of the checked tree, with
``LIMIT max_rows + 1`` added when it has no limit, so a huge table is never read whole.

The hook is made on first use (never at import or construction), through ``BaseHook.get_connection(conn_id)``.
Use a database login that can only read, all the same: the parser is a second line of defence, not the first.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_aiml.agents.tools import Tool, ToolRefusal, make_tool
from airflow_provider_aiml.exceptions import AimlConfigurationError, AimlParameterError

if TYPE_CHECKING:
    from sqlglot import exp

DENIED_FUNCTIONS = frozenset(
    {
        # SQLite: load native code, read or write files.
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        # PostgreSQL: files, large objects, other databases, sleeping, server state, sequences, SQL-in-a-string.
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "dblink",
        "dblink_exec",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "set_config",
        "nextval",
        "setval",
        "query_to_xml",
        "cursor_to_xml",
        "table_to_xml",
        "pg_advisory_lock",
        # MySQL and SQL Server: files, sleeping, other servers.
        "load_file",
        "sleep",
        "benchmark",
        "get_lock",
        "openrowset",
        "opendatasource",
        "openquery",
        "xp_cmdshell",
    }
)
"""Functions refused anywhere in a query: they have side effects, read files, sleep or run SQL given as text."""

DENIED_PREFIXES = (
    "lo_",  # PostgreSQL large objects: create, write, read by id
    "dblink",
    "pg_advisory",
    "pg_try_advisory",
    "pg_stat_reset",
    "pg_ls_",
    "pg_file_",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_logical_",
    "pg_import_",
)
"""Families of functions refused like :data:`DENIED_FUNCTIONS`, whatever their full name."""

KNOWN_READ_ONLY_FUNCTIONS = frozenset(
    {
        # Common functions sqlglot parses as names only (it has no expression of its own for them).
        "age",
        "julianday",
        "datetime",
        "printf",
        "total",
        "to_char",
        "date_part",
        "format",
    }
)
"""Functions allowed although sqlglot does not know them. Any other function sqlglot does not know (such as
PostgreSQL's ``database_to_xml`` or ``pg_notify``) is refused unless the toolset's ``allowed_functions``
names it: only functions known to be read-only may run."""

_TERMINAL_STYLES = re.compile(r"\x1b\[[0-9;]*m")

# SQLAlchemy dialect names (a hook's ``dialect_name``) or connection types, as sqlglot calls them.
_DIALECTS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mssql": "tsql",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "gcpbigquery": "bigquery",
    "trino": "trino",
    "presto": "presto",
    "duckdb": "duckdb",
    "redshift": "redshift",
    "databricks": "databricks",
    "hive": "hive",
    "spark": "spark",
    "clickhouse": "clickhouse",
    "teradata": "teradata",
}


class SqlToolset:
    """Three read-only tools over one SQL connection: ``list_tables``, ``describe_table`` and ``run_query``.

    :param conn_id: an Airflow connection whose hook is a common-sql ``DbApiHook`` (SQLite, Postgres, ...).
    :param allowed_tables: the only tables the model may see or read (``table`` or ``schema.table``,
        matched case-insensitively; a quoted name must match exactly or in lower case).
    :param max_rows: the most rows a query returns to the model.
    :param max_cell_chars: longer cell values are clipped to this many characters.
    :param allowed_functions: functions of your database that sqlglot does not know and that you know to be
        read-only, to allow beside the standard ones (:data:`KNOWN_READ_ONLY_FUNCTIONS`); the denied ones stay
        denied.
    """

    def __init__(
        self,
        conn_id: str,
        allowed_tables: Sequence[str],
        max_rows: int = 100,
        max_cell_chars: int = 500,
        allowed_functions: Sequence[str] = (),
    ) -> None:
        if not isinstance(conn_id, str) or not conn_id:
            raise AimlParameterError(f"SqlToolset needs a connection id, got {conn_id!r}")
        if isinstance(allowed_tables, str) or not allowed_tables:
            raise AimlParameterError(
                f"SqlToolset needs a non-empty list of allowed tables, got {allowed_tables!r}; the model can read "
                "only the tables listed"
            )
        for name in allowed_tables:
            if not isinstance(name, str) or not name.strip():
                raise AimlParameterError(f"allowed_tables holds {name!r}, not a table name")
        for label, value in (("max_rows", max_rows), ("max_cell_chars", max_cell_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AimlParameterError(f"SqlToolset {label} must be a positive integer, got {value!r}")
        if isinstance(allowed_functions, str) or not all(isinstance(name, str) for name in allowed_functions):
            raise AimlParameterError(f"allowed_functions must be a list of function names, got {allowed_functions!r}")
        self.conn_id = conn_id
        self.allowed_tables = [name.strip() for name in allowed_tables]
        self.allowed_functions = [name.strip().lower() for name in allowed_functions]
        self.max_rows = max_rows
        self.max_cell_chars = max_cell_chars
        self._allowed = {tuple(part.lower() for part in name.split(".")) for name in self.allowed_tables}
        self._hook: Any = None
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> SqlToolset:
        """A copy with the same settings and no hook yet (Airflow deep-copies tasks, e.g. for a DAG subset)."""
        return SqlToolset(
            self.conn_id, list(self.allowed_tables), self.max_rows, self.max_cell_chars, list(self.allowed_functions)
        )

    def __repr__(self) -> str:
        return f"SqlToolset(conn_id={self.conn_id!r}, allowed_tables={self.allowed_tables!r}, max_rows={self.max_rows})"

    # --- the tools ------------------------------------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """The toolset's three tools."""
        return [
            _read_only(make_tool(self.list_tables)),
            _read_only(make_tool(self.describe_table)),
            _read_only(make_tool(self.run_query)),
        ]

    def list_tables(self) -> list[str]:
        """List the tables you may query."""
        return list(self.allowed_tables)

    def describe_table(self, table: str) -> dict[str, Any]:
        """Describe a table's columns and their types.

        :param table: one of the tables list_tables returns.
        """
        if not self._is_allowed_name(table):
            raise ToolRefusal(f"{table!r} is not one of the tables you may use: {', '.join(self.allowed_tables)}")
        hook = self.hook
        schema, _, name = table.strip().rpartition(".")
        try:
            columns = [
                {"name": column["name"], "type": str(column["type"])}
                for column in hook.inspector.get_columns(name, schema=schema or None)
            ]
        except Exception:
            columns = []
        if not columns:  # no SQLAlchemy inspector for this database: the names from an empty result
            sql = self._render(_limited(self._parse(f"SELECT * FROM {table}"), 0))
            description, _ = self._fetch(sql, 0)
            columns = [{"name": column[0], "type": _type_name(column[1])} for column in description]
        return {"table": table, "columns": columns}

    def run_query(self, sql: str) -> str:
        """Run one read-only SELECT over the allowed tables and return its columns and rows as JSON.

        :param sql: a single SELECT statement (WITH and UNION are fine); rows beyond the cap are not returned.
        """
        statement = self.check(sql)
        if statement.args.get("limit") is None:
            statement = _limited(statement, self.max_rows + 1)
        description, rows = self._fetch(self._render(statement), self.max_rows + 1)
        columns = [column[0] for column in description]
        truncated = len(rows) > self.max_rows
        result: dict[str, Any] = {
            "columns": columns,
            "rows": [[self._cell(value) for value in row] for row in rows[: self.max_rows]],
        }
        if truncated:
            result["note"] = f"truncated to {self.max_rows} rows; aggregate or filter to see the rest"
        return json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str)

    def _fetch(self, sql: str, rows: int) -> tuple[Sequence[Any], list[Any]]:
        """The result's column descriptions and at most ``rows`` rows, both read from this query's own cursor
        (the hook's ``last_description`` is shared by queries running at once)."""
        described: list[Sequence[Any]] = []

        def handler(cursor: Any) -> list[Any]:
            described.append(cursor.description or ())
            return list(cursor.fetchmany(rows)) if rows else []

        fetched = self.hook.run(sql, handler=handler) or []
        return (described[0] if described else ()), list(fetched)

    # --- checks ---------------------------------------------------------------------------------------------

    def check(self, sql: str) -> exp.Expression:
        """The parsed statement if ``sql`` is a read-only query of the allowed tables; else :class:`ToolRefusal`."""
        from sqlglot import exp
        from sqlglot.optimizer.scope import traverse_scope

        statement = self._parse(sql)
        if not isinstance(statement, exp.Select | exp.SetOperation):
            raise ToolRefusal(f"only SELECT queries may run, and this is a {type(statement).__name__.upper()}")
        for node in statement.walk():
            if isinstance(node, exp.DML | exp.DDL | exp.Command | exp.Into | exp.Lock | exp.Pragma):
                raise ToolRefusal(f"the query may only read, and it contains {node.sql(dialect=self.dialect)[:80]!r}")
            if isinstance(node, exp.Func):
                self._check_function(node)
            if isinstance(node, exp.In) and node.args.get("field") is not None:  # SQLite's `x IN some_table`
                shown = node.sql(dialect=self.dialect)[:80]
                raise ToolRefusal(f"`IN` must be followed by a list or a subquery, not a table name: {shown!r}")
        try:
            scopes = traverse_scope(statement)
        except Exception as error:
            raise ToolRefusal(f"the query could not be analysed ({error}); write a simpler SELECT") from None
        cte_refs = {
            id(table)
            for scope in scopes
            for table in scope.tables
            if not table.args.get("db") and not table.args.get("catalog") and table.name in scope.cte_sources
        }
        for table in statement.find_all(exp.Table):
            if id(table) in cte_refs:
                continue
            if not isinstance(table.this, exp.Identifier):
                raise ToolRefusal(f"table-valued functions are not allowed: {table.sql()[:80]!r}")
            if not self._is_allowed_table(table):
                shown = ".".join(part.name for part in table.parts)
                raise ToolRefusal(
                    f"the table {shown!r} is not one you may use; the tables are: {', '.join(self.allowed_tables)}"
                )
        return statement

    def _check_function(self, node: exp.Func) -> None:
        from sqlglot import exp

        unknown = isinstance(node, exp.Anonymous)
        name = (node.name if unknown else node.sql_name()).lower()
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            raise ToolRefusal(f"the function {name}() is not allowed (it has side effects or reads files)")
        if unknown and name not in KNOWN_READ_ONLY_FUNCTIONS and name not in self.allowed_functions:
            raise ToolRefusal(
                f"the function {name}() is not allowed: only functions known to be read-only may run; use "
                "standard SQL functions instead"
            )

    def _parse(self, sql: str) -> exp.Expression:
        import sqlglot

        if not isinstance(sql, str) or not sql.strip():
            raise ToolRefusal("the query is empty")
        try:
            statements: list[Any] = [each for each in sqlglot.parse(sql, read=self.dialect) if each is not None]
        except Exception as error:
            plain = _TERMINAL_STYLES.sub("", str(error))  # sqlglot underlines the culprit for terminals
            raise ToolRefusal(f"the query does not parse as SQL: {plain[:300]}") from None
        if len(statements) != 1:
            raise ToolRefusal(f"send exactly one statement, not {len(statements)}")
        return statements[0]

    def _is_allowed_table(self, table: exp.Table) -> bool:
        parts = [part for part in (table.args.get("catalog"), table.args.get("db"), table.this) if part]
        lowered = tuple(part.name.lower() for part in parts)
        if lowered not in self._allowed:
            return False
        # A quoted name is case-sensitive in most databases: it must be the allowed name as folded (lower case).
        return all(not part.args.get("quoted") or part.name == part.name.lower() for part in parts) or any(
            tuple(part.name for part in parts) == tuple(name.split(".")) for name in self.allowed_tables
        )

    def _is_allowed_name(self, table: Any) -> bool:
        return isinstance(table, str) and tuple(table.strip().lower().split(".")) in self._allowed

    def _render(self, statement: exp.Expression) -> str:
        return statement.sql(dialect=self.dialect)

    def _cell(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return f"<{len(bytes(value)):,} bytes>"
        text = value if isinstance(value, str) else str(value)
        if len(text) > self.max_cell_chars:
            return f"{text[: self.max_cell_chars]}…[clipped, {len(text):,} characters]"
        return text

    # --- the connection -------------------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The connection's ``DbApiHook``, made on first use and kept."""
        with self._lock:
            if self._hook is None:
                from airflow.providers.common.sql.hooks.sql import DbApiHook
                from airflow.sdk import BaseHook

                hook = BaseHook.get_connection(self.conn_id).get_hook()
                if not isinstance(hook, DbApiHook):
                    raise AimlConfigurationError(
                        f"connection {self.conn_id!r} gives a {type(hook).__name__}, not a SQL (DbApiHook) hook"
                    )
                self._hook = hook
            return self._hook

    @property
    def dialect(self) -> str | None:
        """sqlglot's name for the connection's SQL dialect, or ``None`` (its generic SQL) when it has none."""
        hook = self.hook
        for candidate in (getattr(hook, "dialect_name", None), getattr(hook, "conn_type", None)):
            if isinstance(candidate, str) and candidate.lower() in _DIALECTS:
                return _DIALECTS[candidate.lower()]
        return None


def _read_only(tool: Tool) -> Tool:
    return Tool(tool.name, tool.description, tool.parameters, tool.function, side_effects=False)


def _limited(statement: Any, rows: int) -> exp.Expression:
    return statement.limit(rows)


def _type_name(type_code: Any) -> str:
    if type_code is None:
        return "unknown"
    return getattr(type_code, "__name__", None) or str(type_code)

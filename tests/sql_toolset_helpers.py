"""What the SQL toolset tests (SQLite and PostgreSQL) share: running a tool as the agent does, a spy that fails
the test when a refused statement touches the database, and a record of the SQL the hook ran."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_aiml.agents import Tool, ToolOutcome, as_tools
from airflow_provider_aiml.agents.sql import SqlToolset


def tools_of(toolset: SqlToolset) -> dict[str, Tool]:
    return {t.name: t for t in as_tools([toolset])}


def query(toolset: SqlToolset, sql: str) -> ToolOutcome:
    """``run_query`` called with ``sql`` as the model would call it."""
    return asyncio.run(tools_of(toolset)["run_query"].run(json.dumps({"sql": sql})))


def result(outcome: ToolOutcome) -> dict[str, Any]:
    """A successful outcome's JSON."""
    assert outcome.error is None, outcome.content
    data: dict[str, Any] = json.loads(outcome.content)
    return data


def record_sql(toolset: SqlToolset) -> list[str]:
    """The statements the toolset's hook runs from now on, as sent to the database."""
    seen: list[str] = []
    hook = toolset.hook
    original = hook.run

    def recording(sql: str, **kwargs: Any) -> Any:
        seen.append(sql)
        return original(sql, **kwargs)

    hook.run = recording
    return seen


class Spy:
    """Stands in for the hook's connection and runner: any use is a test failure."""

    calls = 0

    def __call__(self, *args: object, **kwargs: object) -> None:
        Spy.calls += 1
        raise AssertionError("the database was touched")


@pytest.fixture
def spied(toolset: SqlToolset, monkeypatch: pytest.MonkeyPatch) -> SqlToolset:
    """The module's ``toolset`` with every way of reaching its database replaced by a :class:`Spy`."""
    Spy.calls = 0
    hook = toolset.hook
    for method in ("run", "get_conn", "get_records", "get_first", "get_cursor"):
        monkeypatch.setattr(hook, method, Spy())
    return toolset

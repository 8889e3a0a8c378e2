"""A stand-in for a SQL toolset's database hook: any use of it fails the test (the SQL toolset tests use it to
prove a refused statement touched nothing)."""

from __future__ import annotations

import pytest

from airflow_provider_aiml.agents.sql import SqlToolset


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

"""Fixtures of the unit tests: the stores of the connection-wide limits, on a real Redis server and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.limits.local import LocalLimitStore
from airflow_provider_aiml.limits.redis import RedisLimitStore
from tests.redis_server import RedisServer, redis_connection_env


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway ``redis-server`` on 127.0.0.1 for the module's tests (stopped by its PID after them)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["local", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Each limits store, empty: a SQLite file of the test's own, or the module's Redis server flushed."""
    if store_kind == "local":
        made: Any = LocalLimitStore(tmp_path / "limits.sqlite")
    else:
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        for name, value in redis_connection_env("redis_limits", server).items():
            monkeypatch.setenv(name, value)
        made = RedisLimitStore("redis_limits")
    yield made
    made.close()


@pytest.fixture(autouse=True)
def _catalog_off_unless_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests mock the API with respx, request by request: the model catalog is read only by the tests marked
    ``@pytest.mark.catalog`` (the others get the built-in profile, as a connection with ``catalog_checks``
    off does), so their request counts stay theirs."""
    if request.node.get_closest_marker("catalog") is not None:
        return
    from airflow_provider_aiml.catalog.profile import ModelProfile
    from airflow_provider_aiml.hooks.catalog import CatalogReader

    def built_in(self: CatalogReader, model: str) -> ModelProfile:
        return ModelProfile.build(model)

    async def abuilt_in(self: CatalogReader, model: str) -> ModelProfile:
        return ModelProfile.build(model)

    monkeypatch.setattr(CatalogReader, "profile", built_in)
    monkeypatch.setattr(CatalogReader, "aprofile", abuilt_in)

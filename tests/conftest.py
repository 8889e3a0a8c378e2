"""Test set-up: an isolated Airflow home and a fake key, set before anything imports Airflow."""

from __future__ import annotations

import pytest

from tests.airflow_env import DAGS_FOLDER  # importing it sets up Airflow's environment first

pytest_plugins = ["airflow_provider_aiml.testing.pytest_plugin", "tests.secret_scan"]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata database, created once for the tests that run DAGs."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None) -> object:
    """Every DAG of the dags folder, parsed once; a file that fails to import fails the tests that use it."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry waits instead of sleeping through them."""
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    waits: list[float] = []

    def _sleep(self: object, seconds: float) -> None:
        waits.append(seconds)

    async def _async_sleep(self: object, seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(AimlApiHook, "_sleep", _sleep)
    monkeypatch.setattr(AimlApiHook, "_async_sleep", _async_sleep)
    return waits


@pytest.fixture
def retry_waits(_no_backoff_sleep: list[float]) -> list[float]:
    """The waits the hook would have slept before each retry."""
    return _no_backoff_sleep


@pytest.fixture(autouse=True)
def _fresh_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test reads the model catalog afresh: an empty process cache and a disk cache of its own."""
    from airflow_provider_aiml.catalog.cache import reset_catalog_caches
    from airflow_provider_aiml.hooks import catalog as hook_catalog

    reset_catalog_caches()
    hook_catalog.forget_logged()
    disk = str(tmp_path_factory.mktemp("aiml-catalog"))
    monkeypatch.setattr(hook_catalog, "default_cache_dir", lambda: disk)

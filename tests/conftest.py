"""Test set-up: an isolated Airflow home and a fake key, set before anything imports Airflow."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

TEST_API_KEY = "sk-test-secret-4f9a2c71e8"
TEST_BASE_URL = "https://api.test.invalid/v1"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"
DOCS_DAGS = REPO / "docs" / "snippets" / "dags"  # the DAGs the docs pages include their samples from

# dag.test() only runs DAGs from files in the dags-folder bundle: it holds the example, test and docs DAGs.
_HOME = Path(tempfile.mkdtemp(prefix="aiml-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
shutil.copytree(EXAMPLE_DAGS, DAGS_FOLDER, ignore=shutil.ignore_patterns("__pycache__"))
shutil.copytree(TEST_DAGS, DAGS_FOLDER, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
shutil.copytree(DOCS_DAGS, DAGS_FOLDER, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW_CONN_AIML_DEFAULT": json.dumps(
            {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL, "extra": {"max_retries": 2}}
        ),
    }
)
os.environ.pop("AIMLAPI_API_KEY", None)

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

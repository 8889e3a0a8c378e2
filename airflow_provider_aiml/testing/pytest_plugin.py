"""pytest fixtures for testing DAGs offline against the emulator.

Enable with ``pytest_plugins = ["airflow_provider_aiml.testing.pytest_plugin"]`` in a top-level conftest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_aiml.testing.emulator import AimlApiEmulator

EMULATOR_API_KEY = "sk-emulator-test-key"
CONNECTION_ENV = "AIRFLOW_CONN_AIML_DEFAULT"


@pytest.fixture
def aiml_emulator() -> Iterator[AimlApiEmulator]:
    """A started emulator (any non-empty API key accepted), stopped after the test."""
    with AimlApiEmulator() as emulator:
        yield emulator


@pytest.fixture
def aiml_connection(aiml_emulator: AimlApiEmulator, monkeypatch: pytest.MonkeyPatch) -> AimlApiEmulator:
    """Point the ``aiml_default`` Airflow connection at ``aiml_emulator`` (via env); returns the emulator."""
    # --8<-- [start:connection]
    connection = {
        "conn_type": "aimlapi",
        "password": EMULATOR_API_KEY,
        "host": aiml_emulator.base_url,
        "extra": {"timeout": 10, "max_retries": 2},
    }
    # --8<-- [end:connection]
    monkeypatch.setenv(CONNECTION_ENV, json.dumps(connection))
    return aiml_emulator

"""The test run's Airflow: an isolated home with the example, test and docs DAGs, and a fake key.

Imported by tests/conftest.py before anything imports Airflow, and by test modules for the constants; as a
module of the ``tests`` package it runs once per process, however it is imported.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

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

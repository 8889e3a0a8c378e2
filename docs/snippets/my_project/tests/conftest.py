import os
import shutil
import tempfile
from pathlib import Path

# Set before anything imports Airflow.
_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
shutil.copytree(Path(__file__).resolve().parents[1] / "dags", DAGS_FOLDER)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
    }
)

import pytest  # noqa: E402

pytest_plugins = ["airflow_provider_aiml.testing.pytest_plugin"]


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.resetdb()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag

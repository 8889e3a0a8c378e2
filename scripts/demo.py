"""`make demo`: run the summarization example DAG through Airflow and print what came back through XCom.

Without ``AIMLAPI_API_KEY`` the DAG talks to the project's emulator on 127.0.0.1; with it, to the real
AI/ML API (``AIMLAPI_BASE_URL`` overrides the base URL). The Airflow home is ``.airflow-demo/`` in the repo,
reset on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".airflow-demo"
DAG_ID = "example_aiml_summarize"


def main() -> int:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir()
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    api_key = os.environ.get("AIMLAPI_API_KEY", "").strip()
    emulator = None
    if api_key:
        base_url = os.environ.get("AIMLAPI_BASE_URL", "https://api.aimlapi.com/v1")
        target = f"the real AI/ML API at {base_url}"
    else:
        from airflow_provider_aiml.testing import AimlApiEmulator

        emulator = AimlApiEmulator(latency=0.5, chunk_delay=0.02).start()
        api_key, base_url = "sk-demo-emulator-key", emulator.base_url
        target = f"the AI/ML API emulator at {base_url} (set AIMLAPI_API_KEY to use the real API)"
    os.environ["AIRFLOW_CONN_AIML_DEFAULT"] = json.dumps(
        {"conn_type": "aimlapi", "password": api_key, "host": base_url}
    )

    banner(f"Running DAG {DAG_ID} against {target}")
    try:
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        db.resetdb()
        bag = DagBag(dag_folder=str(REPO / "example_dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag_run = bag.dags[DAG_ID].test()
        return report(dag_run)
    finally:
        if emulator is not None:
            emulator.stop()


def report(dag_run: object) -> int:
    ti = dag_run.get_task_instance("summarize")  # type: ignore[attr-defined]
    values = {key: ti.xcom_pull(task_ids="summarize", key=key) for key in ("content", "reasoning", "usage", "response")}
    banner(f"DAG run {dag_run.run_id}: {dag_run.state}")  # type: ignore[attr-defined]
    if dag_run.state != "success":  # type: ignore[attr-defined]
        print("The run failed; the task log above says why.")
        return 1
    print("content (XCom 'content'):")
    print(textwrap.indent(textwrap.fill(values["content"], 100), "    "))
    print("\nreasoning (XCom 'reasoning'):")
    reasoning = values["reasoning"] or "(the model returned no reasoning)"
    print(textwrap.indent(textwrap.fill(textwrap.shorten(reasoning, 1200), 100), "    "))
    print("\nusage (XCom 'usage'):")
    print(textwrap.indent(json.dumps(values["usage"], indent=2), "    "))
    print("\nresponse (XCom 'response'):")
    print(textwrap.indent(json.dumps(values["response"], indent=2), "    "))
    return 0


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

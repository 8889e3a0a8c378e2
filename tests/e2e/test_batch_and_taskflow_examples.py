"""The example DAGs of the batch, typed-output, TaskFlow and deferrable features, run against the emulator."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.e2e.test_operator_dags import run, xcom, xcoms


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def test_batch_enrichment_example_labels_every_ticket_in_one_task(dagbag, emulator, tmp_path):
    dag_run = run(dagbag, "example_aiml_batch_enrichment", run_conf={"records": 300, "checkpoint_dir": str(tmp_path)})

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 300
    assert emulator.max_in_flight <= 16
    results = xcom(dag_run, "return_value", "label_tickets")
    assert len(results) == 300
    assert all(
        item["parsed"]["category"] in {"delivery", "quality", "praise", "usability", "other"} for item in results
    )
    assert xcom(dag_run, "labels", "summarize_labels") is not None
    assert sum(xcom(dag_run, "labels", "summarize_labels").values()) == 300
    checkpoints = list(tmp_path.rglob("*.jsonl"))
    assert len(checkpoints) == 1
    assert len(checkpoints[0].read_text().splitlines()) == 300

    rerun = run(dagbag, "example_aiml_batch_enrichment", run_conf={"records": 300, "checkpoint_dir": str(tmp_path)})
    assert rerun.state == "success"
    assert len(emulator.chat_requests) == 600  # a new run id: a new checkpoint, so every record is asked again


def test_typed_extraction_example_validates_into_the_model(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_typed_extraction")

    assert dag_run.state == "success"
    parsed = xcom(dag_run, "parsed", "extract_request")
    assert set(parsed) == {"customer_name", "order_number", "delivered_on", "problem", "wants"}
    schema = emulator.chat_requests[-1].json["response_format"]["json_schema"]
    assert schema["name"] == "SupportRequest"
    assert schema["strict"] is True
    assert xcom(dag_run, "return_value", "route_request") in {"replacements", "general"}
    assert json.loads(xcom(dag_run, "content", "extract_request")).keys() == parsed.keys()


def test_taskflow_example_maps_task_aiml_and_joins_the_answers(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_taskflow")

    assert dag_run.state == "success"
    notes = xcoms(dag_run, "return_value", "release_note")
    assert len(notes) == 3
    published = xcom(dag_run, "return_value", "publish")
    assert all(f"- {note}" in published for note in notes)
    assert published.endswith(" tokens)")


def test_deferrable_example_summarizes_through_the_triggerer(dagbag, emulator, capsys):
    dag_run = run(dagbag, "example_aiml_deferrable")

    assert dag_run.state == "success"
    assert "Deferring the AI/ML API call" in capsys.readouterr().out
    assert xcom(dag_run, "content", "summarize_report")
    assert xcom(dag_run, "usage", "summarize_report")["reasoning_tokens"] > 0

"""Typed output (``output_type``) and deferrable mode, run as real DAGs through ``dag.test()``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL
from tests.e2e.test_operator_dags import run, sent, xcom

INVOICE_ANSWER = {"vendor": "ACME", "total": 12.5, "currency": "EUR"}


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def completion(content: str, tokens: int = 10) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-x",
            "model": "qwen3-vl-32b-thinking",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": 2 * tokens},
        },
    )


# --- output_type --------------------------------------------------------------------------------------------


def test_output_type_sends_a_strict_schema_and_pushes_the_validated_object(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_output_type")

    assert dag_run.state == "success"
    response_format = sent(emulator)["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert spec["name"] == "Invoice"
    assert spec["strict"] is True
    assert spec["description"] == "An invoice's key fields."
    assert spec["schema"]["additionalProperties"] is False
    assert set(spec["schema"]["required"]) == {"vendor", "total", "currency"}
    parsed = xcom(dag_run, "parsed")
    assert set(parsed) == {"vendor", "total", "currency"}
    assert parsed == json.loads(xcom(dag_run, "content"))


def test_an_invalid_answer_is_reasked_with_the_validation_error(dagbag, airflow_db):
    with respx.mock(assert_all_called=False) as api:
        route = api.post(f"{TEST_BASE_URL}/chat/completions").mock(
            side_effect=[completion('{"vendor": "ACME", "total": -3}'), completion(json.dumps(INVOICE_ANSWER))]
        )
        dag_run = run(dagbag, "aiml_test_output_type")

    assert dag_run.state == "success"
    assert route.call_count == 2
    follow_up = json.loads(route.calls[1].request.content)["messages"]
    assert follow_up[-2] == {"role": "assistant", "content": '{"vendor": "ACME", "total": -3}'}
    assert "total: Input should be greater than or equal to 0" in follow_up[-1]["content"]
    assert "currency: Field required" in follow_up[-1]["content"]
    assert xcom(dag_run, "parsed") == INVOICE_ANSWER
    assert xcom(dag_run, "usage")["total_tokens"] == 40  # both billed calls are counted
    assert route.calls[0].request.headers["authorization"] == f"Bearer {TEST_API_KEY}"


def test_validation_retries_exhausted_fail_the_task_and_keep_the_raw_answer(dagbag, emulator, capsys):
    emulator.set_reply(content='{"vendor": "ACME"}')
    dag_run = run(dagbag, "aiml_test_output_type")

    assert dag_run.state == "failed"
    assert len(emulator.chat_requests) == 2  # the first answer + max_validation_retries=1
    assert xcom(dag_run, "content") == '{"vendor": "ACME"}'
    assert xcom(dag_run, "parsed") is None
    assert "The answer does not match Invoice" in capsys.readouterr().out


# --- deferrable ---------------------------------------------------------------------------------------------


def test_deferrable_run_pushes_the_same_values_as_a_direct_call(dagbag, emulator, capsys):
    direct = run(dagbag, "aiml_test_no_stream")
    deferred = run(dagbag, "aiml_test_deferrable")
    out = capsys.readouterr().out

    assert deferred.state == "success"
    assert "Deferring the AI/ML API call" in out
    for key in ("return_value", "content", "reasoning", "usage"):
        assert xcom(deferred, key) == xcom(direct, key)
    response = xcom(deferred, "response")
    assert response["client_request_id"] == emulator.chat_requests[-1].client_request_id
    assert response["client_request_id"].startswith("aiml_test_deferrable:chat:")


@pytest.mark.parametrize(("setting", "defers"), [("True", True), ("False", False)])
def test_default_deferrable_decides_when_the_task_runs(dagbag, emulator, capsys, monkeypatch, setting, defers):
    # The DAG was parsed (the dagbag fixture) before the setting changes: the worker's setting at run time counts.
    assert dagbag.get_dag("aiml_test_no_stream").get_task("chat").deferrable is None
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)

    dag_run = run(dagbag, "aiml_test_no_stream")

    assert dag_run.state == "success"
    assert ("Deferring the AI/ML API call" in capsys.readouterr().out) is defers
    assert xcom(dag_run, "content")


def test_the_trigger_row_carries_no_api_key(dagbag, emulator):
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    dag_run = run(dagbag, "aiml_test_deferrable")
    assert dag_run.state == "success"
    with create_session() as session:
        kwargs = [json.dumps(row.kwargs, default=str) for row in session.query(Trigger).all()]
    stored = " ".join(kwargs)
    assert kwargs, "the deferred run left no trigger row to inspect"
    assert "aiml_default" in stored
    assert "sk-emulator-test-key" not in stored


def test_deferred_errors_come_back_with_their_type(dagbag, emulator, capsys):
    emulator.add_fault(Fault.status(401, body="problem", message="This request requires a valid API key."))
    dag_run = run(dagbag, "aiml_test_deferrable")

    assert dag_run.state == "failed"
    out = capsys.readouterr().out
    assert "AimlAuthenticationError" in out
    assert "requires a valid API key" in out


def test_deferrable_validation_fails_before_deferring(dagbag, emulator, capsys):
    dag_run = run(dagbag, "aiml_test_deferrable_invalid")

    assert dag_run.state == "failed"
    out = capsys.readouterr().out
    assert "'top_p'" in out
    assert "Deferring" not in out
    assert emulator.chat_requests == []


def test_deferrable_typed_output_reasks_through_the_triggerer(dagbag, emulator):
    emulator.set_reply(content='{"vendor": 5}')
    dag_run = run(dagbag, "aiml_test_deferrable_output_type")

    assert dag_run.state == "failed"
    assert len(emulator.chat_requests) == 2
    assert sent(emulator)["messages"][-2] == {"role": "assistant", "content": '{"vendor": 5}'}
    assert emulator.chat_requests[-1].client_request_id.endswith(":v1")
    usage: dict[str, Any] = xcom(dag_run, "usage")
    assert usage["total_tokens"] == sum(_tokens_billed(emulator, i) for i in range(2))
    assert xcom(dag_run, "content") == '{"vendor": 5}'


def _tokens_billed(emulator: AimlApiEmulator, index: int) -> int:
    """Tokens the emulator reported for its index-th chat request, from its request log."""
    import httpx

    replayed = httpx.post(
        f"{emulator.base_url}/chat/completions",
        json=emulator.chat_requests[index].json,
        headers={"Authorization": "Bearer sk-replay"},
        timeout=10,
    )
    return int(replayed.json()["usage"]["total_tokens"])

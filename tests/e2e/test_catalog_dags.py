"""The model catalog in real DAG runs against the emulator's multi-family catalog: the reasoning switch in each
family's own keys, a deprecated model falling back, a request a model cannot take refused before any call, the
catalog read once and an outage of it blocking nothing."""

from __future__ import annotations

from typing import Any

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.e2e.test_operator_dags import run, state, xcom


def bodies_by_model(emulator: AimlApiEmulator) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for request in emulator.chat_requests:
        found.setdefault(request.json["model"], []).append(request.json)
    return found


def catalog_reads(emulator: AimlApiEmulator) -> list[str]:
    return [r.path for r in emulator.requests if r.method == "GET"]


def test_the_reasoning_switch_goes_out_in_each_familys_own_keys(dagbag: Any, aiml_connection: AimlApiEmulator) -> None:
    dag_run = run(dagbag, "aiml_catalog_reasoning")

    assert dag_run.state == "success"
    sent = bodies_by_model(aiml_connection)
    gpt5, claude, qwen = sent["openai/gpt-5"][0], sent["anthropic/claude-sonnet-4.5"][0], sent["alibaba/qwen3-32b"][0]
    assert gpt5["reasoning_effort"] == "low"
    assert "reasoning_budget_tokens" not in gpt5  # the provider's own switch never goes on the wire
    assert claude["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert claude["max_tokens"] == 4096
    assert qwen["enable_thinking"] is True
    assert qwen["thinking_budget"] == 512
    reads = catalog_reads(aiml_connection)
    for model in sent:  # each model's entry and schema were read once, however many tasks used it
        assert sum(path.startswith(f"/model/{model}?") for path in reads) == 1, reads
    assert sum(path.startswith("/docs-json") for path in reads) == len(sent), reads


def test_a_deprecated_model_falls_back_and_xcom_says_which_answered(
    dagbag: Any, aiml_connection: AimlApiEmulator
) -> None:
    dag_run = run(dagbag, "aiml_catalog_fallback")

    assert dag_run.state == "success"
    response = xcom(dag_run, "response", "ask")
    assert response["requested_model"] == "openai/gpt-4o-mini"
    assert response["fallback_from"] == ["openai/gpt-4-0613"]
    asked = [(r.json["model"], r.status, r.client_request_id) for r in aiml_connection.chat_requests]
    assert [(model, status) for model, status, _ in asked] == [("openai/gpt-4-0613", 404), ("openai/gpt-4o-mini", 200)]
    first_id, fallback_id = asked[0][2], asked[1][2]
    assert fallback_id == f"{first_id}:f1"
    spend = xcom(dag_run, "aiml_spend", "ask")
    assert spend["model"] == "openai/gpt-4o-mini"  # the spend is the answering model's


def test_images_to_a_text_only_model_fail_before_any_call(
    dagbag: Any, aiml_connection: AimlApiEmulator, capsys: Any
) -> None:
    dag_run = run(dagbag, "aiml_catalog_refused")

    assert dag_run.state == "failed"
    assert state(dag_run, "image_to_text_model") == "failed"
    assert aiml_connection.chat_requests == []  # refused by the provider, not by the API
    assert "'alibaba/qwen3-32b' does not take images (no 'vision' capability in the catalog)" in capsys.readouterr().out


def test_a_batch_checks_once_and_sends_every_record_in_the_models_keys(
    dagbag: Any, aiml_connection: AimlApiEmulator
) -> None:
    dag_run = run(dagbag, "aiml_catalog_batch")

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "label")
    assert [item["error"] for item in results] == [None, None, None]
    sent = bodies_by_model(aiml_connection)["anthropic/claude-sonnet-4.5"]
    assert len(sent) == 3
    assert all(body["thinking"] == {"type": "enabled", "budget_tokens": 1024} for body in sent)
    assert all(body["temperature"] == 0.5 for body in sent)


def test_a_model_outside_the_keys_scopes_falls_back_rechecked_for_the_next(
    dagbag: Any, aiml_connection: AimlApiEmulator
) -> None:
    aiml_connection.settings.denied_models = ("x-ai/grok-4-07-09",)

    dag_run = run(dagbag, "aiml_catalog_scope_fallback")

    assert dag_run.state == "success"
    refused, answered = aiml_connection.chat_requests
    assert (refused.json["model"], refused.status) == ("grok-4-07-09", 403)
    assert (answered.json["model"], answered.status) == ("anthropic/claude-sonnet-4.5", 200)
    assert refused.json["reasoning"] == {"max_tokens": 2048}  # the one switch, in each model's own keys
    assert answered.json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "reasoning" not in answered.json
    assert xcom(dag_run, "response", "ask")["fallback_from"] == ["grok-4-07-09"]
    usage = xcom(dag_run, "usage", "ask")
    assert usage["credits_used"] == aiml_connection.credits_used  # the refused call was not billed


def test_an_outage_of_the_catalog_blocks_nothing_and_is_logged_once(
    dagbag: Any, aiml_connection: AimlApiEmulator, capsys: Any
) -> None:
    aiml_connection.settings.catalog_status = 503

    first = run(dagbag, "aiml_catalog_outage")
    second = run(dagbag, "aiml_catalog_outage")

    assert (first.state, second.state) == ("success", "success")
    assert [r.status for r in aiml_connection.chat_requests] == [200, 200]
    out = capsys.readouterr().out
    assert out.count("The model catalog could not be read for openai/gpt-4o-mini") == 1
    reads = [r for r in catalog_reads(aiml_connection) if r.startswith("/model/")]
    assert len(reads) == 1  # the failure is remembered for a quiet minute, not asked again on every call


def test_thinking_on_a_model_that_thinks_only_when_streamed_fails_before_any_call(
    dagbag: Any, aiml_connection: AimlApiEmulator, capsys: Any
) -> None:
    dag_run = run(dagbag, "aiml_catalog_thinking_needs_stream")

    assert dag_run.state == "failed"
    assert aiml_connection.chat_requests == []
    assert "'alibaba/qwen3-32b' thinks only on streamed calls" in capsys.readouterr().out

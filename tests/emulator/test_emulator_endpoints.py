"""Auth, models, billing, usage, 404s, request ids and the request log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
FIXTURE_401 = Path("/work/shared/docs/aimlapi-fixtures/error.observed-problem-json.401.json")
PROBLEM_KEYS = {"title", "status", "message", "instance", "requestId", "timestamp", "error"}


def _assert_problem_401(response: httpx.Response, message_start: str) -> dict[str, Any]:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()
    assert set(error) == PROBLEM_KEYS
    assert error["title"] == "Unauthorized"
    assert error["status"] == 401
    assert error["instance"] == "/v1/chat/completions"
    assert error["error"]["name"] == "UnauthorizedException"
    assert error["message"].startswith(message_start)
    uuid.UUID(error["requestId"])
    assert "x-inference-id" in response.headers
    return error


def test_missing_key_is_a_problem_json_401(client_for: ClientFor, emulator: AimlApiEmulator, body: Body) -> None:
    response = client_for(emulator, key=None).post("/chat/completions", json=body())
    _assert_problem_401(response, "You did not provide an API key.")


def test_empty_key_matches_the_observed_body(client_for: ClientFor, emulator: AimlApiEmulator, body: Body) -> None:
    response = client_for(emulator, key="").post("/chat/completions", json=body())
    error = _assert_problem_401(response, "You provided an empty string")
    if FIXTURE_401.exists():
        observed = json.loads(FIXTURE_401.read_text())
        assert error["message"] == observed["message"]
        assert set(error) == set(observed)


def test_wrong_key_is_rejected_without_echoing_it(client_for: ClientFor, emulator: AimlApiEmulator, body: Body) -> None:
    response = client_for(emulator, key="sk-wrong-secret").post("/chat/completions", json=body())
    _assert_problem_401(response, "This request requires a valid API key.")
    assert "sk-wrong-secret" not in response.text
    assert "sk-wrong-secret" not in str(dict(response.headers))


def test_any_non_empty_key_is_accepted_without_api_keys(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator() as emu:
        assert client_for(emu, key="anything").post("/chat/completions", json=body()).status_code == 200
        assert client_for(emu, key="").post("/chat/completions", json=body()).status_code == 401


def test_models_need_no_key(client_for: ClientFor, emulator: AimlApiEmulator) -> None:
    http = client_for(emulator, key=None)
    response = http.get("/models")
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    by_id = {item["id"]: item for item in listing["data"]}
    seed = by_id["alibaba/qwen3-vl-32b-thinking"]
    assert seed["type"] == "openai/chat-completions"
    assert seed["aliases"] == ["qwen3-vl-32b-thinking"]
    assert {"name", "developer", "description", "contextLength", "docsUrl"} <= set(seed["info"])
    assert {"openai/gpt-4o", "anthropic/claude-sonnet-4.5", "alibaba/qwen3-32b"} <= set(by_id)
    assert any(item["type"] == "openai/image-generations" for item in listing["data"])

    assert httpx.get(f"{emulator.url}/models", trust_env=False).json() == listing
    (only,) = http.get("/models", params={"id": "gpt-4o"}).json()["data"]
    assert only["id"] == "openai/gpt-4o"
    images = http.get("/models", params={"type": "openai/image-generations"}).json()["data"]
    assert [item["id"] for item in images] == ["openai/gpt-image-1"]


def test_billing_needs_a_key(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(api_keys={"sk-good"}, balance_usd=7.25) as emu:
        url = f"{emu.url}/v2/billing"
        ok = client_for(emu).get(url)
        assert ok.status_code == 200
        assert ok.json() == {"current_balance": 7.25, "currency": "USD"}
        denied = client_for(emu, key="sk-bad").get(url)
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"


def test_usage_reports_spend_and_requests(client: httpx.Client, emulator: AimlApiEmulator, body: Body) -> None:
    credits = int(client.post("/chat/completions", json=body()).headers["x-aimlapi-credits-used"])
    usage = client.get(f"{emulator.url}/v2/usage", params={"period": "7d"}).json()
    assert usage["api_key_prefix"] == "sk-goo..."
    assert usage["currency"] == "USD"
    assert usage["requests"] == 1
    assert usage["spend"] == pytest.approx(credits / 2_000_000)
    assert usage["start"] < usage["end"]
    assert emulator.credits_used == credits


def test_unknown_path_is_a_legacy_404(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    response = client.get(f"{emulator.url}/v1/nothing-here")
    assert response.status_code == 404
    error = response.json()
    assert error["statusCode"] == "404"
    assert error["path"] == "/v1/nothing-here"
    assert error["message"] == "Cannot GET /v1/nothing-here"
    assert "x-inference-id" in response.headers
    assert client.get("/chat/completions").status_code == 404


def test_client_request_id_is_echoed_and_an_invalid_one_dropped(
    client: httpx.Client, emulator: AimlApiEmulator, body: Body
) -> None:
    good = client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "run-1.task_2:try-3"})
    assert good.headers["x-client-request-id"] == "run-1.task_2:try-3"

    for invalid in ("has space", "x" * 129, "slash/bad"):
        response = client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": invalid})
        assert response.status_code == 200
        assert "x-client-request-id" not in response.headers

    recorded = [r.client_request_id for r in emulator.chat_requests]
    assert recorded == ["run-1.task_2:try-3", "has space", "x" * 129, "slash/bad"]


def test_inference_ids_are_fresh(client: httpx.Client, body: Body) -> None:
    ids = {client.post("/chat/completions", json=body()).headers["x-inference-id"] for _ in range(3)}
    assert len(ids) == 3


def test_request_log_records_every_request(client: httpx.Client, emulator: AimlApiEmulator, body: Body) -> None:
    client.get("/models?id=gpt-4o")
    client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "abc"})
    client.post("/chat/completions", json=body(temperature=5))

    models, chat_ok, chat_bad = emulator.requests
    assert (models.method, models.path, models.status, models.json) == ("GET", "/v1/models?id=gpt-4o", 200, None)
    assert chat_ok.headers["authorization"] == "Bearer sk-good"
    assert chat_ok.headers["content-type"] == "application/json"
    assert chat_ok.json == body()
    assert json.loads(chat_ok.body) == body()
    assert chat_ok.client_request_id == "abc"
    assert chat_ok.status == 200
    assert chat_bad.status == 400
    assert models.received_at <= chat_ok.received_at <= chat_bad.received_at
    assert emulator.chat_requests == [chat_ok, chat_bad]
    assert "sk-good" not in repr(chat_ok)
    with pytest.raises(AttributeError):
        chat_ok.status = 500  # type: ignore[misc]

"""The emulator's ``POST /v1/embeddings``: shape, determinism, dimensions, errors, faults, latency, billing."""

from __future__ import annotations

import base64
import json
import math
import struct
import time

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from airflow_provider_aiml.testing.embeddings import NATIVE_DIMENSIONS, vector_for
from tests.emulator.conftest import make_client

SMALL = "text-embedding-3-small"


def embed(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/embeddings", json={"model": SMALL, **body})


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


# ------------------------------------------------------------------------------------------ answers


def test_one_unit_vector_per_input_in_order_with_usage_and_cost(client: httpx.Client, emulator: AimlApiEmulator):
    response = embed(client, input=["a red kettle", "an oak desk with drawers"])

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"object", "data", "model", "usage"}
    assert body["object"] == "list"
    assert body["model"] == SMALL
    assert [item["index"] for item in body["data"]] == [0, 1]
    for item in body["data"]:
        assert set(item) == {"object", "index", "embedding"}
        assert item["object"] == "embedding"
        assert len(item["embedding"]) == 1536
        assert math.isclose(norm(item["embedding"]), 1.0, rel_tol=1e-4)
    assert body["usage"] == {"prompt_tokens": 3 + 6, "total_tokens": 9}  # one token per 4 characters, rounded up
    assert response.headers["x-aimlapi-usd-spent"] == f"{9 * 0.02 / 1e6:.9f}"
    assert emulator.credits_used == int(response.headers["x-aimlapi-credits-used"]) == 1  # rounded up
    assert [request.json["input"] for request in emulator.embedding_requests] == [
        ["a red kettle", "an oak desk with drawers"]
    ]
    assert emulator.embedding_requests[0].status == 200
    assert emulator.chat_requests == []


def test_each_vector_is_the_one_of_its_text(client: httpx.Client):
    texts = ["kettle", "desk", "a longer sentence about lamps"]

    data = embed(client, input=texts).json()["data"]

    assert [item["embedding"] for item in data] == [vector_for(text, SMALL, 1536) for text in texts]


def test_the_same_text_gets_the_same_vector_and_another_text_another(client: httpx.Client):
    first = embed(client, input=["kettle", "desk"]).json()["data"]
    again = embed(client, input="kettle").json()["data"]

    assert len(again) == 1
    assert first[0]["embedding"] == again[0]["embedding"]
    assert first[0]["embedding"] != first[1]["embedding"]


def test_vectors_are_stable_across_emulators():
    with AimlApiEmulator() as one, make_client(one, key="k") as first:
        a = embed(first, input="kettle").json()["data"][0]["embedding"]
    with AimlApiEmulator() as two, make_client(two, key="k") as second:
        b = embed(second, input="kettle").json()["data"][0]["embedding"]

    assert a == b
    assert all(round(value, 6) == value for value in a)


@pytest.mark.parametrize(("model", "size"), [("text-embedding-3-large", 3072), ("text-embedding-ada-002", 1536)])
def test_each_model_has_its_own_size(client: httpx.Client, model: str, size: int):
    body = client.post("/embeddings", json={"model": model, "input": ["x"]}).json()

    assert body["model"] == model
    assert len(body["data"][0]["embedding"]) == size
    assert math.isclose(norm(body["data"][0]["embedding"]), 1.0, rel_tol=1e-4)


@pytest.mark.parametrize(("model", "dimensions"), [(SMALL, 64), (SMALL, 1), ("text-embedding-3-large", 3072)])
def test_dimensions_sets_the_size_of_the_3_models(client: httpx.Client, model: str, dimensions: int):
    body = {"model": model, "input": ["x"], "dimensions": dimensions}

    vector = client.post("/embeddings", json=body).json()["data"][0]["embedding"]

    assert len(vector) == dimensions
    assert math.isclose(norm(vector), 1.0, rel_tol=1e-4)


@pytest.mark.parametrize(
    ("model", "usd_per_million"),
    [(SMALL, 0.02), ("text-embedding-3-large", 0.13), ("text-embedding-ada-002", 0.10)],
)
def test_the_cost_headers_use_each_models_price(client: httpx.Client, model: str, usd_per_million: float):
    text = "x" * 4000  # 1,000 tokens

    response = client.post("/embeddings", json={"model": model, "input": [text, text]})

    assert response.json()["usage"] == {"prompt_tokens": 2000, "total_tokens": 2000}
    assert response.headers["x-aimlapi-usd-spent"] == f"{2000 * usd_per_million / 1e6:.9f}"
    assert int(response.headers["x-aimlapi-credits-used"]) == round(2000 * usd_per_million / 1e6 * 2_000_000)


def test_billing_and_stats_count_embeddings(client: httpx.Client, emulator: AimlApiEmulator):
    embed(client, input="x" * 4000)
    embed(client, input=[])  # refused: logged, not billed
    stats = httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    usage = client.get(f"{emulator.url}/v2/usage").json()

    assert (stats["embedding_requests"], stats["chat_requests"], stats["billed_requests"]) == (2, 0, 1)
    assert stats["credits_used"] == emulator.credits_used == 40
    assert usage["requests"] == 1
    emulator.reset()
    assert httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["embedding_requests"] == 0


def test_both_paths_answer(client: httpx.Client, emulator: AimlApiEmulator):
    at_root = client.post(f"{emulator.url}/embeddings", json={"model": SMALL, "input": "x"})
    under_v1 = client.post(f"{emulator.url}/v1/embeddings/", json={"model": SMALL, "input": "x"})

    assert at_root.json()["data"] == under_v1.json()["data"]
    assert len(emulator.embedding_requests) == 2


def test_base64_encoding_packs_the_same_floats(client: httpx.Client):
    floats = embed(client, input="kettle", dimensions=16).json()["data"][0]["embedding"]
    packed = embed(client, input="kettle", dimensions=16, encoding_format="base64").json()["data"][0]["embedding"]

    unpacked = struct.unpack("<16f", base64.b64decode(packed))
    assert unpacked == pytest.approx(floats, abs=1e-6)


def test_the_openai_prefixed_alias_gets_the_same_vectors(client: httpx.Client):
    plain = embed(client, input=["kettle"]).json()
    prefixed = client.post("/embeddings", json={"model": f"openai/{SMALL}", "input": ["kettle"]}).json()

    assert prefixed["model"] == SMALL
    assert prefixed["data"] == plain["data"]


def test_the_catalog_lists_the_embedding_models_it_serves(client: httpx.Client, emulator: AimlApiEmulator):
    listed = client.get("/models", params={"type": "embedding"}).json()["data"]

    assert {item["id"]: item["type"] for item in listed} == dict.fromkeys(NATIVE_DIMENSIONS, "embedding")
    assert all(item["aliases"] == [f"openai/{item['id']}"] for item in listed)
    assert client.get(f"{emulator.url}/model/openai/text-embedding-3-large").json()["data"]["id"] == (
        "text-embedding-3-large"
    )


# ------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": SMALL}, 'Expected string | array of strings, received undefined at "input"'),
        ({"model": SMALL, "input": None}, 'Expected string | array of strings, received null at "input"'),
        ({"model": SMALL, "input": 7}, 'Expected string | array of strings, received number at "input"'),
        ({"model": SMALL, "input": ""}, "Expected non-empty string, received '' at \"input\""),
        ({"model": SMALL, "input": []}, 'Expected array of 1 to 2048 strings, received 0 items at "input"'),
        ({"model": SMALL, "input": ["x"] * 2049}, 'received 2049 items at "input"'),
        ({"model": SMALL, "input": ["ok", 5]}, 'Expected string, received number at "input[1]"'),
        ({"model": SMALL, "input": ["ok", ["x"]]}, 'Expected string, received array at "input[1]"'),
        ({"model": SMALL, "input": ["ok", ""]}, "Expected non-empty string, received '' at \"input[1]\""),
        ({"input": ["x"]}, 'Expected non-empty string, received undefined at "model"'),
        ({"model": 3, "input": ["x"]}, 'Expected non-empty string, received number at "model"'),
        ({"model": SMALL, "input": ["x"], "dimensions": 0}, 'integer between 1 and 1536, received 0 at "dimensions"'),
        ({"model": SMALL, "input": ["x"], "dimensions": 1537}, "between 1 and 1536, received 1537"),
        ({"model": "text-embedding-3-large", "input": ["x"], "dimensions": 3073}, "between 1 and 3072, received 3073"),
        ({"model": SMALL, "input": ["x"], "dimensions": "8"}, 'Expected integer, received string at "dimensions"'),
        ({"model": SMALL, "input": ["x"], "dimensions": 8.5}, 'Expected integer, received number at "dimensions"'),
        ({"model": SMALL, "input": ["x"], "dimensions": True}, 'Expected integer, received boolean at "dimensions"'),
        (
            {"model": "text-embedding-ada-002", "input": ["x"], "dimensions": 8},
            "text-embedding-ada-002 does not support dimensions, it always answers 1536), received 8",
        ),
        ({"model": SMALL, "input": ["x"], "encoding_format": "hex"}, "Expected 'float' | 'base64', received 'hex'"),
    ],
)
def test_bad_bodies_are_a_400_in_the_apis_error_shape(client: httpx.Client, body: dict, message: str):
    response = client.post("/embeddings", json=body)

    assert response.status_code == 400
    error = response.json()
    assert set(error) >= {"message", "path", "requestId", "statusCode", "timestamp"}
    assert error["statusCode"] == "400"
    assert error["path"] == "/v1/embeddings"
    assert error["message"].startswith("Body validation error! ")
    assert message in error["message"]


@pytest.mark.parametrize("raw", [b"[1, 2]", b"{not json", b""])
def test_a_body_that_is_not_a_json_object_is_a_400(client: httpx.Client, raw: bytes):
    response = client.post("/embeddings", content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["message"].startswith("Body validation error!")


@pytest.mark.parametrize("model", ["acme/unknown-embedder", "alibaba/qwen3-vl-32b-thinking"])
def test_a_model_that_is_not_an_embedding_model_is_a_404_like_chat(client: httpx.Client, model: str):
    response = client.post("/embeddings", json={"model": model, "input": ["x"]})

    assert response.status_code == 404
    assert response.json()["statusCode"] == "404"
    assert response.json()["message"] == f"Model {model} not found. The available models are listed at GET /v1/models."


@pytest.mark.parametrize(("key", "start"), [(None, "You did not provide an API key."), ("sk-wrong", "This request")])
def test_a_missing_or_wrong_key_is_the_chat_401(emulator: AimlApiEmulator, key: str | None, start: str):
    with make_client(emulator, key=key) as client:
        response = embed(client, input=["x"])
        chat = client.post("/chat/completions", json={"model": "m", "messages": []})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()
    assert set(error) == set(chat.json())
    assert (error["title"], error["status"], error["instance"]) == ("Unauthorized", 401, "/v1/embeddings")
    assert error["message"] == chat.json()["message"]
    assert error["message"].startswith(start)
    assert "sk-wrong" not in response.text
    assert emulator.credits_used == 0


# ------------------------------------------------------------------------------------------ faults & latency


def test_a_queued_500_then_success(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.status(500), times=1)

    failed = embed(client, input=["x"])
    succeeded = embed(client, input=["x"])

    assert (failed.status_code, failed.json()["statusCode"]) == (500, "500")
    assert succeeded.status_code == 200
    assert [request.status for request in emulator.embedding_requests] == [500, 200]
    assert emulator.pending_faults == 0
    assert emulator.credits_used == int(succeeded.headers["x-aimlapi-credits-used"])


def test_queued_faults_are_shared_with_chat_in_arrival_order(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.status(503), times=2)

    assert embed(client, input=["x"]).status_code == 503
    chat = client.post(
        "/chat/completions",
        json={"model": "alibaba/qwen3-vl-32b-thinking", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 503
    assert embed(client, input=["x"]).status_code == 200


def test_a_429_fault_has_the_apis_error_body_and_retry_after(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.status(429, retry_after=3), times=1)

    response = embed(client, input=["x"])

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["message"]


def test_a_reset_fault_drops_the_connection_then_the_next_call_succeeds(
    client: httpx.Client, emulator: AimlApiEmulator
):
    emulator.add_fault(Fault.reset(), times=1)

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
        embed(client, input=["x"])
    assert emulator.embedding_requests[-1].status is None
    assert embed(client, input=["x"]).status_code == 200


def test_a_delay_fault_holds_the_answer(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.delay(0.2), times=1)

    started = time.monotonic()
    assert embed(client, input=["x"]).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_a_malformed_json_fault_sends_half_the_body_and_bills_nothing(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.malformed_json(), times=1)

    response = embed(client, input=["x"])

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert emulator.credits_used == 0


def test_a_cut_stream_fault_closes_the_connection_mid_body(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.cut_stream(after_chunks=0), times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        embed(client, input=["x"])
    assert emulator.credits_used == 0
    assert embed(client, input=["x"]).status_code == 200


def test_fault_rates_strike_embeddings_like_chat():
    with AimlApiEmulator(fault_rates={Fault.status(503): 1.0}) as emu, make_client(emu, key="k") as other:
        statuses = {embed(other, input=["x"]).status_code for _ in range(3)}

    assert statuses == {503}


def test_the_latency_setting_delays_embeddings():
    with AimlApiEmulator(latency=0.2) as emulator, make_client(emulator, key="anything") as client:
        started = time.monotonic()
        assert embed(client, input=["x"]).status_code == 200
        answered = time.monotonic() - started
        started = time.monotonic()
        assert embed(client, input=[]).status_code == 400
        refused = time.monotonic() - started

    assert answered >= 0.2
    assert refused < 0.2  # like chat: refusals are immediate


# ------------------------------------------------------------------------------------------ with the hook


def test_the_hook_retries_an_emulated_503_and_gets_the_emulators_vectors(aiml_connection: AimlApiEmulator):
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    aiml_connection.add_fault(Fault.status(503), times=1)

    result = AimlApiHook().embed(["kettle", "desk"], dimensions=32)

    assert len(aiml_connection.embedding_requests) == 2
    assert result.vectors == [vector_for(text, SMALL, 32) for text in ("kettle", "desk")]
    assert (result.requests, result.attempts, result.dimensions) == (1, 2, 32)
    assert result.usage.total_tokens == 2 + 1
    assert result.usage.credits_used == aiml_connection.credits_used > 0  # the failed try was not billed


def test_the_hook_turns_a_malformed_answer_into_a_response_error(aiml_connection: AimlApiEmulator):
    from airflow_provider_aiml.exceptions import AimlResponseError
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    aiml_connection.add_fault(Fault.malformed_json(), times=1)

    with pytest.raises(AimlResponseError, match="not JSON"):
        AimlApiHook().embed(["kettle"])
    assert len(aiml_connection.embedding_requests) == 1

"""The emulator's ``POST /v1/embeddings``: shape, determinism, dimensions, errors, faults, billing."""

from __future__ import annotations

import math
import time

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.emulator.conftest import make_client


def embed(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/embeddings", json={"model": "text-embedding-3-small", **body})


def test_one_unit_vector_per_input_in_order_with_usage_and_cost(client: httpx.Client, emulator: AimlApiEmulator):
    response = embed(client, input=["a red kettle", "an oak desk with drawers"])

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert body["model"] == "text-embedding-3-small"
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert {item["object"] for item in body["data"]} == {"embedding"}
    for item in body["data"]:
        assert len(item["embedding"]) == 1536
        assert math.isclose(sum(value * value for value in item["embedding"]), 1.0, rel_tol=1e-4)
    assert body["usage"] == {"prompt_tokens": 3 + 6, "total_tokens": 9}  # one token per 4 characters, rounded up
    assert float(response.headers["x-aimlapi-usd-spent"]) == pytest.approx(9 * 0.02 / 1e6)
    assert emulator.credits_used == int(response.headers["x-aimlapi-credits-used"]) > 0
    assert [request.json["input"] for request in emulator.embedding_requests] == [
        ["a red kettle", "an oak desk with drawers"]
    ]


def test_the_same_text_gets_the_same_vector_and_another_text_another(client: httpx.Client):
    first = embed(client, input=["kettle", "desk"]).json()["data"]
    again = embed(client, input="kettle").json()["data"]

    assert first[0]["embedding"] == again[0]["embedding"]
    assert first[0]["embedding"] != first[1]["embedding"]


@pytest.mark.parametrize(("model", "size"), [("text-embedding-3-large", 3072), ("text-embedding-ada-002", 1536)])
def test_each_model_has_its_own_size(client: httpx.Client, model: str, size: int):
    response = client.post("/embeddings", json={"model": model, "input": ["x"]})

    assert len(response.json()["data"][0]["embedding"]) == size


def test_dimensions_shortens_the_vectors_of_the_3_models(client: httpx.Client):
    vector = embed(client, input=["x"], dimensions=64).json()["data"][0]["embedding"]

    assert len(vector) == 64
    assert math.isclose(sum(value * value for value in vector), 1.0, rel_tol=1e-4)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": []}, 400, "'input': Expected a string or a non-empty array of strings"),
        ({"input": ["ok", ""]}, 400, "'input.1': String must contain at least 1 character(s)"),
        ({"input": ["ok", 5]}, 400, "'input.1': Expected string, received int"),
        ({"input": ["x"] * 2049}, 400, "at most 2048 element(s)"),
        ({"input": ["x"], "dimensions": 0}, 400, "'dimensions': Number must be between 1 and 1536"),
        ({"input": ["x"], "model": "text-embedding-ada-002", "dimensions": 8}, 400, "is not supported"),
        ({"input": ["x"], "model": "acme/unknown-embedder"}, 404, "Model acme/unknown-embedder not found"),
    ],
)
def test_bad_bodies_get_the_apis_error_shape(client: httpx.Client, body: dict, status: int, message: str):
    response = client.post("/embeddings", json={"model": "text-embedding-3-small", **body})

    assert response.status_code == status
    assert message in response.json()["message"]
    assert response.json()["statusCode"] == str(status)


def test_a_wrong_key_is_a_401(emulator: AimlApiEmulator):
    with make_client(emulator, key="sk-wrong") as client:
        response = embed(client, input=["x"])

    assert response.status_code == 401
    assert "sk-wrong" not in response.text


def test_queued_faults_apply_to_embeddings_too(client: httpx.Client, emulator: AimlApiEmulator):
    emulator.add_fault(Fault.status(500), times=1)

    assert embed(client, input=["x"]).status_code == 500
    assert embed(client, input=["x"]).status_code == 200


def test_the_latency_setting_delays_embeddings():
    with AimlApiEmulator(latency=0.2) as emulator, make_client(emulator, key="anything") as client:
        started = time.monotonic()
        assert embed(client, input=["x"]).status_code == 200
        assert time.monotonic() - started >= 0.2

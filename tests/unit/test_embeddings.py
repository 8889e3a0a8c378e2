"""``AimlApiHook.embed``/``aembed`` over a mocked HTTP layer (respx): bodies, batching, order, retries, errors."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlParameterError,
    AimlResponseError,
    AimlServerError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import DEFAULT_EMBEDDING_MODEL
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

EMBEDDINGS_URL = f"{TEST_BASE_URL}/embeddings"


def answer(request: httpx.Request, *, shuffle: bool = False, model: str = "text-embedding-3-small") -> httpx.Response:
    """What the API answers: one vector per input (its first value encodes the input), usage per input."""
    inputs = json.loads(request.content)["input"]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i), 0.5]}
        for i, text in enumerate(inputs)
    ]
    if shuffle:
        data.reverse()
    tokens = sum(len(text.split()) for text in inputs)
    body = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return httpx.Response(200, json=body, headers={"x-aimlapi-usd-spent": f"{tokens * 1e-6:.7f}"})


@pytest.fixture
def hook() -> AimlApiHook:
    return AimlApiHook()


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_the_body_holds_only_what_is_set_and_the_vectors_come_back_in_order(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    result = hook.embed(["one", "two words"], client_request_id="dag:task:run")

    request = route.calls.last.request
    assert json.loads(request.content) == {"model": DEFAULT_EMBEDDING_MODEL, "input": ["one", "two words"]}
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert request.headers["x-client-request-id"] == "dag:task:run"
    assert result.vectors == [[3.0, 0.0, 0.5], [9.0, 1.0, 0.5]]
    assert result.dimensions == 3
    assert result.usage.total_tokens == 3
    assert result.usage.usd_spent == pytest.approx(3e-6)


def test_model_and_dimensions_are_sent_when_given(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    hook.embed(["x"], model="text-embedding-3-large", dimensions=256)

    assert json.loads(route.calls.last.request.content) == {
        "model": "text-embedding-3-large",
        "input": ["x"],
        "dimensions": 256,
    }


def test_texts_are_split_into_requests_of_batch_size_and_joined_in_order(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=lambda request: answer(request, shuffle=True))
    texts = [f"text {'x' * i}" for i in range(10)]

    result = hook.embed(texts, batch_size=4, client_request_id="run")

    sizes = [len(json.loads(call.request.content)["input"]) for call in route.calls]
    assert sizes == [4, 4, 2]
    assert [vector[0] for vector in result.vectors] == [float(len(text)) for text in texts]
    assert [call.request.headers["x-client-request-id"] for call in route.calls] == ["run:b0", "run:b1", "run:b2"]
    assert result.requests == 3
    assert result.usage.total_tokens == sum(len(text.split()) for text in texts)


async def test_aembed_runs_the_batches_concurrently_within_the_limit_and_keeps_the_order(hook, api):
    import asyncio

    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return answer(request, shuffle=True)

    route = api.post(EMBEDDINGS_URL).mock(side_effect=slow)
    texts = [f"t{'y' * i}" for i in range(40)]

    result = await hook.aembed(texts, batch_size=5, concurrency=3)
    await hook.aclose()

    assert route.call_count == 8
    assert peak == 3
    assert [vector[0] for vector in result.vectors] == [float(len(text)) for text in texts]


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ("just one string", {}, "'texts' must be a list of strings, got str"),
        ([], {}, "'texts' is empty"),
        (["ok", 3], {}, "text 1 is a int, not a string"),
        (["ok", "  "], {}, "text 1 is empty"),
        (["ok"], {"dimensions": 0}, "'dimensions' must be a whole number >= 1, got 0"),
        (["ok"], {"dimensions": True}, "'dimensions' must be a whole number >= 1, got True"),
        (["ok"], {"batch_size": 5000}, "'batch_size' must be a whole number from 1 to 2048, got 5000"),
        (["ok"], {"model": " "}, "'model' must be a model id"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(hook, api, texts, kwargs, message):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    with pytest.raises(AimlParameterError, match=message):
        hook.embed(texts, **kwargs)

    assert route.call_count == 0


def test_a_bad_text_in_a_later_batch_stops_the_whole_call_before_the_first_request(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    with pytest.raises(AimlParameterError, match="text 7 is empty"):
        hook.embed([*["fine"] * 7, ""], batch_size=2)

    assert route.call_count == 0


def test_transient_errors_are_retried_and_counted(hook, api, retry_waits):
    overloaded = httpx.Response(503, json={"message": "overloaded", "statusCode": 503})
    calls: list[int] = []

    def respond(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return overloaded if len(calls) == 1 else answer(request)

    route = api.post(EMBEDDINGS_URL).mock(side_effect=respond)

    result = hook.embed(["a b"])

    assert route.call_count == 2
    assert len(retry_waits) == 1
    assert result.vectors == [[3.0, 0.0, 0.5]]


def test_retries_give_up_with_the_apis_own_message(hook, api, retry_waits):
    route = api.post(EMBEDDINGS_URL).mock(
        return_value=httpx.Response(500, json={"message": "Upstream failed", "statusCode": 500})
    )

    with pytest.raises(AimlServerError, match="Upstream failed"):
        hook.embed(["a"])

    assert route.call_count == 3  # the first try and the connection's two retries


def test_a_401_is_not_retried_and_never_shows_the_key(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(
        return_value=httpx.Response(401, json={"message": f"bad key {TEST_API_KEY}", "statusCode": 401})
    )

    with pytest.raises(AimlAuthenticationError) as raised:
        hook.embed(["a"])

    assert route.call_count == 1
    assert TEST_API_KEY not in str(raised.value)
    assert TEST_API_KEY not in repr(hook)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"index": 0, "embedding": [1.0]}], "no vector for index 1"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}], "index 0 appears twice"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [2.0]}], "item 1 has index 5, outside 0..1"),
        ([{"index": 0, "embedding": []}, {"index": 1, "embedding": [2.0]}], "the vector of index 0 is not a list"),
        ("nope", "has no data list"),
    ],
)
def test_an_answer_that_does_not_match_the_inputs_is_a_response_error(hook, api, data, message):
    api.post(EMBEDDINGS_URL).mock(return_value=httpx.Response(200, json={"data": data, "model": "m"}))

    with pytest.raises(AimlResponseError, match=message):
        hook.embed(["a", "b"])


def test_one_summary_line_per_request(hook, api, capsys):
    api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    hook.embed(["a", "b", "c"], batch_size=2, client_request_id="r")

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "AI/ML API embeddings" in line]
    assert len(lines) == 2
    assert f"AI/ML API embeddings {DEFAULT_EMBEDDING_MODEL} -> text-embedding-3-small: 2 texts, " in lines[0]
    assert "3 dimensions" in lines[0]
    assert "client request id r:b0" in lines[0]
    assert "client request id r:b1" in lines[1]
    assert TEST_API_KEY not in out


def test_the_connection_extra_sets_the_default_embedding_model(api, monkeypatch):
    conn = {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_EMBED", json.dumps(conn | {"extra": {"embedding_model": "my-embedder"}}))
    route = api.post(EMBEDDINGS_URL).mock(side_effect=lambda request: answer(request, model="my-embedder"))

    result = AimlApiHook("aiml_embed").embed(["a"])

    assert json.loads(route.calls.last.request.content)["model"] == "my-embedder"
    assert result.requested_model == result.model == "my-embedder"

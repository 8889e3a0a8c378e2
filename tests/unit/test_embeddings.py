"""``AimlApiHook.embed``/``aembed`` over a mocked HTTP layer (respx): bodies, batching, order, retries, errors."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlNotFoundError,
    AimlParameterError,
    AimlPermissionError,
    AimlResponseError,
    AimlServerError,
    AimlTimeoutError,
    AimlTransportError,
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
        (["ok", 3], {}, "text 1 must be a string, got int"),
        (["ok", "fine", None], {}, "text 2 must be a string, got NoneType"),
        (["ok", ""], {}, "text 1 is empty or only whitespace"),
        (["ok", " \n "], {}, "text 1 is empty or only whitespace"),
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


@pytest.mark.parametrize("concurrency", [0, -1, 2.0, True])
async def test_aembed_refuses_a_bad_concurrency_before_sending(hook, api, concurrency):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    with pytest.raises(AimlParameterError, match="'concurrency' must be a whole number >= 1"):
        await hook.aembed(["a"], concurrency=concurrency)

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


def test_one_summary_line_per_call_with_the_usage_of_every_request_summed(hook, api, capsys):
    api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    result = hook.embed(["a b", "c", "d e f"], batch_size=2, client_request_id="r")

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "AI/ML API embeddings" in line]
    assert len(lines) == 1
    assert (
        f"AI/ML API embeddings {DEFAULT_EMBEDDING_MODEL} -> text-embedding-3-small: 3 texts in 2 requests, "
        "3 dimensions, tokens 6, cost $0.00000600" in lines[0]
    )
    assert re.search(r"tokens 6, cost \$0\.00000600 \(12 credits\), \d+\.\d\ds, client request id r(\s|$)", lines[0])
    assert "retries" not in lines[0]
    assert (result.requests, result.attempts, result.client_request_id) == (2, 2, "r")
    assert TEST_API_KEY not in out


def test_the_summary_line_counts_the_retries_and_no_log_line_shows_the_key(hook, api, capsys):
    replies = iter([httpx.Response(429, json={"message": f"slow down {TEST_API_KEY}", "statusCode": "429"})])

    def respond(request: httpx.Request) -> httpx.Response:
        return next(replies, None) or answer(request)

    api.post(EMBEDDINGS_URL).mock(side_effect=respond)

    result = hook.embed(["a", "b", "c"], batch_size=2, client_request_id="r")

    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if "AI/ML API embeddings" in line]
    assert "3 texts in 2 requests" in summary
    assert re.search(r"s, 1 retry, client request id r(\s|$)", summary)
    assert "AI/ML API call r:b0 failed (AI/ML API error 429 Too Many Requests: slow down ***); retry 1 of 2" in out
    assert (result.requests, result.attempts) == (2, 3)
    assert TEST_API_KEY not in out


def test_log_calls_false_logs_no_summary(api, capsys):
    api.post(EMBEDDINGS_URL).mock(side_effect=answer)

    AimlApiHook(log_calls=False).embed(["a"])

    assert "AI/ML API embeddings" not in capsys.readouterr().out


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_each_transient_status_is_retried_until_it_passes(hook, api, retry_waits, status):
    replies = iter([httpx.Response(status, json={"message": "busy", "statusCode": str(status)})] * 2)
    route = api.post(EMBEDDINGS_URL).mock(side_effect=lambda request: next(replies, None) or answer(request))

    result = hook.embed(["a b"])

    assert route.call_count == 3
    assert len(retry_waits) == 2
    assert result.vectors == [[3.0, 0.0, 0.5]]


@pytest.mark.parametrize(
    ("status", "error", "body", "message"),
    [
        (
            400,
            AimlBadRequestError,
            {"message": "Body validation error! 'input.0': Required", "statusCode": "400"},
            "'input.0': Required",
        ),
        (
            401,
            AimlAuthenticationError,
            {
                "title": "Unauthorized",
                "status": 401,
                "error": {"name": "UnauthorizedException", "message": "This request requires a valid API key."},
            },
            "This request requires a valid API key.",
        ),
        (403, AimlPermissionError, {"message": "You've run out of credits.", "statusCode": 403}, "run out of credits"),
        (404, AimlNotFoundError, {"message": "Model acme/embedder not found", "statusCode": "404"}, "not found"),
    ],
)
def test_permanent_errors_carry_the_apis_own_message_and_are_not_retried(hook, api, status, error, body, message):
    route = api.post(EMBEDDINGS_URL).mock(return_value=httpx.Response(status, json=body))

    with pytest.raises(error, match=message) as raised:
        hook.embed(["a"], client_request_id="run-1")

    assert route.call_count == 1
    assert raised.value.status_code == status
    assert raised.value.client_request_id == "run-1"


@pytest.mark.parametrize(
    ("network_error", "error", "message"),
    [
        (httpx.ConnectError("connection refused"), AimlTransportError, "ConnectError: connection refused"),
        (httpx.ReadTimeout("timed out"), AimlTimeoutError, "No answer from the AI/ML API within"),
    ],
)
def test_network_errors_become_the_providers_own_after_the_retries(hook, api, network_error, error, message):
    route = api.post(EMBEDDINGS_URL).mock(side_effect=network_error)

    with pytest.raises(error, match=message) as raised:
        hook.embed(["a"])

    assert route.call_count == 3
    assert TEST_API_KEY not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # httpx's error, which may quote the request, is not chained


async def test_aembed_retries_too(hook, api, retry_waits):
    replies = iter([httpx.Response(503, json={"message": "busy"})])
    route = api.post(EMBEDDINGS_URL).mock(side_effect=lambda request: next(replies, None) or answer(request))

    result = await hook.aembed(["a", "b", "c"], batch_size=1, concurrency=1)
    await hook.aclose()

    assert route.call_count == 4
    assert len(retry_waits) == 1
    assert (result.requests, result.attempts) == (3, 4)
    assert [vector[0] for vector in result.vectors] == [1.0, 1.0, 1.0]


async def test_aembed_stops_sending_once_a_request_fails_for_good(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(
        return_value=httpx.Response(400, json={"message": "Body validation error!", "statusCode": "400"})
    )

    with pytest.raises(AimlBadRequestError, match="Body validation error!"):
        await hook.aembed([f"text {i}" for i in range(10)], batch_size=2, concurrency=1)
    await hook.aclose()

    assert route.call_count == 1  # the four requests queued behind the failed one were never sent


def test_a_vector_value_that_is_not_a_number_is_a_response_error(hook, api):
    data = [{"index": 0, "embedding": [0.1, "0.2"]}]
    api.post(EMBEDDINGS_URL).mock(return_value=httpx.Response(200, json={"data": data, "model": "m"}))

    with pytest.raises(AimlResponseError, match=r"vectors\.0\.1 is str, not a number"):
        hook.embed(["a"])


def test_a_body_that_is_not_json_is_a_response_error_and_not_retried(hook, api):
    route = api.post(EMBEDDINGS_URL).mock(return_value=httpx.Response(200, content=b'{"data": [{"ind'))

    with pytest.raises(AimlResponseError, match="not JSON"):
        hook.embed(["a"])

    assert route.call_count == 1


def test_the_connection_extra_sets_the_default_embedding_model(api, monkeypatch):
    conn = {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_EMBED", json.dumps(conn | {"extra": {"embedding_model": "my-embedder"}}))
    route = api.post(EMBEDDINGS_URL).mock(side_effect=lambda request: answer(request, model="my-embedder"))

    result = AimlApiHook("aiml_embed").embed(["a"])

    assert json.loads(route.calls.last.request.content)["model"] == "my-embedder"
    assert result.requested_model == result.model == "my-embedder"

"""AimlApiHook over a mocked HTTP layer (respx): requests, retries, errors, streaming, connection test."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import httpx
import pytest
import respx

from airflow_provider_aiml import __version__
from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlConfigurationError,
    AimlNotFoundError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlResponseError,
    AimlServerError,
    AimlStreamIncompleteError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.retry import RetryPolicy
from airflow_provider_aiml.models import ChatCompletionResult, StreamDelta
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aimlapi"
CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
MESSAGES = [{"role": "user", "content": "Hi! What do you think about mankind?"}]


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def completion(content: str = "Hello.", reasoning: str = "Thinking.") -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "reasoning_content": reasoning},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def sse(*chunks: dict, done: bool = False) -> bytes:
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def stream_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def chunk(content: str | None = None, reasoning: str | None = None, finish: str | None = None) -> dict:
    delta = {"content": content, "reasoning_content": reasoning}
    return {
        "id": "c1",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@pytest.fixture
def hook() -> AimlApiHook:
    return AimlApiHook()


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


# --- requests -----------------------------------------------------------------------------------------------


def test_sends_only_set_keys_with_auth_user_agent_and_client_request_id(hook, api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))

    hook.chat_completion(
        MESSAGES,
        client_request_id="dag:task:run:-1:1",
        temperature=0.2,
        top_p=None,
        stop=["END"],
        seed=7,
        extra_body={"enable_thinking": True},
    )

    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": "alibaba/qwen3-vl-32b-thinking",
        "messages": MESSAGES,
        "temperature": 0.2,
        "stop": ["END"],
        "seed": 7,
        "enable_thinking": True,
    }
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert request.headers["user-agent"] == f"airflow-provider-aiml/{__version__}"
    assert request.headers["x-client-request-id"] == "dag:task:run:-1:1"


def test_model_argument_overrides_the_connection_default(hook, api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    result = hook.chat_completion(MESSAGES, model="openai/gpt-4o")
    assert json.loads(route.calls.last.request.content)["model"] == "openai/gpt-4o"
    assert result.requested_model == "openai/gpt-4o"


def test_a_generated_client_request_id_matches_the_api_pattern(hook, api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    result = hook.chat_completion(MESSAGES)
    sent = route.calls.last.request.headers["x-client-request-id"]
    assert sent == result.client_request_id
    assert sent.startswith("airflow-aiml:")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": 0}, "seed"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"temprature": 0.5}, "temprature"),
        ({"extra_body": {"temperature": 9}}, "temperature"),
        ({"extra_body": {"model": "x"}}, "model"),
    ],
)
def test_invalid_parameters_fail_before_any_request(hook, api, params, named):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(AimlParameterError, match=named):
        hook.chat_completion(MESSAGES, **params)
    assert route.call_count == 0


def test_invalid_messages_fail_before_any_request(hook, api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(AimlParameterError, match=r"messages\[0\]\.role"):
        hook.chat_completion([{"role": "robot", "content": "hi"}])
    assert route.call_count == 0


def test_the_body_is_sent_as_the_bytes_it_was_checked_as(hook, api):
    from airflow_provider_aiml.hooks.aiml import PreparedChat

    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    messages = [{"role": "user", "content": "Grüße, 東京 — describe ✓"}]

    hook.chat_completion(messages, temperature=0.5)

    request = route.calls.last.request
    expected = {"model": "alibaba/qwen3-vl-32b-thinking", "messages": messages, "temperature": 0.5}
    prepared = PreparedChat.build(hook.settings, messages, None, None, None, {"temperature": 0.5}, stream=False)
    assert request.content == prepared.payload  # encoded once, while checking, and those bytes are sent
    assert json.loads(request.content) == expected
    assert request.content == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(request.content))


def test_text_that_utf8_cannot_carry_fails_before_any_request(hook, api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(AimlParameterError, match=r"messages cannot be sent as JSON.*surrogate"):
        hook.chat_completion([{"role": "user", "content": "broken \ud800 text"}])
    assert route.call_count == 0


async def test_a_call_prepared_without_its_bytes_is_encoded_when_sent(hook, api):
    from airflow_provider_aiml.hooks.aiml import PreparedChat

    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    body = {"model": "m", "messages": [{"role": "user", "content": "é"}]}

    await hook.asend_chat(PreparedChat("m", body, "batch:1"))

    assert route.calls.last.request.content == '{"model":"m","messages":[{"role":"user","content":"é"}]}'.encode()
    assert route.calls.last.request.headers["x-client-request-id"] == "batch:1"


# --- results ------------------------------------------------------------------------------------------------


def test_result_from_the_real_thinking_model_response(hook, api):
    api.post(CHAT_URL).mock(
        return_value=httpx.Response(
            200,
            json=fixture_json("chat.thinking.nonstream.json"),
            headers={"x-aimlapi-credits-used": "2480", "x-aimlapi-usd-spent": "0.001240000", "x-inference-id": "inf-1"},
        )
    )
    result = hook.chat_completion(MESSAGES)
    assert result.content.startswith("That's a profound question")
    assert result.reasoning.startswith('Okay, the user asked, "Hi! What do you think about mankind?"')
    assert result.model == "qwen3-vl-32b-thinking"
    assert result.requested_model == "alibaba/qwen3-vl-32b-thinking"
    assert result.finish_reason == "stop"
    assert result.usage.model_dump() == {
        "prompt_tokens": 19,
        "completion_tokens": 1241,
        "total_tokens": 1260,
        "reasoning_tokens": 654,
        "cached_tokens": 0,
        "credits_used": 2480,
        "usd_spent": 0.00124,
    }
    assert result.inference_id == "inf-1"
    assert result.raw["id"] == "chatcmpl-c612db5c-44e9-9e3c-8169-486161eeea86"


def test_summary_log_line_names_model_tokens_cost_and_request_id(hook, api, capsys):
    api.post(CHAT_URL).mock(
        return_value=httpx.Response(
            200, json=fixture_json("chat.thinking.nonstream.json"), headers={"x-aimlapi-credits-used": "2480"}
        )
    )
    hook.chat_completion(MESSAGES, client_request_id="trace-me")
    lines = [line for line in capsys.readouterr().out.splitlines() if "trace-me" in line]
    assert len(lines) == 1
    assert "alibaba/qwen3-vl-32b-thinking" in lines[0]
    assert "reasoning=654" in lines[0]
    assert "total=1260" in lines[0]
    assert "$0.001240" in lines[0]
    assert "cached" not in lines[0]  # the fixture reports none


def test_summary_log_line_shows_the_cached_prompt_tokens(hook, api, capsys):
    payload = fixture_json("chat.thinking.nonstream.json")
    payload["usage"]["prompt_tokens_details"] = {"cached_tokens": 16, "text_tokens": 19}
    api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=payload))
    result = hook.chat_completion(MESSAGES, client_request_id="trace-cache")
    lines = [line for line in capsys.readouterr().out.splitlines() if "trace-cache" in line]
    assert result.usage.cached_tokens == 16
    assert len(lines) == 1
    assert "prompt=19 (cached=16) completion=1241" in lines[0]


# --- retries ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(hook, api, retry_waits, status):
    route = api.post(CHAT_URL).mock(
        side_effect=[httpx.Response(status, json={"message": "busy"}), httpx.Response(200, json=completion("ok"))]
    )
    assert hook.chat_completion(MESSAGES).content == "ok"
    assert route.call_count == 2
    assert len(retry_waits) == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, AimlBadRequestError),
        (401, AimlAuthenticationError),
        (403, AimlPermissionError),
        (404, AimlNotFoundError),
        (422, AimlBadRequestError),
    ],
)
def test_client_errors_are_not_retried(hook, api, retry_waits, status, error_type):
    route = api.post(CHAT_URL).mock(
        return_value=httpx.Response(status, json={"message": "You've run out of credits", "requestId": "req-9"})
    )
    with pytest.raises(error_type) as raised:
        hook.chat_completion(MESSAGES, client_request_id="cid-1")
    assert route.call_count == 1
    assert retry_waits == []
    error = raised.value
    assert error.status_code == status
    assert error.api_request_id == "req-9"
    assert error.client_request_id == "cid-1"
    assert "You've run out of credits" in str(error)


def test_retries_stop_after_max_retries_and_raise_the_last_error(hook, api, retry_waits):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(429, json={"message": "Too Many Requests"}))
    with pytest.raises(AimlRateLimitError, match="Too Many Requests"):
        hook.chat_completion(MESSAGES)
    assert route.call_count == 3  # the first try + max_retries=2 from the connection
    assert len(retry_waits) == 2
    assert 0.5 <= retry_waits[0] <= 1.0
    assert 1.0 <= retry_waits[1] <= 2.0


def test_retry_after_is_honoured(hook, api, retry_waits):
    api.post(CHAT_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "7"}, json={"message": "slow down"}),
            httpx.Response(200, json=completion()),
        ]
    )
    hook.chat_completion(MESSAGES)
    assert retry_waits == [7.0]


def test_retry_is_logged_with_its_cause(hook, api, capsys):
    api.post(CHAT_URL).mock(side_effect=[httpx.Response(503, text=""), httpx.Response(200, json=completion())])
    hook.chat_completion(MESSAGES, client_request_id="cid-2")
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert any("cid-2" in w and "503" in w and "retry 1 of 2" in w for w in warnings)


@pytest.mark.parametrize(
    ("failure", "error_type"),
    [(httpx.ConnectError("refused"), AimlTransportError), (httpx.ReadTimeout("slow"), AimlTimeoutError)],
)
def test_network_failures_are_retried_then_raised_as_provider_errors(hook, api, failure, error_type):
    route = api.post(CHAT_URL).mock(side_effect=failure)
    with pytest.raises(error_type):
        hook.chat_completion(MESSAGES)
    assert route.call_count == 3


def test_max_retries_zero_means_one_try(api):
    hook = AimlApiHook(retry_policy=RetryPolicy(max_retries=0))
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(500, text="boom"))
    with pytest.raises(AimlServerError):
        hook.chat_completion(MESSAGES)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<html><head><title>502 Bad Gateway</title></head></html>", "text/html", "HTML page: 502 Bad Gateway"),
        (b"", "application/json", "AI/ML API error 500 Internal Server Error"),
        (b'{"message": "Internal server error", "statusCode": "500"}', "application/json", "Internal server error"),
    ],
)
def test_error_bodies_of_any_shape_become_clear_errors(hook, api, body, content_type, expected):
    api.post(CHAT_URL).mock(
        return_value=httpx.Response(
            500 if b"502" not in body else 502, content=body, headers={"content-type": content_type}
        )
    )
    with pytest.raises(AimlServerError) as raised:
        hook.chat_completion(MESSAGES)
    assert expected in str(raised.value)


def test_a_200_with_a_broken_body_is_a_response_error_not_a_traceback(hook, api):
    api.post(CHAT_URL).mock(return_value=httpx.Response(200, content=b'{"choices": [{"mess'))
    with pytest.raises(AimlResponseError, match="not JSON"):
        hook.chat_completion(MESSAGES)


# --- async --------------------------------------------------------------------------------------------------


async def test_async_chat_completion_retries_like_the_sync_one(api, retry_waits):
    hook = AimlApiHook()
    route = api.post(CHAT_URL).mock(
        side_effect=[httpx.Response(502, text=""), httpx.Response(200, json=completion("async ok"))]
    )
    result = await hook.achat_completion(MESSAGES, temperature=1.0)
    await hook.aclose()
    assert result.content == "async ok"
    assert route.call_count == 2
    assert json.loads(route.calls.last.request.content)["temperature"] == 1.0
    assert len(retry_waits) == 1


async def test_async_validation_sends_nothing(api):
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(AimlParameterError, match="presence_penalty"):
        await AimlApiHook().achat_completion(MESSAGES, presence_penalty=3)
    assert route.call_count == 0


# --- streaming ----------------------------------------------------------------------------------------------


def test_stream_yields_deltas_then_the_same_result_as_non_streaming(hook, api):
    body = (FIXTURES / "chat.thinking.stream.sse").read_bytes()
    route = api.post(CHAT_URL).mock(return_value=stream_response(body))
    items = list(hook.stream_chat_completion(MESSAGES))
    deltas, result = items[:-1], items[-1]
    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert all(isinstance(d, StreamDelta) for d in deltas)
    assert isinstance(result, ChatCompletionResult)
    assert "".join(d.content for d in deltas) == result.content == "Hello! How can I assist you today?"
    assert "".join(d.reasoning for d in deltas) == result.reasoning
    assert result.reasoning.startswith("Okay, the user said")
    assert result.usage.reasoning_tokens == 82
    assert result.usage.total_tokens == 2023


def test_a_stream_cut_before_the_finish_reason_is_retried(hook, api, retry_waits):
    cut = sse(chunk(reasoning="Hmm"), chunk(content="Hel"))
    whole = sse(chunk(reasoning="Hmm"), chunk(content="Hello"), chunk(content="", finish="stop"))
    route = api.post(CHAT_URL).mock(side_effect=[stream_response(cut), stream_response(whole)])
    items = list(hook.stream_chat_completion(MESSAGES))
    assert route.call_count == 2
    assert items[-1].content == "Hello"
    assert [d.attempt for d in items[:-1]] == [1, 1, 2, 2, 2]


def test_a_stream_that_never_finishes_raises_after_the_retries(hook, api):
    route = api.post(CHAT_URL).mock(side_effect=lambda request: stream_response(sse(chunk(content="Hel"))))
    with pytest.raises(AimlStreamIncompleteError, match="without a finish reason"):
        list(hook.stream_chat_completion(MESSAGES))
    assert route.call_count == 3


def test_stream_error_status_is_raised_with_the_api_message(hook, api):
    route = api.post(CHAT_URL).mock(
        return_value=httpx.Response(401, json={"message": "This request requires a valid API key."})
    )
    with pytest.raises(AimlAuthenticationError, match="requires a valid API key"):
        list(hook.stream_chat_completion(MESSAGES))
    assert route.call_count == 1


def test_stream_stops_at_done(hook, api):
    body = sse(chunk(content="Hi"), chunk(content="", finish="stop"), done=True) + b"data: {not json}\n\n"
    api.post(CHAT_URL).mock(return_value=stream_response(body))
    assert list(hook.stream_chat_completion(MESSAGES))[-1].content == "Hi"


async def test_async_stream(api):
    body = sse(chunk(reasoning="think"), chunk(content="A"), chunk(content="B", finish="stop"))
    api.post(CHAT_URL).mock(return_value=stream_response(body))
    hook = AimlApiHook()
    items = [item async for item in hook.astream_chat_completion(MESSAGES)]
    await hook.aclose()
    assert [i.content for i in items[:-1]] == ["", "A", "B"]
    assert items[-1].content == "AB"
    assert items[-1].reasoning == "think"


# --- other endpoints ----------------------------------------------------------------------------------------


def test_list_models(hook, api):
    api.get(f"{TEST_BASE_URL}/models").mock(
        return_value=httpx.Response(200, json={"object": "list", "data": [{"id": "alibaba/qwen3-vl-32b-thinking"}]})
    )
    assert [m["id"] for m in hook.list_models()] == ["alibaba/qwen3-vl-32b-thinking"]


def test_test_connection_uses_the_billing_endpoint_and_makes_no_generation_call(hook, api):
    chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    billing = api.get("https://api.test.invalid/v2/billing").mock(
        return_value=httpx.Response(200, json={"current_balance": 12.5, "currency": "USD"})
    )
    api.get(f"{TEST_BASE_URL}/models").mock(return_value=httpx.Response(200, json={"data": [{"id": "a"}, {"id": "b"}]}))
    ok, message = hook.test_connection()
    assert ok, message
    assert "Balance: 12.50 USD" in message
    assert "2 models" in message
    assert billing.calls.last.request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert chat.call_count == 0


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401, json={"message": "This request requires a valid API key."}), "API key was rejected"),
        (httpx.Response(404, text="Not Found"), "does not look like the AI/ML API"),
        (httpx.ConnectError("Connection refused"), "Cannot reach"),
        (httpx.ConnectTimeout("timed out"), "Timed out"),
    ],
)
def test_test_connection_failures_say_what_is_wrong(hook, api, response, expected):
    route = api.get("https://api.test.invalid/v2/billing")
    if isinstance(response, Exception):
        route.mock(side_effect=response)
    else:
        route.mock(return_value=response)
    ok, message = hook.test_connection()
    assert not ok
    assert expected in message
    assert TEST_API_KEY not in message


def test_missing_key_names_the_connection(monkeypatch, api):
    monkeypatch.setenv("AIRFLOW_CONN_AIML_NOKEY", json.dumps({"conn_type": "aimlapi", "host": TEST_BASE_URL}))
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(AimlConfigurationError, match="'aiml_nokey' has no API key"):
        AimlApiHook(aiml_conn_id="aiml_nokey").chat_completion(MESSAGES)
    assert route.call_count == 0
    ok, message = AimlApiHook(aiml_conn_id="aiml_nokey").test_connection()
    assert not ok
    assert "aiml_nokey" in message


def test_uri_form_connection_with_string_extras(monkeypatch, api):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIML_URI",
        "aimlapi://:sk-uri-key-123@https%3A%2F%2Fapi.test.invalid%2Fv1?model=openai%2Fgpt-4o&timeout=30&max_retries=0",
    )
    route = api.post(CHAT_URL).mock(return_value=httpx.Response(500, text=""))
    hook = AimlApiHook(aiml_conn_id="aiml_uri")
    assert hook.settings.timeout == 30.0
    assert hook.settings.max_retries == 0
    with pytest.raises(AimlServerError):
        hook.chat_completion(MESSAGES)
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content)["model"] == "openai/gpt-4o"
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-uri-key-123"


# --- the key never leaks ------------------------------------------------------------------------------------


def test_key_is_in_no_repr_error_or_log(hook, api, capsys):
    api.post(CHAT_URL).mock(
        side_effect=[
            httpx.Response(503, text=f"echo {TEST_API_KEY[:4]}"),
            httpx.Response(401, json={"message": "This request requires a valid API key."}),
        ]
    )
    with pytest.raises(AimlApiError) as raised:
        hook.chat_completion(MESSAGES)
    error = raised.value
    texts = [repr(hook), repr(hook.settings), str(hook.settings), str(error), repr(error), repr(hook.get_conn())]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    texts.append(pickle.dumps(error).decode("latin-1"))
    assert not [t for t in texts if TEST_API_KEY in t]


def test_key_is_registered_with_the_secret_masker(hook):
    from airflow.sdk._shared.secrets_masker import redact

    hook.settings  # noqa: B018 - reading the settings registers the key
    assert redact(f"key={TEST_API_KEY}") == "key=***"

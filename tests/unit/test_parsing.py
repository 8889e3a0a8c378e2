"""Reading the API's answers: completions, usage and cost, error bodies, SSE streams; and the error types."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlConfigurationError,
    AimlImageError,
    AimlNotFoundError,
    AimlOutputParseError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlResponseError,
    AimlServerError,
    AimlStatusError,
    AimlStreamIncompleteError,
    AimlTimeoutError,
    AimlTransportError,
    status_error_class,
)
from airflow_provider_aiml.hooks.parsing import (
    CallInfo,
    StreamAccumulator,
    parse_completion,
    parse_error,
    parse_usage,
    split_think_block,
)
from airflow_provider_aiml.models import CREDITS_PER_USD, ChatCompletionResult, StreamDelta, ToolCall, Usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aimlapi"
SEED = "alibaba/qwen3-vl-32b-thinking"
HEADERS = {"x-inference-id": "inf-123", "x-request-id": "req-456"}


def call(model: str = SEED, headers: dict[str, str] | None = None, latency_s: float = 0.0) -> CallInfo:
    return CallInfo(model, "dag:task:run:1", HEADERS if headers is None else headers, latency_s)


def completion(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    payload.update(overrides)
    return payload


def message_payload(message: dict[str, Any], finish_reason: str = "stop") -> bytes:
    return json.dumps(completion(choices=[{"index": 0, "finish_reason": finish_reason, "message": message}])).encode()


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **top: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    if delta is not None:
        choice["delta"] = delta
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "qwen3-32b", "choices": [choice], **top}


def feed(accumulator: StreamAccumulator, text: str) -> list[StreamDelta]:
    deltas = []
    for line in text.split("\n"):
        delta = accumulator.feed_line(line)
        if delta is not None:
            deltas.append(delta)
    return deltas


def sse(*chunks: dict[str, Any] | str) -> str:
    return "".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks)


def stream(text: str, model: str = "alibaba/qwen3-32b", attempt: int = 1, headers=None):
    accumulator = StreamAccumulator(call(model, headers=headers), attempt=attempt)
    deltas = feed(accumulator, text)
    return accumulator, deltas


# --- non-streaming: the documented fixture -------------------------------------------------------------------


def test_parse_completion_of_the_documented_thinking_response():
    body = (FIXTURES / "chat.thinking.nonstream.json").read_bytes()
    expected = json.loads(body)
    message = expected["choices"][0]["message"]

    result = parse_completion(body, call(latency_s=1.2345))

    assert isinstance(result, ChatCompletionResult)
    assert result.id == "chatcmpl-c612db5c-44e9-9e3c-8169-486161eeea86"
    assert result.model == "qwen3-vl-32b-thinking"
    assert result.requested_model == SEED
    assert result.content == message["content"]
    assert result.content.startswith("That's a profound question")
    assert result.reasoning == message["reasoning_content"]
    assert result.reasoning.startswith("Okay, the user asked")
    assert result.finish_reason == "stop"
    assert result.tool_calls == []
    # Legacy meta.usage.tokens_used has no documented unit: no cost.
    assert result.usage == Usage(
        prompt_tokens=19, completion_tokens=1241, total_tokens=1260, reasoning_tokens=654, credits_used=None
    )
    assert result.usage.usd_spent is None
    assert result.client_request_id == "dag:task:run:1"
    assert result.inference_id == "inf-123"
    assert result.request_id == "req-456"
    assert result.latency_s == 1.2345
    assert result.raw == expected


def test_response_summary_of_the_fixture():
    result = parse_completion((FIXTURES / "chat.thinking.nonstream.json").read_bytes(), call(latency_s=1.23456))

    assert result.response_summary() == {
        "id": "chatcmpl-c612db5c-44e9-9e3c-8169-486161eeea86",
        "model": "qwen3-vl-32b-thinking",
        "requested_model": SEED,
        "finish_reason": "stop",
        "client_request_id": "dag:task:run:1",
        "inference_id": "inf-123",
        "request_id": "req-456",
        "latency_s": 1.235,
        "tool_calls": [],
        "fallback_from": [],
    }


def test_fixture_cost_from_headers():
    headers = {**HEADERS, "x-aimlapi-credits-used": "2480", "x-aimlapi-usd-spent": "0.001240000"}

    result = parse_completion((FIXTURES / "chat.thinking.nonstream.json").read_bytes(), call(headers=headers))

    assert result.usage.credits_used == 2480
    assert result.usage.usd_spent == pytest.approx(0.00124)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (19, 1241)


# --- non-streaming: variant shapes ---------------------------------------------------------------------------


def test_reasoning_field_of_openrouter_style_families():
    result = parse_completion(message_payload({"role": "assistant", "content": "4", "reasoning": "2+2"}), call())

    assert (result.content, result.reasoning) == ("4", "2+2")


def test_reasoning_details_are_joined_when_no_reasoning_string():
    details = [
        {"type": "reasoning.text", "text": "First, ", "format": "unknown", "index": 0},
        {"type": "reasoning.text", "text": "then.", "format": "unknown", "index": 1},
    ]
    message = {"role": "assistant", "content": "ok", "reasoning": "", "reasoning_details": details}

    assert parse_completion(message_payload(message), call()).reasoning == "First, then."


def test_empty_reasoning_content_falls_back_to_reasoning():
    message = {"role": "assistant", "content": "ok", "reasoning_content": "", "reasoning": "thought"}

    assert parse_completion(message_payload(message), call()).reasoning == "thought"


def test_content_given_as_parts_is_joined():
    message = {"role": "assistant", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}

    assert parse_completion(message_payload(message), call()).content == "Hello"


def test_think_block_in_content_is_moved_to_reasoning():
    message = {"role": "assistant", "content": "<think>\nLet me see.\n</think>\n\nThe answer."}

    result = parse_completion(message_payload(message), call())

    assert (result.content, result.reasoning) == ("The answer.", "Let me see.")


def test_tool_calls_are_parsed_with_arguments_as_json_string():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}},
        ],
    }

    result = parse_completion(message_payload(message, finish_reason="tool_calls"), call())

    assert result.content == ""
    assert result.finish_reason == "tool_calls"
    assert [c.model_dump() for c in result.tool_calls] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'}},
    ]
    assert result.response_summary()["tool_calls"][1]["function"]["name"] == "get_time"


def test_anthropic_finish_reason_and_missing_usage():
    payload = completion(model="claude-sonnet-4-5-20250929", id="msg_01")
    payload["choices"][0]["finish_reason"] = "end_turn"
    del payload["usage"]

    result = parse_completion(json.dumps(payload).encode(), call("anthropic/claude-sonnet-4.5"))

    assert result.finish_reason == "end_turn"
    assert result.id == "msg_01"
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.usage == Usage()


def test_missing_model_and_id_fall_back():
    payload = completion()
    del payload["model"], payload["id"]

    result = parse_completion(json.dumps(payload).encode(), call("openai/gpt-4o"))

    assert (result.id, result.model) == ("", "openai/gpt-4o")


def test_extra_top_level_keys_are_tolerated():
    payload = completion(system_fingerprint=None, service_tier="default", meta=None)

    assert parse_completion(json.dumps(payload).encode(), call()).content == "Hi."


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html><head><title>502 Bad Gateway</title></head></html>", "not JSON: 'HTML page: 502 Bad Gateway'"),
        (b"", "not JSON"),
        (b'{"choices": [', "not JSON"),
        (b"[1, 2]", "JSON that is not an object: list"),
        (b'{"choices": []}', "no choices"),
        (b'{"message": "Internal server error", "statusCode": 500}', "no choices: Internal server error"),
        (b'{"choices": [{"message": "text"}]}', "choice without a message object"),
        (b'{"choices": [{"message": {"content": 5}}]}', "unexpected shape"),
        (b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}', "unexpected shape"),
        (b'{"choices": [{"message": {"content": "x", "tool_calls": ["c"]}}]}', "unexpected shape"),
    ],
)
def test_unreadable_answers_raise_response_error_with_ids(body, fragment):
    with pytest.raises(AimlResponseError) as caught:
        parse_completion(body, call())

    error = caught.value
    assert type(error) is AimlResponseError
    assert fragment in error.message
    assert error.client_request_id == "dag:task:run:1"
    assert error.inference_id == "inf-123"
    assert error.api_request_id == "req-456"


# --- usage and cost ------------------------------------------------------------------------------------------


def test_credits_per_usd_is_two_million():
    assert CREDITS_PER_USD == 2_000_000


@pytest.mark.parametrize(
    ("meta", "credits", "usd"),
    [
        ({"credits_used": 2480, "usd_spent": 0.00124}, 2480, 0.00124),
        ({"credits_used": 2574}, 2574, 0.001287),
        ({"credits_used": 120000}, 120000, 0.06),
        ({"usd_spent": 0.06}, 120000, 0.06),
        ({"usd_spent": 0.001287}, 2574, 0.001287),
        ({"credits_used": "2480", "usd_spent": "0.001240000"}, 2480, 0.00124),
        ({"tokens_used": 10383}, None, None),
        ({}, None, None),
        ({"credits_used": None, "usd_spent": None}, None, None),
        ({"credits_used": "n/a"}, None, None),
        ({"credits_used": True}, None, None),
        (None, None, None),
    ],
)
def test_cost_from_meta_usage_variants(meta, credits, usd):
    usage = parse_usage({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}, meta, {})

    assert usage.credits_used == credits
    assert (usage.usd_spent is None) == (usd is None)
    if usd is not None:
        assert usage.usd_spent == pytest.approx(usd, rel=1e-12)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1, 2, 3)


@pytest.mark.parametrize(
    ("headers", "credits", "usd"),
    [
        ({"x-aimlapi-credits-used": "2480", "x-aimlapi-usd-spent": "0.001240000"}, 2480, 0.00124),
        ({"x-aimlapi-credits-used": "2574"}, 2574, 0.001287),
        ({"x-aimlapi-usd-spent": "0.060000000"}, 120000, 0.06),
    ],
)
def test_cost_from_headers(headers, credits, usd):
    usage = parse_usage({}, None, headers)

    assert usage.credits_used == credits
    assert usage.usd_spent == pytest.approx(usd, rel=1e-12)


def test_headers_win_over_meta_usage():
    usage = parse_usage({}, {"credits_used": 1, "usd_spent": 0.0000005}, {"x-aimlapi-credits-used": "2480"})

    assert (usage.credits_used, usage.usd_spent) == (2480, pytest.approx(0.00124))


def test_credits_are_integers_after_conversion():
    usage = parse_usage({}, {"usd_spent": 0.0000012}, {})

    assert usage.credits_used == 2
    assert isinstance(usage.credits_used, int)


def test_token_counts_and_reasoning_tokens():
    usage = parse_usage(
        {
            "prompt_tokens": 19,
            "completion_tokens": 1241,
            "total_tokens": 1260,
            "prompt_tokens_details": None,
            "completion_tokens_details": {"reasoning_tokens": 654, "text_tokens": 587},
        },
        None,
        {},
    )

    assert usage == Usage(prompt_tokens=19, completion_tokens=1241, total_tokens=1260, reasoning_tokens=654)


@pytest.mark.parametrize(
    ("details", "cached"),
    [({"cached_tokens": 1024, "text_tokens": 1200}, 1024), ({"cached_tokens": None}, 0), ({}, 0), (None, 0)],
)
def test_cached_tokens_from_the_prompt_details(details, cached):
    usage = {"prompt_tokens": 1200, "completion_tokens": 5, "total_tokens": 1205, "prompt_tokens_details": details}
    assert parse_usage(usage, None, {}).cached_tokens == cached
    assert parse_usage({"prompt_tokens": 1200}, None, {}).cached_tokens == 0  # no details at all


def test_a_stream_keeps_the_cached_tokens_of_its_usage_chunk():
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 5,
        "total_tokens": 1205,
        "prompt_tokens_details": {"cached_tokens": 1024},
    }
    accumulator, _ = stream(sse(chunk({"content": "Hi"}), chunk({}, "stop"), {"choices": [], "usage": usage}))
    assert accumulator.finish().usage == Usage(
        prompt_tokens=1200, completion_tokens=5, total_tokens=1205, cached_tokens=1024
    )


def test_legacy_anthropic_usage_keys_and_computed_total():
    usage = parse_usage({"input_tokens": 16, "output_tokens": 137, "state": "done"}, None, {})

    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (16, 137, 153)


@pytest.mark.parametrize("usage", [None, {}, "n/a", {"completion_tokens_details": None}])
def test_absent_usage_is_zero(usage):
    assert parse_usage(usage, None, {}) == Usage()


def test_usage_addition():
    first = Usage(prompt_tokens=19, completion_tokens=1241, total_tokens=1260, reasoning_tokens=654, credits_used=2480)
    second = Usage(prompt_tokens=13, completion_tokens=2010, total_tokens=2023, reasoning_tokens=82)

    total = first + second

    assert total == Usage(
        prompt_tokens=32, completion_tokens=3251, total_tokens=3283, reasoning_tokens=736, credits_used=2480
    )
    assert total.usd_spent is None
    assert (Usage() + Usage()).credits_used is None
    assert (Usage(usd_spent=0.5) + Usage(usd_spent=0.25)).usd_spent == 0.75


# --- error bodies --------------------------------------------------------------------------------------------


def test_documented_legacy_error_body_without_commas():
    body = (FIXTURES / "error.documented-legacy.429.txt").read_bytes()

    error = parse_error(429, {"x-inference-id": "inf-9"}, body, "cid-1")

    assert type(error) is AimlRateLimitError
    assert error.status_code == 429
    assert error.message == (
        "AI/ML API error 429 Too Many Requests: Free-tier limit: You've reached your free limit for the hour. "
        "Get AI/ML Subscription to use API, visit https://aimlapi.com/app/billing/ !"
    )
    assert error.api_request_id == "798b860e-98c2-4e8e-8c50-550bcfc2eccc"
    assert error.client_request_id == "cid-1"
    assert error.inference_id == "inf-9"
    assert error.retry_after is None
    assert str(error).endswith(
        "(HTTP 429, client request id cid-1, API request id 798b860e-98c2-4e8e-8c50-550bcfc2eccc, inference id inf-9)"
    )


def test_observed_problem_json_error_body():
    body = (FIXTURES / "error.observed-problem-json.401.json").read_bytes()

    error = parse_error(401, {"x-request-id": "hdr-req"}, body, "cid-1")

    assert type(error) is AimlAuthenticationError
    assert error.message == (
        "AI/ML API error 401 Unauthorized: You provided an empty string instead of valid API key. "
        "You can create a new API key on the Billing page: https://aimlapi.com/app/keys"
    )
    # The body's requestId is the elision "...": the header's id is used instead.
    assert error.api_request_id == "hdr-req"


def test_status_comes_from_the_http_line_not_the_body():
    body = b'{"message": "Too Many Requests", "statusCode": "429"}'

    error = parse_error(503, {}, body, None)

    assert type(error) is AimlServerError
    assert error.status_code == 503


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"name": "X", "message": "nested text"}}', "nested text"),
        (b'{"error": "plain error"}', "plain error"),
        (b'{"title": "Unauthorized", "error": {"message": "..."}}', "Unauthorized"),
        (b'{"detail": "from detail"}', "from detail"),
        (b'{"foo": 1}', '{"foo": 1}'),
        (b'"just a string"', '"just a string"'),
        (b"upstream   connect\n error", "upstream connect error"),
        (b"<html><body><h1>Service Unavailable</h1></body></html>", "HTML page: Service Unavailable"),
        (b"<html><body><p>oops</p></body></html>", "HTML page without a message"),
    ],
)
def test_error_message_shapes(body, message):
    error = parse_error(500, {}, body, None)

    assert error.message == f"AI/ML API error 500 Internal Server Error: {message}"


@pytest.mark.parametrize("body", [b"", b"   \n", b"\r\n\t"])
def test_empty_error_body(body):
    error = parse_error(502, {}, body, None)

    assert error.message == "AI/ML API error 502 Bad Gateway"
    assert str(error) == "AI/ML API error 502 Bad Gateway (HTTP 502)"


def test_error_keeps_retry_after_and_request_id_from_body():
    error = parse_error(429, {"retry-after": "7"}, b'{"message": "slow down", "request_id": "r-9"}', None)

    assert error.retry_after == "7"
    assert error.api_request_id == "r-9"


def test_long_error_message_is_clipped():
    error = parse_error(400, {}, json.dumps({"message": "x" * 1000}).encode(), None)

    detail = error.message.split(": ", 1)[1]
    assert len(detail) == 300
    assert detail.endswith("...")


def test_error_never_includes_request_headers():
    error = parse_error(401, {"authorization": "Bearer sk-secret"}, b'{"message": "bad key"}', None)

    assert "sk-secret" not in str(error)
    assert "sk-secret" not in repr(error.__dict__)


# --- error types ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, AimlBadRequestError),
        (401, AimlAuthenticationError),
        (403, AimlPermissionError),
        (404, AimlNotFoundError),
        (409, AimlStatusError),
        (418, AimlStatusError),
        (422, AimlBadRequestError),
        (429, AimlRateLimitError),
        (500, AimlServerError),
        (502, AimlServerError),
        (503, AimlServerError),
        (504, AimlServerError),
        (599, AimlServerError),
    ],
)
def test_status_error_class(status, cls):
    assert status_error_class(status) is cls
    assert type(parse_error(status, {}, b"", None)) is cls


def test_error_hierarchy():
    for cls in (AimlConfigurationError, AimlParameterError, AimlTransportError, AimlResponseError):
        assert issubclass(cls, AimlApiError)
    assert issubclass(AimlApiError, AirflowException)
    assert issubclass(AimlParameterError, ValueError)
    assert issubclass(AimlImageError, AimlParameterError)
    assert issubclass(AimlTimeoutError, AimlTransportError)
    assert issubclass(AimlStreamIncompleteError, AimlResponseError)
    assert issubclass(AimlRateLimitError, AimlStatusError)
    assert not issubclass(AimlOutputParseError, AimlResponseError)


def test_error_description_lists_only_known_ids():
    assert str(AimlApiError("plain")) == "plain"
    assert str(AimlApiError("m", status_code=500, inference_id="i")) == "m (HTTP 500, inference id i)"


@pytest.mark.parametrize(
    "error",
    [
        AimlRateLimitError(
            "slow down",
            status_code=429,
            client_request_id="cid",
            api_request_id="api",
            inference_id="inf",
            retry_after="3",
        ),
        AimlParameterError("bad 'seed'"),
        AimlStreamIncompleteError("cut", client_request_id="cid"),
        AimlApiError("base", status_code=None),
    ],
)
def test_errors_survive_pickling(error):
    clone = pickle.loads(pickle.dumps(error))

    assert type(clone) is type(error)
    assert clone.__dict__ == error.__dict__
    for name in ("message", "status_code", "client_request_id", "api_request_id", "inference_id", "retry_after"):
        assert getattr(clone, name) == getattr(error, name)
    assert str(clone) == str(error)
    assert clone.args == error.args


def test_parsed_error_survives_pickling():
    error = parse_error(429, {"retry-after": "2"}, (FIXTURES / "error.documented-legacy.429.txt").read_bytes(), "c")

    clone = pickle.loads(pickle.dumps(error))

    assert type(clone) is AimlRateLimitError
    assert (clone.status_code, clone.retry_after, clone.api_request_id) == (
        429,
        "2",
        "798b860e-98c2-4e8e-8c50-550bcfc2eccc",
    )
    assert str(clone) == str(error)


# --- think blocks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reasoning", "expected"),
    [
        ("<think>plan</think>answer", "", ("answer", "plan")),
        ("  <think>\n plan \n</think>\n\n answer ", "", ("answer ", "plan")),
        ("<think>still thinking", "", ("", "still thinking")),
        ("<think>a</think>b", "given", ("<think>a</think>b", "given")),
        ("answer <think>x</think>", "", ("answer <think>x</think>", "")),
        ("", "", ("", "")),
    ],
)
def test_split_think_block(content, reasoning, expected):
    assert split_think_block(content, reasoning) == expected


# --- streams: the documented transcripts ---------------------------------------------------------------------


def test_qwen_thinking_stream_fixture():
    text = (FIXTURES / "chat.thinking.stream.sse").read_text()

    accumulator, deltas = stream(text, attempt=2)
    result = accumulator.finish()

    assert [d.reasoning for d in deltas[:4]] == [
        "Okay",
        ",",
        " the",
        ' user said "Hello". I should respond in a friendly and welcoming manner. Let',
    ]
    assert [d.content for d in deltas if d.content] == ["Hello! How can I assist you today?"]
    assert deltas[-1] == StreamDelta(finish_reason="stop", attempt=2)
    assert len(deltas) == 10
    assert all(d.attempt == 2 for d in deltas)
    assert not any(d.content and d.reasoning for d in deltas)

    assert result.id == "chatcmpl-81964e30-1a7c-9668-b78c-a750587ec497"
    assert result.model == "qwen3-32b"
    assert result.requested_model == "alibaba/qwen3-32b"
    assert result.content == "Hello! How can I assist you today?"
    assert result.reasoning.startswith('Okay, the user said "Hello".')
    assert result.reasoning.endswith("Alright, that should work.")
    assert result.finish_reason == "stop"
    assert result.usage == Usage(prompt_tokens=13, completion_tokens=2010, total_tokens=2023, reasoning_tokens=82)
    assert result.inference_id == "inf-123"
    assert result.client_request_id == "dag:task:run:1"
    assert accumulator.chunks == 12
    assert accumulator.done is False
    assert result.raw == {
        "id": "chatcmpl-81964e30-1a7c-9668-b78c-a750587ec497",
        "object": "chat.completion",
        "model": "qwen3-32b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.content, "reasoning_content": result.reasoning},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 13,
            "completion_tokens": 2010,
            "total_tokens": 2023,
            "completion_tokens_details": {"reasoning_tokens": 82},
        },
    }


def test_anthropic_stream_fixture():
    text = (FIXTURES / "chat.stream.anthropic.trimmed.sse").read_text()

    accumulator, deltas = stream(text, model="anthropic/claude-sonnet-4.5")
    result = accumulator.finish()

    assert [d.content for d in deltas if d.content] == ["I think humanity", " is fascinating"]
    assert result.id == "msg_01EJgFbPmVLKdqVLRfwoHixz"  # later chunks carry id ""
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.content == "I think humanity is fascinating"
    assert result.reasoning == ""
    assert result.finish_reason == "stop"
    # Usage rides on the finish chunk; the trailing chunk's usage null does not erase it.
    assert result.usage == Usage(prompt_tokens=16, completion_tokens=137, total_tokens=153)
    assert accumulator.chunks == 7


def test_stream_without_final_blank_line_is_dispatched_at_eof():
    text = (FIXTURES / "chat.stream.anthropic.trimmed.sse").read_text().rstrip("\n")

    accumulator, _ = stream(text)

    assert accumulator.finish().usage.total_tokens == 153


def test_stream_result_matches_non_stream_shape():
    text = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        {"id": "chatcmpl-s", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}},
    )
    accumulator, _ = stream(text)
    streamed = accumulator.finish()
    plain = parse_completion(
        json.dumps(
            completion(
                id="chatcmpl-s",
                model="qwen3-32b",
                choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello"}}],
            )
        ).encode(),
        call("alibaba/qwen3-32b"),
    )

    assert streamed.model_dump(exclude={"raw"}) == plain.model_dump(exclude={"raw"})


# --- streams: framing ----------------------------------------------------------------------------------------


def test_done_line_ends_the_stream():
    accumulator, deltas = stream(sse(chunk({"content": "Hi"}), chunk({}, "stop"), "[DONE]"))

    assert accumulator.done is True
    assert [d.content for d in deltas] == ["Hi", ""]
    assert accumulator.finish().content == "Hi"


def test_comments_other_fields_and_data_without_space():
    text = ": keep-alive\nevent: message\nid: 7\nretry: 10\ndata:" + json.dumps(chunk({"content": "A"})) + "\n\n"
    text += sse(chunk({"content": "B"}, "stop"))

    accumulator, deltas = stream(text)

    assert [d.content for d in deltas] == ["A", "B"]
    assert accumulator.chunks == 2
    assert accumulator.finish().content == "AB"


def test_event_split_over_several_data_lines():
    payload = json.dumps(chunk({"content": "multi"}, "stop"), indent=1)
    text = "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"

    accumulator, deltas = stream(text)

    assert [d.content for d in deltas] == ["multi"]
    assert accumulator.finish().content == "multi"


def test_blank_lines_alone_do_nothing():
    accumulator, deltas = stream("\n\n\n")

    assert deltas == []
    assert accumulator.chunks == 0


def test_chunks_without_delta_or_content_give_no_delta():
    accumulator, deltas = stream(
        sse(
            chunk(None),
            chunk({"content": None, "reasoning_content": None}),
            chunk({"role": "assistant"}),
            chunk({"content": "x"}, "length"),
        )
    )

    assert deltas == [StreamDelta(content="x", finish_reason="length")]
    assert accumulator.finish().finish_reason == "length"


# --- streams: failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        sse(chunk({"content": "Hel"}), chunk({"content": "lo"})),
        sse(chunk({"content": "Hel"}), {"id": "x", "choices": [], "usage": {"total_tokens": 3}}),
    ],
)
def test_stream_without_finish_reason_is_incomplete(text):
    accumulator, _ = stream(text)

    with pytest.raises(AimlStreamIncompleteError) as caught:
        accumulator.finish()

    assert "without a finish reason" in caught.value.message
    assert caught.value.client_request_id == "dag:task:run:1"
    assert caught.value.inference_id == "inf-123"


def test_stream_cut_in_the_middle_of_an_event_is_incomplete():
    accumulator, _ = stream(sse(chunk({"content": "Hel"})) + 'data: {"id": "x", "choi')

    with pytest.raises(AimlStreamIncompleteError, match="ended in the middle of an event"):
        accumulator.finish()


def test_bad_json_event_mid_stream_is_a_response_error():
    accumulator = StreamAccumulator(call())
    accumulator.feed_line("data: {not json")

    with pytest.raises(AimlResponseError) as caught:
        accumulator.feed_line("")

    assert type(caught.value) is AimlResponseError
    assert "not JSON: '{not json'" in caught.value.message
    assert caught.value.client_request_id == "dag:task:run:1"


def test_non_object_event_is_a_response_error():
    accumulator = StreamAccumulator(call())
    accumulator.feed_line("data: [1, 2]")

    with pytest.raises(AimlResponseError, match="not a JSON object"):
        accumulator.feed_line("")


def test_chunk_with_bad_shape_is_a_response_error():
    accumulator = StreamAccumulator(call())
    accumulator.feed_line('data: {"choices": {"0": 1}}')

    with pytest.raises(AimlResponseError, match="unexpected shape"):
        accumulator.feed_line("")


def test_error_event_in_the_stream():
    accumulator = StreamAccumulator(call())
    accumulator.feed_line('data: {"error": {"message": "upstream failed"}}')

    with pytest.raises(AimlResponseError, match="The API reported an error in the stream: upstream failed"):
        accumulator.feed_line("")


# --- streams: tool calls, usage, cost ------------------------------------------------------------------------


def test_tool_call_deltas_are_merged_by_index():
    text = sse(
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
    )

    accumulator, deltas = stream(text)
    result = accumulator.finish()

    assert result.tool_calls == [
        ToolCall.model_validate(
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
        ),
        ToolCall.model_validate(
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
        ),
    ]
    assert result.finish_reason == "tool_calls"
    assert result.content == ""
    assert deltas[1].tool_calls == [{"index": 0, "function": {"arguments": '{"city":'}}]
    assert result.raw["choices"][0]["message"]["tool_calls"] == [c.model_dump() for c in result.tool_calls]


def test_usage_on_a_last_empty_choices_chunk_and_cost_in_meta_usage():
    text = sse(
        chunk({"content": "ok"}),
        chunk({}, "stop"),
        {
            "id": "",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            "meta": {"usage": {"credits_used": 2480, "usd_spent": 0.00124}},
        },
    )

    accumulator, _ = stream(text)
    result = accumulator.finish()

    assert result.usage == Usage(
        prompt_tokens=3, completion_tokens=4, total_tokens=7, credits_used=2480, usd_spent=0.00124
    )
    assert result.raw["meta"] == {"usage": {"credits_used": 2480, "usd_spent": 0.00124}}


def test_think_block_streamed_in_content_is_split_at_the_end():
    accumulator, _ = stream(
        sse(chunk({"content": "<thi"}), chunk({"content": "nk>hmm</think>"}), chunk({"content": "Yes."}, "stop"))
    )

    result = accumulator.finish()

    assert (result.content, result.reasoning) == ("Yes.", "hmm")

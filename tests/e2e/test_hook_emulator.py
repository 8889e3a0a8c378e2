"""The hook against the emulator over real HTTP: model families, cost variants, faults, connection test."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlResponseError,
    AimlStreamIncompleteError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import ChatCompletionResult
from airflow_provider_aiml.testing import AimlApiEmulator, Fault

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Explain what a thinking model does differently. Keep it short."},
]


def connect(monkeypatch: pytest.MonkeyPatch, emulator: AimlApiEmulator, **extra: object) -> AimlApiHook:
    conn = {"conn_type": "aimlapi", "password": "sk-good-key", "host": emulator.base_url, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_EMU", json.dumps(conn))
    return AimlApiHook(aiml_conn_id="aiml_emu")


def streamed(hook: AimlApiHook) -> ChatCompletionResult:
    result = list(hook.stream_chat_completion(MESSAGES))[-1]
    assert isinstance(result, ChatCompletionResult)
    return result


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think_tag"])
def test_every_reasoning_style_gives_the_same_content_and_reasoning(monkeypatch, aiml_emulator, style):
    hook = connect(monkeypatch, aiml_emulator)
    aiml_emulator.settings.reasoning_style = "reasoning_content"
    reference = hook.chat_completion(MESSAGES)
    aiml_emulator.settings.reasoning_style = style

    plain = hook.chat_completion(MESSAGES)
    stream = streamed(hook)

    assert reference.reasoning.startswith("The user wants")
    for result in (plain, stream):
        assert (result.content, result.reasoning) == (reference.content, reference.reasoning)
        assert "<think>" not in result.content


@pytest.mark.parametrize(
    ("meta_usage", "cost_headers", "has_cost"),
    [
        ("credits_and_usd", True, True),
        ("credits_and_usd", False, True),
        ("credits_only", False, True),
        ("tokens_used", False, False),
        (None, False, False),
    ],
)
def test_cost_from_headers_or_each_meta_usage_variant(monkeypatch, aiml_emulator, meta_usage, cost_headers, has_cost):
    aiml_emulator.settings.meta_usage = meta_usage
    aiml_emulator.settings.cost_headers = cost_headers
    usage = connect(monkeypatch, aiml_emulator).chat_completion(MESSAGES).usage

    assert usage.reasoning_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if has_cost:
        assert usage.credits_used is not None
        assert usage.credits_used > 0
        assert usage.usd_spent == pytest.approx(usage.credits_used / 2_000_000)
    else:
        assert (usage.credits_used, usage.usd_spent) == (None, None)


def test_streamed_and_plain_usage_match(monkeypatch, aiml_emulator):
    hook = connect(monkeypatch, aiml_emulator)
    plain = hook.chat_completion(MESSAGES).usage
    without_cost = streamed(hook).usage  # no transcript shows cost in a stream: the emulator sends none by default
    assert without_cost == plain.model_copy(update={"credits_used": None, "usd_spent": None})
    aiml_emulator.settings.stream_cost = True  # the request-tracing page's final-chunk meta.usage
    assert streamed(hook).usage == plain


@pytest.mark.parametrize("send_done", [True, False])
def test_stream_ends_on_done_or_end_of_body(monkeypatch, aiml_emulator, send_done):
    aiml_emulator.settings.send_done = send_done
    result = streamed(connect(monkeypatch, aiml_emulator))
    assert result.finish_reason == "stop"
    assert result.content.startswith("Summary:")


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault.end_stream_early(after_chunks=4), AimlStreamIncompleteError),
        (Fault.cut_stream(after_chunks=4), AimlTransportError),
        (Fault.reset(), AimlTransportError),
    ],
)
def test_broken_streams_are_retried_until_the_budget_is_spent(monkeypatch, aiml_emulator, fault, error_type):
    hook = connect(monkeypatch, aiml_emulator, max_retries=2)
    aiml_emulator.add_fault(fault, times=1)
    assert streamed(hook).finish_reason == "stop"
    assert len(aiml_emulator.chat_requests) == 2

    aiml_emulator.reset()
    aiml_emulator.add_fault(fault, times=3)
    with pytest.raises(error_type):
        streamed(hook)
    assert len(aiml_emulator.chat_requests) == 3


def test_malformed_json_is_a_clear_error_and_not_retried(monkeypatch, aiml_emulator):
    aiml_emulator.add_fault(Fault.malformed_json())
    with pytest.raises(AimlResponseError, match="not JSON"):
        connect(monkeypatch, aiml_emulator).chat_completion(MESSAGES)
    assert len(aiml_emulator.chat_requests) == 1


def test_a_slow_answer_times_out_and_is_retried(monkeypatch, aiml_emulator):
    hook = connect(monkeypatch, aiml_emulator, timeout=0.3, max_retries=1)
    aiml_emulator.add_fault(Fault.delay(2.0), times=2)
    with pytest.raises(AimlTimeoutError, match=r"within 0\.3s"):
        hook.chat_completion(MESSAGES)
    assert len(aiml_emulator.chat_requests) == 2


def test_each_error_body_shape_gives_the_api_message(monkeypatch, aiml_emulator):
    hook = connect(monkeypatch, aiml_emulator, max_retries=0)
    for body in ("legacy", "problem"):
        aiml_emulator.add_fault(Fault.status(401, body=body, message="This request requires a valid API key."))
        with pytest.raises(AimlAuthenticationError, match="requires a valid API key") as raised:
            hook.chat_completion(MESSAGES)
        assert raised.value.status_code == 401
        assert raised.value.inference_id


async def test_async_call_against_the_emulator(monkeypatch, aiml_emulator):
    hook = connect(monkeypatch, aiml_emulator)
    aiml_emulator.add_fault(Fault.status(503))
    result = await hook.achat_completion(MESSAGES, temperature=0.2)
    items = [item async for item in hook.astream_chat_completion(MESSAGES)]
    await hook.aclose()
    assert result.content == items[-1].content
    assert len(aiml_emulator.chat_requests) == 3


def test_connection_test_with_a_good_key(monkeypatch):
    with AimlApiEmulator(api_keys={"sk-good-key"}, balance_usd=17.25) as emulator:
        ok, message = connect(monkeypatch, emulator).test_connection()
        assert emulator.chat_requests == []
        base_url = emulator.base_url
    assert ok
    assert message.startswith(f"API key accepted by {base_url}.")
    assert "Balance: 17.25 USD." in message
    assert "models available" in message


def test_connection_test_with_a_bad_key(monkeypatch):
    with AimlApiEmulator(api_keys={"sk-other-key"}) as emulator:
        ok, message = connect(monkeypatch, emulator).test_connection()
    assert not ok
    assert message.startswith("The API key was rejected")
    assert "sk-good-key" not in message


def test_connection_test_with_nothing_listening(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = {"conn_type": "aimlapi", "password": "sk-good-key", "host": f"http://127.0.0.1:{port}/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_DOWN", json.dumps(conn))
    ok, message = AimlApiHook(aiml_conn_id="aiml_down").test_connection()
    assert not ok
    assert message.startswith(f"Cannot reach http://127.0.0.1:{port}/v1")


def test_list_models_includes_the_seed_model(monkeypatch, aiml_emulator):
    ids = [model["id"] for model in connect(monkeypatch, aiml_emulator).list_models()]
    assert "alibaba/qwen3-vl-32b-thinking" in ids


def test_an_anthropic_model_is_read_the_same_streamed_or_not(monkeypatch, aiml_emulator):
    """The Anthropic shapes (``msg_`` ids then ``""``, usage on the finish chunk, a trailing finish chunk,
    ``end_turn``) give the same content and token counts as one answer."""
    hook = connect(monkeypatch, aiml_emulator, model="anthropic/claude-sonnet-4.5")
    whole = hook.chat_completion(MESSAGES)
    stream = streamed(hook)

    assert whole.id.startswith("msg_")
    assert stream.id.startswith("msg_")
    assert whole.finish_reason == "end_turn"
    assert stream.finish_reason == "stop"
    assert stream.content == whole.content
    assert whole.content
    assert stream.usage.total_tokens == whole.usage.total_tokens > 0
    assert stream.usage.usd_spent is None  # no cost in a stream unless the emulator is asked for it
    aiml_emulator.settings.stream_cost = True
    assert streamed(hook).usage.usd_spent == whole.usage.usd_spent

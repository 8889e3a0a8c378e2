"""Regression tests for the provider bugs the property-based tests found, one minimal reproduction each.

Each was first committed as a strict xfail, then fixed: a value JSON cannot carry, a malformed message or tool
call, a URL that is not one, a tool_choice naming no tool (all now a parameter error before anything is sent),
and garbage numbers in an answer (a cost that is not a finite number is left unknown and the answer kept; a token
count that is not one, or a bad final stream state, is a response error). If a new gap is found, reproduce it
here and add it to ``KNOWN_GAPS`` in the fuzz module that found it until it is fixed.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import AimlParameterError, AimlResponseError
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from tests.airflow_env import TEST_BASE_URL

CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
HI = [{"role": "user", "content": "hi"}]
ANSWER = {"id": "c", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))


@pytest.fixture
def hook() -> AimlApiHook:
    return AimlApiHook(log_calls=False)


def rejected(hook: AimlApiHook, api: respx.Route, named: str, messages=HI, **kwargs) -> None:
    """The call must fail with a validation error naming ``named`` before anything is sent."""
    with pytest.raises(AimlParameterError, match=named):
        hook.chat_completion(messages, **kwargs)
    assert api.call_count == 0


# --- requests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra_body": {"thinking_budget": float("nan")}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"default": float("inf")}}}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "weight": float("nan")}]}]},
    ],
    ids=["extra_body", "tool-parameters", "message-part"],
)
def test_b1_non_finite_floats_anywhere_are_a_parameter_error(hook, api, kwargs):
    kwargs = dict(kwargs)
    messages = kwargs.pop("messages", HI)
    rejected(hook, api, "extra_body|tools|messages", messages=messages, **kwargs)


@pytest.mark.parametrize("value", [{"openai"}, b"bytes", datetime(2026, 1, 1)], ids=["set", "bytes", "datetime"])
def test_b2_values_json_cannot_encode_are_a_parameter_error(hook, api, value):
    rejected(hook, api, "extra_body", extra_body={"provider": value})


@pytest.mark.parametrize(
    "messages",
    [[{"role": [], "content": "hi"}], [{"role": "user", "content": [{"type": {"x": 1}, "text": "hi"}]}]],
    ids=["role", "part-type"],
)
def test_b3_unhashable_role_or_part_type_is_a_parameter_error(hook, api, messages):
    rejected(hook, api, "messages", messages=messages)


def test_b4_a_non_string_message_name_is_rejected(hook, api):
    rejected(hook, api, r"messages\[0\]", messages=[{"role": "user", "content": "hi", "name": 5}])


@pytest.mark.parametrize("tool_calls", ["call it", [{"id": 1}]], ids=["string", "malformed-call"])
def test_b5_malformed_assistant_tool_calls_are_rejected(hook, api, tool_calls):
    messages = [*HI, {"role": "assistant", "content": None, "tool_calls": tool_calls}]
    rejected(hook, api, r"messages\[1\]", messages=messages)


@pytest.mark.parametrize("url", ["http://", "https://has space.com/x.png", "data:image/png;base64,@@@"])
def test_b6_an_image_url_that_is_not_a_url_is_rejected(hook, api, url):
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    rejected(hook, api, "image_url", messages=messages)


def test_b7_an_empty_tool_call_id_is_rejected(hook, api):
    rejected(hook, api, "tool_call_id", messages=[*HI, {"role": "tool", "content": "42", "tool_call_id": ""}])


def test_b8_a_tool_message_with_extra_keys_is_rejected(hook, api):
    messages = [*HI, {"role": "tool", "content": "42", "tool_call_id": "call_1", "refusal": "no"}]
    rejected(hook, api, r"messages\[1\]", messages=messages)


def test_b9_tool_choice_must_name_one_of_the_tools(hook, api):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    rejected(hook, api, "tool_choice", tools=tools, tool_choice={"type": "function", "function": {"name": "other"}})


# --- responses ----------------------------------------------------------------------------------------------


def answer(status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, content=body)


def sse(*chunks: dict) -> bytes:
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks).encode()


FINISH = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
STREAM = {"content-type": "text/event-stream"}


@pytest.mark.parametrize(
    ("reply", "stream"),
    [
        (answer(headers={"x-aimlapi-credits-used": "inf"}, body=json.dumps(ANSWER).encode()), False),
        (answer(headers={"x-aimlapi-credits-used": "nan"}, body=json.dumps(ANSWER).encode()), False),
        (answer(body=json.dumps({**ANSWER, "meta": {"usage": {"credits_used": 1e400}}}).encode()), False),
        (answer(headers={**STREAM, "x-aimlapi-usd-spent": "1e400"}, body=sse(FINISH)), True),
        (answer(headers={**STREAM, "x-aimlapi-credits-used": "nan"}, body=sse(FINISH)), True),
    ],
    ids=["credits-header-inf", "credits-header-nan", "meta-usage", "stream-usd-header", "stream-nan-cost"],
)
def test_r1_a_cost_that_is_not_a_finite_number_is_unknown_and_the_answer_kept(hook, reply, stream):
    with respx.mock() as router:
        router.post(CHAT_URL).mock(return_value=reply)
        result = list(hook.stream_chat_completion(HI))[-1] if stream else hook.chat_completion(HI)
    assert result.content == "ok"
    assert (result.usage.credits_used, result.usage.usd_spent) == (None, None)


def test_r1_a_token_count_that_is_not_finite_is_a_response_error(hook):
    body = json.dumps({**ANSWER, "usage": {"total_tokens": 1e400}}).encode()
    with respx.mock() as router:
        router.post(CHAT_URL).mock(return_value=answer(body=body))
        with pytest.raises(AimlResponseError, match="not a finite number"):
            hook.chat_completion(HI)


@pytest.mark.parametrize(
    ("headers", "chunks"),
    [
        ({}, [FINISH, {"id": "c", "choices": [], "usage": {"prompt_tokens": []}}]),
        (
            {},
            [
                {
                    **FINISH,
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [{"index": 0, "id": 7}]}, "finish_reason": "stop"}
                    ],
                }
            ],
        ),
    ],
    ids=["usage-not-a-number", "tool-call-id-not-a-string"],
)
def test_r2_a_bad_final_stream_state_is_a_response_error(hook, headers, chunks):
    with respx.mock() as router:
        router.post(CHAT_URL).mock(return_value=answer(headers={**STREAM, **headers}, body=sse(*chunks)))
        with pytest.raises(AimlResponseError):
            list(hook.stream_chat_completion(HI))

"""Non-streaming replies: shape, determinism, cost, reasoning styles, JSON modes, tools, overrides."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]


def _post(client: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    response = client.post("/chat/completions", json=payload)
    assert response.status_code == 200, response.text
    return response


def test_non_streaming_reply_has_the_documented_shape(client: httpx.Client, body: Body) -> None:
    response = _post(client, body())
    data = response.json()

    assert response.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"chatcmpl-[0-9a-f-]{36}", data["id"])
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "qwen3-vl-32b-thinking"  # the vendor prefix is dropped, like the real API
    assert data["system_fingerprint"] is None
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] == "Summary: Hi! What do you think about mankind?"
    assert message["reasoning_content"].startswith("The user wants")
    assert "reasoning" not in message

    usage = data["usage"]
    details = usage["completion_tokens_details"]
    assert details["reasoning_tokens"] > 0
    assert details["reasoning_tokens"] + details["text_tokens"] == usage["completion_tokens"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"]
    assert usage["prompt_tokens_details"] == {"text_tokens": usage["prompt_tokens"]}


def test_cost_headers_and_meta_usage_use_the_documented_rate(client: httpx.Client, body: Body) -> None:
    response = _post(client, body())
    data = response.json()
    credits = int(response.headers["x-aimlapi-credits-used"])

    assert credits == 2 * data["usage"]["total_tokens"]
    assert re.fullmatch(r"\d+\.\d{9}", response.headers["x-aimlapi-usd-spent"])
    assert float(response.headers["x-aimlapi-usd-spent"]) == pytest.approx(credits / 2_000_000)
    assert data["meta"]["usage"] == {"credits_used": credits, "usd_spent": pytest.approx(credits / 2_000_000)}
    uuid.UUID(response.headers["x-inference-id"])
    uuid.UUID(response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("variant", "keys"),
    [
        ("credits_and_usd", {"credits_used", "usd_spent"}),
        ("credits_only", {"credits_used"}),
        ("tokens_used", {"tokens_used"}),
    ],
)
def test_meta_usage_variants(client_for: ClientFor, body: Body, variant: Any, keys: set[str]) -> None:
    with AimlApiEmulator(meta_usage=variant) as emu:
        data = _post(client_for(emu), body()).json()
    assert set(data["meta"]["usage"]) == keys


def test_meta_usage_none_omits_meta_and_cost_headers_can_be_disabled(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(meta_usage=None, cost_headers=False) as emu:
        response = _post(client_for(emu), body())
    assert "meta" not in response.json()
    assert "x-aimlapi-credits-used" not in response.headers
    assert "x-aimlapi-usd-spent" not in response.headers
    assert "x-inference-id" in response.headers


def test_same_request_gives_the_same_reply(client: httpx.Client, body: Body) -> None:
    first = _post(client, body(temperature=0.2)).json()
    second = _post(client, body(temperature=0.2)).json()
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"]
    assert first["id"] != second["id"]


def test_summary_is_the_first_thirty_words_and_mentions_images(client: httpx.Client, body: Body) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    content = [
        {"type": "text", "text": words},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    data = _post(client, {**body(), "messages": [{"role": "user", "content": content}]}).json()
    text = data["choices"][0]["message"]["content"]
    assert text == "Summary: " + " ".join(f"w{i}" for i in range(30)) + "... (2 images attached)"
    assert data["usage"]["prompt_tokens_details"]["image_tokens"] == 2 * 85


def test_model_without_vendor_prefix_is_returned_unchanged(client: httpx.Client, body: Body) -> None:
    assert _post(client, body(model="gpt-4o")).json()["model"] == "gpt-4o"


def test_reasoning_style_reasoning(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(reasoning_style="reasoning") as emu:
        message = _post(client_for(emu), body()).json()["choices"][0]["message"]
    assert "reasoning_content" not in message
    assert message["reasoning"].startswith("The user wants")
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": message["reasoning"], "format": "unknown", "index": 0}
    ]
    assert message["content"].startswith("Summary: ")


def test_reasoning_style_think_tag(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(reasoning_style="think_tag") as emu:
        message = _post(client_for(emu), body()).json()["choices"][0]["message"]
    assert "reasoning_content" not in message
    assert "reasoning" not in message
    match = re.fullmatch(r"<think>\n(.+)\n</think>\n\n(.+)", message["content"], flags=re.DOTALL)
    assert match is not None
    assert match.group(1).startswith("The user wants")
    assert match.group(2) == "Summary: Hi! What do you think about mankind?"


def test_json_object_response_format(client: httpx.Client, body: Body) -> None:
    data = _post(client, body(response_format={"type": "json_object"})).json()
    assert json.loads(data["choices"][0]["message"]["content"]) == {
        "summary": "Summary: Hi! What do you think about mankind?"
    }


def test_json_schema_response_format_synthesizes_a_valid_instance(client: httpx.Client, body: Body) -> None:
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "sentiment": {"type": "string", "enum": ["positive", "negative"]},
            "score": {"type": "integer", "minimum": 3, "maximum": 9},
            "ratio": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "author": {"$ref": "#/$defs/Person"},
            "editor": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/Person"}]},
            "kind": {"const": "report"},
        },
        "required": ["summary"],
        "additionalProperties": False,
        "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "definitions": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    payload = body(response_format={"type": "json_schema", "json_schema": {"name": "report", "schema": schema}})
    content = json.loads(_post(client, payload).json()["choices"][0]["message"]["content"])
    assert content == {
        "summary": "Summary: Hi! What do you think about mankind?",
        "sentiment": "positive",
        "score": 3,
        "ratio": 1.5,
        "ok": True,
        "tags": ["sample tags"],
        "author": {"name": "sample name"},
        "editor": {"name": "sample name"},
        "kind": "report",
    }


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
}


def test_tools_produce_a_tool_call(client: httpx.Client, body: Body) -> None:
    data = _post(client, body(tools=[WEATHER_TOOL, TIME_TOOL])).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["type"] == "function"
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "sample city", "days": 1}


def test_forced_tool_choice_picks_that_tool(client: httpx.Client, body: Body) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    data = _post(client, body(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice)).json()
    assert data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"


def test_tool_choice_none_and_tool_results_give_content(client: httpx.Client, body: Body) -> None:
    none = _post(client, body(tools=[WEATHER_TOOL], tool_choice="none")).json()["choices"][0]
    assert none["finish_reason"] == "stop"
    assert none["message"]["content"].startswith("Summary: ")
    assert "tool_calls" not in none["message"]

    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]
    follow_up = _post(client, {**body(tools=[WEATHER_TOOL]), "messages": messages}).json()["choices"][0]
    assert follow_up["finish_reason"] == "stop"
    assert follow_up["message"]["content"] == "Summary: Weather in Paris? Tool result: Sunny, 21 C"


def test_small_token_limit_truncates_with_finish_reason_length(client: httpx.Client, body: Body) -> None:
    full = _post(client, body()).json()
    limit = full["usage"]["completion_tokens_details"]["reasoning_tokens"] + 3
    data = _post(client, body(max_completion_tokens=limit)).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] <= limit
    assert full["choices"][0]["message"]["content"].startswith(choice["message"]["content"])
    assert len(choice["message"]["content"]) == 12

    tiny = _post(client, body(max_tokens=2)).json()
    assert tiny["choices"][0]["finish_reason"] == "length"
    assert tiny["choices"][0]["message"]["content"] == ""
    assert tiny["usage"]["completion_tokens"] == 2


def test_set_reply_overrides_content_reasoning_and_tool_calls(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.set_reply(content="fixed answer", reasoning="fixed thinking")
    message = _post(client, body()).json()["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("fixed answer", "fixed thinking")

    emulator.set_reply(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}, "id": "call_7"}])
    choice = _post(client, body()).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    ]

    emulator.set_reply(content="cut", finish_reason="content_filter")
    assert _post(client, body()).json()["choices"][0]["finish_reason"] == "content_filter"

    emulator.set_reply()
    assert _post(client, body()).json()["choices"][0]["message"]["content"].startswith("Summary: ")

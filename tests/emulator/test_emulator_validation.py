"""Request-body validation: 400 "Body validation error!" in the legacy shape, and what passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing.validation import validate_chat_body

Body = Callable[..., dict[str, Any]]

USER = {"role": "user", "content": "hi"}
TOOL: dict[str, Any] = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"temperature": 3}, 'Expected number <= 2, received 3 at "temperature"'),
    ({"temperature": None}, 'Expected number, received null at "temperature"'),
    ({"temperature": "0.5"}, 'Expected number, received string at "temperature"'),
    ({"top_p": 0}, 'Expected number >= 0.01, received 0 at "top_p"'),
    ({"top_p": None}, 'received null at "top_p"'),
    ({"max_tokens": 0}, 'Expected number >= 1, received 0 at "max_tokens"'),
    ({"max_tokens": None}, 'received null at "max_tokens"'),
    ({"max_completion_tokens": 1.5}, 'Expected integer, received float at "max_completion_tokens"'),
    ({"max_completion_tokens": None}, 'received null at "max_completion_tokens"'),
    ({"seed": 0}, 'Expected integer >= 1, received 0 at "seed"'),
    ({"seed": None}, 'received null at "seed"'),
    ({"stream": None}, 'Expected boolean, received null at "stream"'),
    ({"stream": "yes"}, 'Expected boolean, received string at "stream"'),
    ({"parallel_tool_calls": None}, 'Expected boolean, received null at "parallel_tool_calls"'),
    ({"frequency_penalty": 2.5}, 'Expected number <= 2, received 2.5 at "frequency_penalty"'),
    ({"presence_penalty": -3}, 'Expected number >= -2, received -3 at "presence_penalty"'),
    ({"stop": ["a", "b", "c", "d", "e"]}, 'Expected array with at most 4 items, received 5 items at "stop"'),
    ({"stop": [1]}, 'Expected string, received number at "stop[0]"'),
    ({"tool_choice": None}, 'received null at "tool_choice"'),
    ({"tool_choice": "always"}, "received 'always' at \"tool_choice\""),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice.function.name"),
    ({"response_format": None}, 'Expected object, received null at "response_format"'),
    ({"response_format": {"type": "xml"}}, 'at "response_format.type"'),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, '"response_format.json_schema.name"'),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "bad name"}}},
        "Expected string matching /^[a-zA-Z0-9_-]{1,64}$/, received 'bad name' at \"response_format.json_schema.name\"",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        'received undefined at "tools[0].function.parameters"',
    ),
    ({"tools": [{"type": "function", "function": {"name": "a.b", "parameters": {}}}]}, '"tools[0].function.name"'),
    ({"tools": [TOOL] * 129}, 'Expected array with at most 128 items, received 129 items at "tools"'),
    ({"model": ""}, "Expected non-empty string, received '' at \"model\""),
    ({"model": None}, 'Expected string, received null at "model"'),
    ({"messages": []}, 'Expected array with at least 1 item, received 0 items at "messages"'),
    ({"messages": [{"role": "bot", "content": "x"}]}, 'at "messages[0].role"'),
    ({"messages": [{"content": "x"}]}, 'received undefined at "messages[0].role"'),
    ({"messages": [{"role": "user"}]}, 'received undefined at "messages[0].content"'),
    ({"messages": [{"role": "assistant", "content": None}]}, 'received null at "messages[0].content"'),
    ({"messages": [{"role": "tool", "content": "x"}]}, 'received undefined at "messages[0].tool_call_id"'),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
        'at "messages[0].content[0].image_url.url"',
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "https://x"}}]}]},
        'at "messages[0].content[0].type"',
    ),
    (
        {"messages": [{"role": "system", "content": 5}]},
        'Expected string | array, received number at "messages[0].content"',
    ),
]


@pytest.mark.parametrize(("changes", "detail"), INVALID)
def test_invalid_bodies_get_a_legacy_400(
    client: httpx.Client, body: Body, changes: dict[str, Any], detail: str
) -> None:
    response = client.post("/chat/completions", json={**body(), **changes})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert set(error) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert error["statusCode"] == "400"
    assert error["path"] == "/v1/chat/completions"
    assert error["message"].startswith("Body validation error!")
    assert detail in error["message"]


def test_several_problems_are_all_reported(client: httpx.Client, body: Body) -> None:
    message = client.post("/chat/completions", json=body(temperature=3, stop=["a"] * 5, seed=None)).json()["message"]
    assert message.count("Expected") == 3


def test_non_json_body_is_a_400(client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Body validation error!")
    assert client.post("/chat/completions", json=[1, 2]).status_code == 400


VALID: list[dict[str, Any]] = [
    {"frequency_penalty": None, "presence_penalty": None, "repetition_penalty": None, "stop": None},
    {"temperature": 0, "top_p": 0.01, "max_tokens": 1.5, "max_completion_tokens": 5.0, "seed": 1},
    {"temperature": 2, "top_p": 1, "frequency_penalty": -2, "presence_penalty": 2, "stop": ["a", "b", "c", "d"]},
    {
        "enable_thinking": False,
        "thinking_budget": 10,
        "reasoning_effort": "low",
        "stream_options": {"include_usage": True},
    },
    {"stop": "END", "stream": False, "parallel_tool_calls": True},
    {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}},
    {
        "tools": [{**TOOL, "function": {**TOOL["function"], "strict": None, "description": "d"}}],
        "tool_choice": "required",
    },
    {"response_format": {"type": "text"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "ok_name-1", "strict": None}}},
    {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "really"}]},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "http://example.com/cat.webp"}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done", "name": None},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "refusal", "refusal": "no"}]},
            USER,
        ]
    },
]


@pytest.mark.parametrize("changes", VALID)
def test_valid_bodies_pass(client: httpx.Client, body: Body, changes: dict[str, Any]) -> None:
    payload = {**body(), **changes}
    assert validate_chat_body(payload) == []
    response = client.post("/chat/completions", json=payload)
    assert response.status_code == 200, response.text


def test_validation_runs_after_auth(client: httpx.Client, body: Body) -> None:
    response = client.post("/chat/completions", json=body(temperature=9), headers={"Authorization": "Bearer bad"})
    assert response.status_code == 401

"""SSE streaming: headers, chunk sequence, [DONE], reasoning styles, tool calls, delays."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from airflow_provider_aiml.testing import AimlApiEmulator

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
Sse = Callable[[Iterable[str]], list[Any]]


def _stream(client: httpx.Client, payload: dict[str, Any], sse: Sse) -> tuple[httpx.Response, list[Any]]:
    with client.stream("POST", "/chat/completions", json={**payload, "stream": True}) as response:
        assert response.status_code == 200
        events = sse(response.iter_lines())
    return response, events


def _deltas(events: list[Any], key: str) -> str:
    return "".join(e["choices"][0]["delta"].get(key) or "" for e in events if isinstance(e, dict) and e["choices"])


def test_stream_follows_the_documented_chunk_sequence(client: httpx.Client, body: Body, sse: Sse) -> None:
    reference = client.post("/chat/completions", json=body()).json()
    response, events = _stream(client, body(), sse)

    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert "x-aimlapi-credits-used" not in response.headers
    assert "x-aimlapi-usd-spent" not in response.headers
    assert "x-inference-id" in response.headers
    assert "[DONE]" not in events

    ids = {e["id"] for e in events}
    assert len(ids) == 1
    assert ids.pop().startswith("chatcmpl-")
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == "qwen3-vl-32b-thinking" for e in events)

    first, *middle, finish, final = events
    assert first["choices"][0]["delta"] == {
        "content": None,
        "role": "assistant",
        "refusal": None,
        "reasoning_content": "",
    }
    kinds = ["reasoning" if e["choices"][0]["delta"]["content"] is None else "content" for e in middle]
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")  # all reasoning deltas come first
    assert kinds.count("reasoning") > 1
    assert kinds.count("content") > 1
    assert all(
        e["choices"][0]["delta"]["reasoning_content"] is None for e in middle if e["choices"][0]["delta"]["content"]
    )
    assert all(e["choices"][0]["finish_reason"] is None and e["usage"] is None for e in [first, *middle])

    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["delta"]["content"] == ""
    assert finish["usage"] is None

    assert final["choices"] == []
    assert final["usage"] == reference["usage"]
    assert "meta" not in final  # no documented transcript has cost in a stream (stream_cost=True adds it)

    message = reference["choices"][0]["message"]
    assert _deltas(events, "reasoning_content") == message["reasoning_content"]
    assert _deltas(events, "content") == message["content"]


def test_stream_ends_with_done_when_asked(client_for: ClientFor, body: Body, sse: Sse) -> None:
    with AimlApiEmulator(send_done=True) as emu:
        _, events = _stream(client_for(emu), body(), sse)
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["total_tokens"] > 0


def test_raw_stream_is_data_lines_separated_by_blank_lines(client: httpx.Client, body: Body) -> None:
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == ""
    assert all(event.startswith("data: {") and "\n" not in event for event in events[:-1])


def test_stream_reasoning_style_reasoning(client_for: ClientFor, body: Body, sse: Sse) -> None:
    with AimlApiEmulator(reasoning_style="reasoning") as emu:
        _, events = _stream(client_for(emu), body(), sse)
    assert _deltas(events, "reasoning").startswith("The user wants")
    assert _deltas(events, "reasoning_content") == ""
    with_details = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("reasoning_details")]
    assert with_details
    assert with_details[0]["choices"][0]["delta"]["reasoning_details"][0]["type"] == "reasoning.text"


def test_stream_reasoning_style_think_tag(client_for: ClientFor, body: Body, sse: Sse) -> None:
    with AimlApiEmulator(reasoning_style="think_tag") as emu:
        _, events = _stream(client_for(emu), body(), sse)
    content = _deltas(events, "content")
    assert content.startswith("<think>\nThe user wants")
    assert content.endswith("</think>\n\nSummary: Hi! What do you think about mankind?")
    assert all("reasoning_content" not in e["choices"][0]["delta"] for e in events if e["choices"])


def test_stream_tool_calls_split_the_arguments(client: httpx.Client, body: Body, sse: Sse) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "search",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}},
        },
    }
    reference = client.post("/chat/completions", json=body(tools=[tool])).json()
    _, events = _stream(client, body(tools=[tool]), sse)
    calls = [
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in events
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    head, *pieces = calls
    assert head["index"] == 0
    assert head["type"] == "function"
    assert head["function"] == {"name": "search", "arguments": ""}
    assert len(pieces) > 1
    arguments = "".join(piece["function"]["arguments"] for piece in pieces)
    expected = reference["choices"][0]["message"]["tool_calls"][0]
    assert head["id"] == expected["id"]
    assert arguments == expected["function"]["arguments"]
    assert json.loads(arguments) == {"query": "sample query", "limit": 1}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_finish_reason_length_with_a_token_limit(client: httpx.Client, body: Body, sse: Sse) -> None:
    _, events = _stream(client, body(max_tokens=5), sse)
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["usage"]["completion_tokens"] == 5


def test_chunk_delay_and_latency_slow_the_stream(client_for: ClientFor, body: Body, sse: Sse) -> None:
    with AimlApiEmulator(latency=0.1, chunk_delay=0.01) as emu:
        started = time.perf_counter()
        _, events = _stream(client_for(emu), body(), sse)
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.1 + 0.01 * (len(events) - 1) * 0.9


def test_keep_alive_connection_is_reused_after_a_stream(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse
) -> None:
    for _ in range(3):
        _stream(client, body(), sse)
        assert client.post("/chat/completions", json=body()).status_code == 200
    assert emulator.connections_opened == 1
    assert len(emulator.chat_requests) == 6

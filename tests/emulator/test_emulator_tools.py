"""Scripted replies: tool calls (parallel, malformed, unknown), answers from tool results, JSON branch choices,
the never-ending tool loop, tool_call_id checks, faults, reset and the control endpoints, over real HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault, ScriptedReply

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
Sse = Callable[[Iterable[str]], list[Any]]

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}


def _chat(client: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    response = client.post("/chat/completions", json=payload)
    assert response.status_code == 200, response.text
    return response


def _choice(client: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = _chat(client, payload).json()["choices"][0]
    return choice


def _stream(client: httpx.Client, payload: dict[str, Any], sse: Sse) -> list[dict[str, Any]]:
    with client.stream("POST", "/chat/completions", json={**payload, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        return sse(response.iter_lines())


def _reassemble(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None, str]:
    """Rebuild the tool calls from the deltas, as an OpenAI-style client does; also the finish reason and text."""
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    text = ""
    for event in events:
        for choice in event["choices"]:
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(part["index"], {"id": None, "type": None, "name": "", "arguments": ""})
                call["id"] = part.get("id") or call["id"]
                call["type"] = part.get("type") or call["type"]
                function = part.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
    ordered = [
        {"id": c["id"], "type": c["type"], "function": {"name": c["name"], "arguments": c["arguments"]}}
        for _, c in sorted(calls.items())
    ]
    return ordered, finish, text


def _tool_round(first: dict[str, Any], message: dict[str, Any], results: Iterable[str]) -> dict[str, Any]:
    """The follow-up body: the assistant's tool calls and one tool message per call."""
    answers = [
        {"role": "tool", "tool_call_id": call["id"], "content": result}
        for call, result in zip(message["tool_calls"], results, strict=True)
    ]
    assistant = {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]}
    return {**first, "messages": [*first["messages"], assistant, *answers]}


# --------------------------------------------------------------------------------------------- scripted kinds


def test_script_is_used_in_order_then_generated_replies_resume(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.script(
        ScriptedReply.text("first", reasoning="thought one"),
        ScriptedReply.json({"choice": "b", "reason": "cheaper"}),
        ScriptedReply.text("third"),
    )
    assert emulator.scripted_replies_left == 3

    first = _choice(client, body())
    assert first["message"]["content"] == "first"
    assert first["message"]["reasoning_content"] == "thought one"
    assert first["finish_reason"] == "stop"
    assert "tool_calls" not in first["message"]
    assert emulator.scripted_replies_left == 2

    branch = _choice(client, body())
    assert json.loads(branch["message"]["content"]) == {"choice": "b", "reason": "cheaper"}
    assert branch["message"]["reasoning_content"] == ""
    assert _choice(client, body())["message"]["content"] == "third"
    assert emulator.scripted_replies_left == 0

    assert _choice(client, body())["message"]["content"].startswith("Summary: ")


def test_parallel_tool_calls_have_unique_ids_null_content_and_are_billed_by_their_arguments(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.script(ScriptedReply.tool_calls(("lookup", {"city": "Oslo"}), ("lookup", {"city": "Rome"})))
    response = _chat(client, body(tools=[LOOKUP]))
    data = response.json()
    (choice,) = data["choices"]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Rome"}'}},
    ]
    usage = data["usage"]
    arguments = 'lookup{"city": "Oslo"}lookup{"city": "Rome"}'
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0, "text_tokens": math.ceil(len(arguments) / 4)}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    credits = int(response.headers["x-aimlapi-credits-used"])
    assert credits == 2 * usage["total_tokens"] == data["meta"]["usage"]["credits_used"]
    assert emulator.credits_used == credits

    again = ScriptedReply.tool_calls(("clock", {}))
    emulator.script(again, again)
    ids = [_choice(client, body(tools=[CLOCK]))["message"]["tool_calls"][0]["id"] for _ in range(2)]
    assert ids == ["call_3", "call_4"]  # unique across replies, not only within one


def test_streamed_tool_call_deltas_reassemble_into_the_same_calls(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse
) -> None:
    script = ScriptedReply.tool_calls(("lookup", {"city": "Oslo"}), ("clock", {}), reasoning="two tools at once")
    emulator.script(script, script)
    payload = body(tools=[LOOKUP, CLOCK])
    plain = _choice(client, payload)
    events = _stream(client, payload, sse)
    calls, finish, text = _reassemble(events)

    assert finish == "tool_calls"
    assert text == ""
    strip = [{**c, "id": None} for c in plain["message"]["tool_calls"]]
    assert [{**c, "id": None} for c in calls] == strip
    assert [c["id"] for c in calls] == ["call_3", "call_4"]

    heads = [p for e in events for c in e["choices"] for p in c["delta"].get("tool_calls") or [] if "id" in p]
    assert heads == [
        {"index": 0, "id": "call_3", "type": "function", "function": {"name": "lookup", "arguments": ""}},
        {"index": 1, "id": "call_4", "type": "function", "function": {"name": "clock", "arguments": ""}},
    ]
    pieces = [p for e in events for c in e["choices"] for p in c["delta"].get("tool_calls") or [] if "id" not in p]
    assert len([p for p in pieces if p["index"] == 0]) > 1  # the arguments arrive in several deltas
    reasoning = "".join(e["choices"][0]["delta"].get("reasoning_content") or "" for e in events if e["choices"])
    assert reasoning == "two tools at once"
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] > 0
    assert emulator.scripted_replies_left == 0


def test_streamed_tool_calls_in_the_anthropic_shapes(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse
) -> None:
    emulator.script(ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})))
    events = _stream(client, {**body(tools=[LOOKUP]), "model": "anthropic/claude-sonnet-4.5"}, sse)
    calls, finish, _ = _reassemble(events)
    assert calls == [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'}}
    ]
    assert finish == "tool_calls"
    assert events[0]["id"].startswith("msg_")


def test_malformed_argument_json_is_sent_verbatim(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse
) -> None:
    broken = '{"city": '
    emulator.script(ScriptedReply.tool_calls(("lookup", broken), raw=True))
    emulator.script(ScriptedReply.tool_calls(("lookup", broken), ("lookup", "not json at all"), raw=True))
    plain = _choice(client, body(tools=[LOOKUP]))
    assert plain["message"]["tool_calls"][0]["function"]["arguments"] == broken

    calls, _, _ = _reassemble(_stream(client, body(tools=[LOOKUP]), sse))
    assert [c["function"]["arguments"] for c in calls] == [broken, "not json at all"]


def test_arguments_are_checked_unless_raw() -> None:
    with pytest.raises(ValueError, match="raw=True"):
        ScriptedReply.tool_calls(("lookup", '{"city": '))
    with pytest.raises(ValueError, match="as a string"):
        ScriptedReply.tool_calls(("lookup", {"city": "Oslo"}), raw=True)
    with pytest.raises(ValueError, match="at least one call"):
        ScriptedReply.tool_calls()
    with pytest.raises(ValueError, match="non-empty name"):
        ScriptedReply.tool_calls(("", {}))
    with pytest.raises(ValueError, match="JSON-serialisable"):
        ScriptedReply.json({"x": float("nan")})
    assert ScriptedReply.tool_calls(("lookup", '{"city": "Oslo"}')).calls[0].arguments == '{"city": "Oslo"}'


def test_unknown_tool_names_and_calls_without_tools_are_sent_as_scripted(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.script(ScriptedReply.tool_calls(("self_destruct", {})), ScriptedReply.tool_calls(("lookup", {})))
    unknown = _choice(client, body(tools=[LOOKUP]))
    assert unknown["message"]["tool_calls"][0]["function"]["name"] == "self_destruct"
    no_tools = _choice(client, body())  # the request offers no tools at all
    assert no_tools["finish_reason"] == "tool_calls"
    assert no_tools["message"]["tool_calls"][0]["function"]["name"] == "lookup"


def test_an_agent_round_trip_reaches_the_model_with_the_tool_results(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.script(
        ScriptedReply.tool_calls(("lookup", {"city": "Oslo"}), ("lookup", {"city": "Rome"})),
        ScriptedReply.from_tool_results(),
    )
    first = body("Weather in Oslo and Rome?", tools=[LOOKUP])
    message = _choice(client, first)["message"]
    follow_up = _tool_round(first, message, ["3 C, snow", "21 C, sun"])
    answer = _choice(client, follow_up)

    assert answer["finish_reason"] == "stop"
    assert answer["message"]["content"] == "Based on the tools: lookup: 3 C, snow; lookup: 21 C, sun"
    first_log, second_log = emulator.chat_requests
    assert first_log.tool_results == []
    assert [m["content"] for m in second_log.tool_results] == ["3 C, snow", "21 C, sun"]

    emulator.script(ScriptedReply.from_tool_results("Tools said: "), ScriptedReply.from_tool_results())
    assert _choice(client, follow_up)["message"]["content"].startswith("Tools said: lookup: 3 C, snow")
    assert _choice(client, body())["message"]["content"] == "Based on the tools: (no tool results)"


def test_a_scripted_reply_wins_over_set_reply_which_resumes_after(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.set_reply(content="fixed")
    emulator.script(ScriptedReply.json(["a", 1]))
    assert _choice(client, body())["message"]["content"] == '["a", 1]'
    assert _choice(client, body())["message"]["content"] == "fixed"


def test_finish_reason_can_be_scripted(emulator: AimlApiEmulator, client: httpx.Client, body: Body) -> None:
    emulator.script(ScriptedReply.text("cut sh", finish_reason="length"))
    assert _choice(client, body())["finish_reason"] == "length"


# --------------------------------------------------------------------------------------------- the tool loop


def test_the_tool_loop_never_ends_until_stopped(emulator: AimlApiEmulator, client: httpx.Client, body: Body) -> None:
    emulator.loop_tool_calls("lookup", {"city": "Oslo"})
    payload = body("Weather?", tools=[LOOKUP, CLOCK])
    ids: list[str] = []
    for _ in range(12):  # an agent without an iteration bound would go on forever
        choice = _choice(client, payload)
        assert choice["finish_reason"] == "tool_calls"
        (call,) = choice["message"]["tool_calls"]
        assert call["function"] == {"name": "lookup", "arguments": '{"city": "Oslo"}'}
        ids.append(call["id"])
        payload = _tool_round(payload, choice["message"], ["3 C"])
    assert len(set(ids)) == 12
    assert len(emulator.chat_requests[-1].tool_results) == 11
    assert emulator.scripted_replies_left == 0

    # Requests that do not offer the tool, or forbid calling it, get generated replies.
    assert "tool_calls" not in _choice(client, body())["message"]
    assert _choice(client, body(tools=[CLOCK]))["message"]["tool_calls"][0]["function"]["name"] == "clock"
    assert _choice(client, {**payload, "tool_choice": "none"})["finish_reason"] == "stop"
    forced = {"type": "function", "function": {"name": "clock"}}
    assert _choice(client, {**payload, "tool_choice": forced})["message"]["tool_calls"][0]["function"]["name"] == (
        "clock"
    )

    # A queued script comes first; the loop resumes when it is used up.
    emulator.script(ScriptedReply.text("done"))
    assert _choice(client, payload)["message"]["content"] == "done"
    assert _choice(client, payload)["finish_reason"] == "tool_calls"

    emulator.stop_loop()
    assert _choice(client, payload)["finish_reason"] == "stop"  # the last message is a tool result


def test_reset_and_clear_script_stop_the_loop_and_drop_the_queue(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    payload = body(tools=[LOOKUP])
    emulator.loop_tool_calls("lookup", '{"city": ', raw=True)
    emulator.script(ScriptedReply.text("queued"), ScriptedReply.text("queued too"))
    assert _choice(client, payload)["message"]["content"] == "queued"
    emulator.clear_script()
    assert emulator.scripted_replies_left == 0
    assert _choice(client, body(tools=[LOOKUP], tool_choice="none"))["message"]["content"].startswith("Summary: ")
    generated = _choice(client, payload)["message"]["tool_calls"][0]
    assert generated["id"] != "call_1"
    assert generated["function"]["arguments"] != '{"city": '

    emulator.loop_tool_calls("lookup", '{"city": ', raw=True)
    emulator.script(ScriptedReply.text("queued"))
    assert _choice(client, body(tools=[LOOKUP], tool_choice="none"))["message"]["content"] == "queued"
    assert _choice(client, payload)["message"]["tool_calls"][0] == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"city": '},
    }
    emulator.script(ScriptedReply.text("left over"))
    emulator.reset()
    assert emulator.scripted_replies_left == 0
    assert _choice(client, payload)["message"]["tool_calls"][0]["id"] == generated["id"]  # the generated call

    emulator.script(ScriptedReply.tool_calls(("lookup", {})))
    assert _choice(client, payload)["message"]["tool_calls"][0]["id"] == "call_1"  # ids restart after reset


# --------------------------------------------------------------------------------------------- tool_call_id checks


def test_a_tool_message_must_answer_an_earlier_tool_call(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    assistant = {"role": "assistant", "content": None, "tool_calls": [call]}
    user = {"role": "user", "content": "Weather?"}
    emulator.script(ScriptedReply.from_tool_results())

    unknown = [user, assistant, {"role": "tool", "tool_call_id": "call_zzz", "content": "3 C"}]
    response = client.post("/chat/completions", json={**body(), "messages": unknown})
    assert response.status_code == 400
    error = response.json()
    assert error["statusCode"] == "400"
    assert error["message"] == (
        "Body validation error! Expected the id of a tool call made by an earlier assistant message, "
        "received 'call_zzz' at \"messages[2].tool_call_id\""
    )

    before = [user, {"role": "tool", "tool_call_id": "call_a", "content": "3 C"}, assistant]
    response = client.post("/chat/completions", json={**body(), "messages": before})
    assert response.status_code == 400
    assert 'at "messages[1].tool_call_id"' in response.json()["message"]
    assert emulator.scripted_replies_left == 1  # refused requests use no scripted reply

    valid = [user, assistant, {"role": "tool", "tool_call_id": "call_a", "content": "3 C"}]
    assert _choice(client, {**body(), "messages": valid})["message"]["content"] == "Based on the tools: lookup: 3 C"


# --------------------------------------------------------------------------------------------- faults


def test_faults_take_precedence_and_consume_no_scripted_reply(
    emulator: AimlApiEmulator, client_for: ClientFor, body: Body, sse: Sse
) -> None:
    client = client_for(emulator)
    emulator.script(ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})), ScriptedReply.text("second"))
    emulator.add_fault(Fault.status(503))
    assert client.post("/chat/completions", json=body(tools=[LOOKUP])).status_code == 503
    assert emulator.scripted_replies_left == 2

    emulator.add_fault(Fault.reset())
    with pytest.raises(httpx.TransportError):
        client_for(emulator).post("/chat/completions", json=body(tools=[LOOKUP]))
    assert emulator.scripted_replies_left == 2

    # A broken delivery carries the scripted reply but leaves it queued for the retry.
    emulator.add_fault(Fault.end_stream_early(after_chunks=2))
    partial = _stream(client, body(tools=[LOOKUP]), sse)
    assert all(c.get("finish_reason") is None for e in partial for c in e["choices"])
    assert emulator.scripted_replies_left == 2
    emulator.add_fault(Fault.malformed_json())
    broken = client.post("/chat/completions", json=body(tools=[LOOKUP]))
    assert broken.status_code == 200
    with pytest.raises(ValueError, match=r"."):
        broken.json()
    assert emulator.scripted_replies_left == 2

    # Faults that deliver the answer whole use it up.
    emulator.add_fault(Fault.delay(0.01))
    retried = _choice(client, body(tools=[LOOKUP]))
    assert retried["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert emulator.scripted_replies_left == 1
    assert _choice(client, body())["message"]["content"] == "second"


def test_a_cut_stream_leaves_the_scripted_reply_for_the_retry(
    emulator: AimlApiEmulator, client_for: ClientFor, body: Body, sse: Sse
) -> None:
    emulator.script(ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})))
    emulator.add_fault(Fault.cut_stream(after_chunks=2))
    with pytest.raises(httpx.RemoteProtocolError):
        _stream(client_for(emulator), body(tools=[LOOKUP]), sse)
    assert emulator.scripted_replies_left == 1
    calls, finish, _ = _reassemble(_stream(client_for(emulator), body(tools=[LOOKUP]), sse))
    assert finish == "tool_calls"
    assert calls[0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert emulator.scripted_replies_left == 0


def test_bad_keys_and_unknown_models_consume_no_scripted_reply(
    emulator: AimlApiEmulator, client_for: ClientFor, body: Body
) -> None:
    emulator.script(ScriptedReply.text("kept"))
    assert client_for(emulator, key="sk-bad").post("/chat/completions", json=body()).status_code == 401
    unknown_model = {**body(), "model": "nobody/no-model"}
    assert client_for(emulator).post("/chat/completions", json=unknown_model).status_code == 404
    assert client_for(emulator).post("/chat/completions", json=body(temperature=9)).status_code == 400
    assert emulator.scripted_replies_left == 1
    assert _choice(client_for(emulator), body())["message"]["content"] == "kept"


# --------------------------------------------------------------------------------------------- control endpoints


@pytest.fixture
def control(emulator: AimlApiEmulator, client_for: ClientFor) -> Callable[..., httpx.Response]:
    http = client_for(emulator, key=None)

    def call(method: str, name: str, payload: Any = None) -> httpx.Response:
        return http.request(method, f"{emulator.url}/_emulator/{name}", json=payload)

    return call


def test_script_over_http(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    replies = [
        {"kind": "tool_calls", "calls": [{"name": "lookup", "arguments": {"city": "Oslo"}}, {"name": "clock"}]},
        {"kind": "tool_calls", "calls": [{"name": "lookup", "arguments": '{"city": '}]},
        {"kind": "from_tool_results"},
        {"kind": "text", "content": "final", "reasoning": "because"},
        {"kind": "json", "value": {"choice": "b"}},
    ]
    response = control("POST", "script", replies)
    assert response.status_code == 200, response.text
    assert response.json() == {"queued": 5, "scripted_replies_left": 5}
    listed = control("GET", "script").json()
    assert [r["kind"] for r in listed["replies"]] == [r["kind"] for r in replies]
    assert listed["replies"][0]["calls"] == [
        {"name": "lookup", "arguments": '{"city": "Oslo"}'},
        {"name": "clock", "arguments": "{}"},
    ]
    assert listed["loop"] is None
    assert control("GET", "stats").json()["scripted_replies_left"] == 5

    parallel = _choice(client, body(tools=[LOOKUP, CLOCK]))["message"]["tool_calls"]
    assert [c["function"]["name"] for c in parallel] == ["lookup", "clock"]
    malformed = _choice(client, body(tools=[LOOKUP]))["message"]["tool_calls"][0]
    assert malformed["function"]["arguments"] == '{"city": '  # a string is sent as it is
    assert _choice(client, body())["message"]["content"] == "Based on the tools: (no tool results)"
    final = _choice(client, body())["message"]
    assert (final["content"], final["reasoning_content"]) == ("final", "because")
    assert json.loads(_choice(client, body())["message"]["content"]) == {"choice": "b"}

    assert control("POST", "script", {"replies": [{"kind": "text", "content": "x"}]}).status_code == 200
    assert emulator.scripted_replies_left == 1
    cleared = control("DELETE", "script")
    assert cleared.json() == {"replies": [], "loop": None}
    assert emulator.scripted_replies_left == 0


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"replies": "nope"},
        [{"kind": "text", "content": "ok"}, {"kind": "poem"}],
        [{"kind": "text"}],
        [{"kind": "text", "content": "x", "extra": 1}],
        [{"kind": "tool_calls", "calls": []}],
        [{"kind": "tool_calls", "calls": [{"arguments": {}}]}],
        [{"kind": "json"}],
        {"replies": [], "more": 1},
    ],
)
def test_bad_scripts_over_http_queue_nothing(
    emulator: AimlApiEmulator, control: Callable[..., httpx.Response], payload: Any
) -> None:
    response = control("POST", "script", payload)
    assert response.status_code == 400
    assert response.json()["error"]
    assert emulator.scripted_replies_left == 0


def test_loop_over_http_and_reset(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    response = control("POST", "loop", {"name": "lookup", "arguments": {"city": "Oslo"}})
    assert response.json() == {"loop": {"name": "lookup", "arguments": '{"city": "Oslo"}'}}
    assert control("GET", "stats").json()["tool_loop"] is True
    for _ in range(3):
        assert _choice(client, body(tools=[LOOKUP]))["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert control("DELETE", "loop").json() == {"loop": None}
    assert _choice(client, body(tools=[LOOKUP], tool_choice="none"))["finish_reason"] == "stop"

    control("POST", "loop", {"name": "lookup"})
    control("POST", "script", [{"kind": "text", "content": "x"}])
    assert control("POST", "reset").status_code == 200
    assert control("GET", "script").json() == {"replies": [], "loop": None}
    assert control("POST", "loop", {"arguments": {}}).status_code == 400
    assert control("POST", "loop", {"name": "lookup", "times": 3}).status_code == 400


def test_the_pytest_plugin_fixture_scripts_tool_calls(aiml_emulator: AimlApiEmulator, client_for: ClientFor) -> None:
    aiml_emulator.script(ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})), ScriptedReply.text("done"))
    http = client_for(aiml_emulator, key="sk-emulator-test-key")
    payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": [LOOKUP]}
    message = _choice(http, payload)["message"]
    assert message["tool_calls"][0]["id"] == "call_1"
    assert _choice(http, _tool_round(payload, message, ["3 C"]))["message"]["content"] == "done"

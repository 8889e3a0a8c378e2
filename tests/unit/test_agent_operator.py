"""``AimlAgentOperator`` against a scripted API (respx): the loop, its limits and budgets, and the step record
that lets a retried task replay finished steps without paying for them or running their tools again."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any
from unittest import mock

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_aiml.exceptions import AimlAgentError, AimlParameterError
from airflow_provider_aiml.operators.agent import AimlAgentOperator
from tests.airflow_env import TEST_BASE_URL

CHAT_URL = f"{TEST_BASE_URL}/chat/completions"


def answer(content: str = "", *calls: tuple[str, Any], tokens: int = 10, usd: float | None = None) -> httpx.Response:
    """A chat answer; with ``calls`` (name, arguments) it asks for those tools."""
    tool_calls = [
        {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
        }
        for index, (name, args) in enumerate(calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop", "message": message}],
        "usage": {"prompt_tokens": tokens // 2, "completion_tokens": tokens - tokens // 2, "total_tokens": tokens},
    }
    headers = {} if usd is None else {"x-aimlapi-usd-spent": str(usd), "x-aimlapi-credits-used": "1"}
    return httpx.Response(200, json=body, headers=headers)


class Counter:
    """Tools that count their runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def tools(self) -> list[Any]:
        def lookup(city: str) -> str:
            """The weather of a city.

            :param city: the city's name.
            """
            self.runs.append(city)
            return f"sunny in {city}"

        async def slow(seconds: float) -> str:
            """Wait, then say so."""
            await asyncio.sleep(seconds)
            self.runs.append(f"slow {seconds}")
            return "waited"

        def broken() -> str:
            """Always fails."""
            raise RuntimeError("the weather service is down")

        return [lookup, slow, broken]


def context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="dag", task_id="agent", run_id="run", map_index=-1, try_number=1)
    return {"ti": ti}


def pushed(ctx: dict[str, Any]) -> dict[str, Any]:
    return {call.kwargs["key"]: call.kwargs["value"] for call in ctx["ti"].xcom_push.call_args_list}


def sent(route: respx.Route, number: int) -> dict[str, Any]:
    return json.loads(route.calls[number].request.content)


def make(tools: Counter, **kwargs: Any) -> AimlAgentOperator:
    return AimlAgentOperator(task_id="agent", prompt="What is the weather in Oslo?", tools=tools.tools(), **kwargs)


def test_the_loop_runs_the_tools_asked_for_and_sends_their_results_back():
    tools = Counter()
    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(
            side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("It is sunny in Oslo.")]
        )
        result = make(tools).execute(ctx)

    assert result == "It is sunny in Oslo."
    assert tools.runs == ["Oslo"]
    assert route.call_count == 2
    first, second = sent(route, 0), sent(route, 1)
    assert [tool["function"]["name"] for tool in first["tools"]] == ["lookup", "slow", "broken"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assistant, tool_message = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"city": "Oslo"}'}
    assert tool_message == {"role": "tool", "tool_call_id": "call_0", "content": "sunny in Oslo"}
    values = pushed(ctx)
    assert values["content"] == "It is sunny in Oslo."
    assert values["usage"]["total_tokens"] == 20  # both steps
    assert [step["step"] for step in values["steps"]] == [1, 2]
    assert values["steps"][0]["tool_calls"][0]["name"] == "lookup"
    assert values["steps"][0]["tool_calls"][0]["result"] == "sunny in Oslo"
    assert route.calls[1].request.headers["x-client-request-id"].endswith(":s2")


def test_parallel_tool_calls_run_at_once_within_max_parallel_tools():
    running, peak = 0, 0

    async def wait(seconds: float) -> str:
        """Wait, then say so."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(seconds)
        running -= 1
        return "waited"

    def agent(**kwargs: Any) -> AimlAgentOperator:
        return AimlAgentOperator(task_id="agent", prompt="Wait.", tools=[wait], **kwargs)

    calls = [("wait", {"seconds": 0.05})] * 6
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[answer("", *calls), answer("done"), answer("", *calls), answer("done")])
        agent().execute(context())
        assert peak == 4  # the default max_parallel_tools: six calls, four at once
        peak = 0
        agent(max_parallel_tools=2).execute(context())
        assert peak == 2


def test_sync_tools_run_in_the_runs_own_threads_which_end_with_the_run():
    """A lone call and parallel calls of a sync tool run off the event loop's thread, at most
    max_parallel_tools threads for the run, and none of them is left once the task is done."""
    seen: list[str] = []
    loop_threads: list[str] = []
    lock = threading.Lock()

    def pause(seconds: float) -> str:
        """Pause a while."""
        with lock:
            seen.append(threading.current_thread().name)
        time.sleep(seconds)
        return "paused"

    async def where() -> str:
        """Say where the loop runs."""
        loop_threads.append(threading.current_thread().name)
        return "here"

    calls = [("pause", {"seconds": 0.1})] * 3
    with respx.mock() as api:
        api.post(CHAT_URL).mock(
            side_effect=[answer("", ("pause", {"seconds": 0})), answer("", *calls, ("where", {})), answer("done")]
        )
        started = time.monotonic()
        AimlAgentOperator(task_id="agent", prompt="Pause.", tools=[pause, where], max_parallel_tools=4).execute(
            context()
        )
        elapsed = time.monotonic() - started

    assert len(seen) == 4
    assert all(name.startswith("aiml-tool-") for name in seen)
    assert loop_threads
    assert loop_threads[0] not in seen
    assert len(set(seen[1:])) == 3  # the three parallel calls, each in its own thread, at once
    assert elapsed < 0.25
    deadline = time.monotonic() + 5
    while any(t.name.startswith("aiml-tool-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("aiml-tool-")]


def test_a_failing_tool_goes_back_to_the_model_then_too_many_failures_fail_the_task():
    tools = Counter()
    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(
            side_effect=[answer("", ("broken", {})), answer("", ("broken", {}), ("nowhere", {}))]
        )
        with pytest.raises(AimlAgentError, match="3 tool calls failed, over max_tool_errors=2"):
            make(tools, max_tool_errors=2).execute(ctx)

    second = sent(route, 1)
    assert "the weather service is down" in second["messages"][-1]["content"]
    steps = pushed(ctx)["steps"]  # the transcript survives the failure
    assert [call["name"] for call in steps[1]["tool_calls"]] == ["broken", "nowhere"]
    assert steps[1]["tool_calls"][1]["error"] == "unknown tool 'nowhere'"


def test_max_steps_fails_clearly_with_the_transcript_pushed():
    tools = Counter()
    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=lambda request: answer("", ("lookup", {"city": "Oslo"})))
        with pytest.raises(AimlAgentError, match=r"max_steps=3 with the model still calling tools .*lookup"):
            make(tools, max_steps=3).execute(ctx)

    assert route.call_count == 3
    assert tools.runs == ["Oslo"] * 3
    assert len(pushed(ctx)["steps"]) == 3


def test_budgets_stop_the_run_before_the_next_step():
    tools = Counter()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=lambda request: answer("", ("lookup", {"city": "Oslo"}), tokens=60))
        with pytest.raises(AimlAgentError, match=r"before step 3: 120 tokens used, max_total_tokens=100"):
            make(tools, max_total_tokens=100).execute(context())
    assert route.call_count == 2

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=lambda request: answer("", ("lookup", {"city": "Oslo"})))
        with pytest.raises(AimlAgentError, match=r"asked for 1 more tool call after 2, over max_tool_calls=2"):
            make(tools, max_tool_calls=2).execute(context())
    assert route.call_count == 3


def test_bad_tools_and_arguments_fail_before_any_request():
    def undocumented(x: int) -> int:
        return x

    with respx.mock(assert_all_called=False) as api:
        route = api.post(CHAT_URL)
        with pytest.raises(AimlParameterError, match="docstring"):
            AimlAgentOperator(task_id="agent", prompt="hi", tools=[undocumented]).execute(context())
        with pytest.raises(AimlParameterError, match="max_steps"):
            make(Counter(), max_steps=0)
        robot = AimlAgentOperator(task_id="agent", messages=[{"role": "robot", "content": "hi"}], tools=[])
        with pytest.raises(AimlParameterError, match="robot"):
            robot.execute(context())
    assert route.call_count == 0


def test_a_retry_replays_recorded_steps_without_calling_the_api_or_the_tools_again(tmp_path):
    record = tmp_path / "agent.jsonl"
    tools = Counter()
    with respx.mock() as api:
        api.post(CHAT_URL).mock(
            side_effect=[
                answer("", ("lookup", {"city": "Oslo"}), usd=0.001),
                answer("", ("lookup", {"city": "Rome"}), usd=0.001),
                httpx.Response(400, json={"message": "the third step fails for good"}),
            ]
        )
        with pytest.raises(Exception, match="the third step fails"):
            make(tools, checkpoint_path=str(record)).execute(context())
    assert tools.runs == ["Oslo", "Rome"]

    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("Sunny in both.", usd=0.001)])
        result = make(tools, checkpoint_path=str(record)).execute(ctx)

    assert result == "Sunny in both."
    assert route.call_count == 1  # only the step not done
    assert tools.runs == ["Oslo", "Rome"]  # no tool ran twice
    replayed = sent(route, 0)["messages"]
    assert [m["content"] for m in replayed if m["role"] == "tool"] == ["sunny in Oslo", "sunny in Rome"]
    values = pushed(ctx)
    assert [step["replayed"] for step in values["steps"]] == [True, True, False]
    assert values["usage"]["usd_spent"] == pytest.approx(0.003)  # the recorded steps' cost counts


def test_a_changed_prompt_replays_nothing(tmp_path, capsys):
    record = tmp_path / "agent.jsonl"
    tools = Counter()
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("Sunny.")])
        make(tools, checkpoint_path=str(record)).execute(context())

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("Sunny.")])
        operator = AimlAgentOperator(
            task_id="agent", prompt="And in Bergen?", tools=tools.tools(), checkpoint_path=str(record)
        )
        operator.execute(context())

    assert route.call_count == 2
    assert tools.runs == ["Oslo", "Oslo"]
    assert "entries of another run" in capsys.readouterr().out


def test_a_tool_interrupted_in_an_earlier_try_is_not_run_again(tmp_path):
    record_path = tmp_path / "agent.jsonl"
    tools = Counter()
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("Sunny.")])
        make(tools, checkpoint_path=str(record_path)).execute(context())
    # Keep the first model step and the tool's start, as if the worker died while the tool ran.
    lines = [json.loads(line) for line in record_path.read_text().splitlines()]
    kept = [line for line in lines if line["key"] in ("model:1", "start:1:call_0")]
    record_path.write_text("".join(json.dumps(line) + "\n" for line in kept))

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("I could not check.")])
        make(tools, checkpoint_path=str(record_path)).execute(context())

    assert tools.runs == ["Oslo"]  # from the first run only
    assert "not run again" in sent(route, 0)["messages"][-1]["content"]


def test_a_read_only_tool_interrupted_in_an_earlier_try_runs_again(tmp_path):
    from airflow_provider_aiml.agents import tool

    runs: list[str] = []

    @tool(side_effects=False)
    def lookup(city: str) -> str:
        """The weather of a city (reads only).

        :param city: the city's name.
        """
        runs.append(city)
        return f"sunny in {city}"

    record_path = tmp_path / "agent.jsonl"
    record_path.write_text("")
    agent = AimlAgentOperator(task_id="agent", prompt="Weather?", tools=[lookup], checkpoint_path=str(record_path))
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("Sunny.")])
        agent.execute(context())
    lines = [json.loads(line) for line in record_path.read_text().splitlines()]
    record_path.write_text(
        "".join(json.dumps(line) + "\n" for line in lines if not line["key"].startswith(("tool:", "model:2")))
    )

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("Sunny in Oslo.")])
        agent.execute(context())

    assert runs == ["Oslo", "Oslo"]  # read-only: run again rather than withheld
    assert sent(route, 0)["messages"][-1]["content"] == "sunny in Oslo"


def test_the_key_is_in_no_xcom_value():
    from tests.airflow_env import TEST_API_KEY

    ctx = context()
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", {"city": "Oslo"})), answer("Sunny.")])
        make(Counter()).execute(ctx)

    assert TEST_API_KEY not in json.dumps(pushed(ctx), default=str)


def test_an_answer_that_does_not_validate_is_asked_again_as_one_more_step():
    from pydantic import BaseModel

    class Forecast(BaseModel):
        city: str
        sunny: bool

    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(
            side_effect=[
                answer("", ("lookup", {"city": "Oslo"})),
                answer('{"city": "Oslo"}'),
                answer('{"city": "Oslo", "sunny": true}'),
            ]
        )
        result = make(Counter(), output_type=Forecast, max_validation_retries=1).execute(ctx)

    assert route.call_count == 3
    assert result == '{"city": "Oslo", "sunny": true}'
    reask = sent(route, 2)["messages"]
    assert reask[-2] == {"role": "assistant", "content": '{"city": "Oslo"}'}
    assert reask[-1]["role"] == "user"
    assert "sunny" in reask[-1]["content"]
    values = pushed(ctx)
    assert values["parsed"] == {"city": "Oslo", "sunny": True}
    assert [step["step"] for step in values["steps"]] == [1, 2, 3]
    assert values["usage"]["total_tokens"] == 30


def test_an_answer_still_invalid_fails_with_the_answer_and_steps_pushed():
    from pydantic import BaseModel

    from airflow_provider_aiml.exceptions import AimlOutputParseError

    class Forecast(BaseModel):
        sunny: bool

    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("not json"), answer("still not json")])
        with pytest.raises(AimlOutputParseError):
            make(Counter(), output_type=Forecast, max_validation_retries=1).execute(ctx)

    assert route.call_count == 2
    values = pushed(ctx)
    assert values["content"] == "still not json"  # what was paid for is kept
    assert len(values["steps"]) == 2


def test_a_secret_a_tool_returns_reaches_neither_the_api_nor_the_log(caplog):
    from airflow.sdk.log import mask_secret

    password = "pw-tool-7f3a9c1e"
    mask_secret(password)

    def read_config() -> str:
        """The service's configuration."""
        return f"host=db.internal password={password}"

    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("", ("read_config", {})), answer("Configured.")])
        AimlAgentOperator(task_id="agent", prompt="Check the config.", tools=[read_config]).execute(ctx)

    sent_to_api = route.calls[1].request.content.decode()
    assert "host=db.internal password=***" in sent_to_api
    assert password not in sent_to_api
    assert password not in json.dumps(pushed(ctx), default=str)
    assert password not in caplog.text


_ARGUMENTS = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ).map(lambda value: json.dumps(value)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=_ARGUMENTS, name=st.sampled_from(["lookup", "slow", "Lookup", "", "x" * 70]))
def test_malformed_tool_arguments_never_escape_as_an_unhandled_exception(arguments: str, name: str):
    """Whatever the model sends as a tool call, the tool's answer goes back to it, or the task fails with an
    agent error; the tool runs only with arguments that validated."""
    tools = Counter()
    ctx = context()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[answer("", (name, arguments)), answer("done")])
        try:
            result: str | None = make(tools, max_tool_errors=0).execute(ctx)
        except AimlAgentError as error:  # the only failure allowed: the tool's error counted against the limit
            result, failure = None, str(error)
    if result is None:
        assert "max_tool_errors=0" in failure
        assert route.call_count == 1
    else:
        assert result == "done"
        assert route.call_count == 2
        tool_message = sent(route, 1)["messages"][-1]
        assert tool_message["role"] == "tool"
        assert isinstance(tool_message["content"], str)
    assert all(isinstance(run, str) for run in tools.runs)
    steps = pushed(ctx)["steps"]
    assert steps[0]["tool_calls"][0]["name"] == name


def test_a_conversation_that_outgrows_the_context_is_refused_before_the_step_is_sent():
    from airflow_provider_aiml.models import DEFAULT_MODEL

    catalog_url = f"{TEST_BASE_URL.removesuffix('/v1')}/model/{DEFAULT_MODEL}"
    entry = {"object": "model", "data": {"id": DEFAULT_MODEL, "info": {"contextLength": 16_384}}}

    def dump() -> str:
        """A very long report."""
        return "x" * 200_000  # at least 25,000 tokens: over the model's 16,384

    ctx = context()
    with respx.mock() as api:
        catalog = api.get(catalog_url).mock(return_value=httpx.Response(200, json=entry))
        route = api.post(CHAT_URL).mock(side_effect=[answer("", ("dump", {})), answer("never asked")])
        with pytest.raises(AimlParameterError, match="16,384"):
            AimlAgentOperator(task_id="agent", prompt="Dump it.", tools=[dump]).execute(ctx)

    assert route.call_count == 1  # the second step was refused before it was sent
    assert catalog.call_count == 1  # looked up only once the conversation was long enough to matter
    assert len(pushed(ctx)["steps"]) == 1


def test_tasks_sharing_a_record_file_keep_their_own_steps(tmp_path):
    """Mapped instances with one checkpoint_path write the file at once: each reads back only its own lines."""
    from airflow_provider_aiml.agents.record import StepRecord, run_fingerprint

    path = tmp_path / "shared.jsonl"
    prints = [
        run_fingerprint("m", [{"role": "user", "content": "pay"}], [], {}, None, task=f"d.t[{i}]") for i in (0, 1)
    ]
    assert prints[0] != prints[1]  # the same run in two task instances
    writers = [StepRecord(path, fingerprint) for fingerprint in prints]
    for record in writers:
        record.open()  # both open the empty file before either writes
    for number, record in enumerate(writers):
        record.add_tool_start(1, "call_0", "pay")
        record.add_tool_result(1, "call_0", {"content": f"paid by {number}", "error": None})
    for record in writers:
        record.close()

    retried = StepRecord(path, prints[0])
    retried.open()
    assert retried.tool_result(1, "call_0")["outcome"] == {"content": "paid by 0", "error": None}
    assert (retried.replayable, retried.ignored) == (2, 2)


def test_a_cost_budget_the_api_gives_no_figures_for_stops_the_run_after_the_first_step():
    tools = Counter()
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=lambda request: answer("", ("lookup", {"city": "Oslo"})))
        with pytest.raises(AimlAgentError, match=r"reported no cost .* cannot be enforced"):
            make(tools, max_cost_usd=0.01).execute(context())
    assert route.call_count == 1


def test_two_calls_with_one_id_are_told_apart():
    tools = Counter()
    ctx = context()
    with respx.mock() as api:
        first = answer("", ("lookup", {"city": "Oslo"}), ("lookup", {"city": "Rome"}))
        body = json.loads(first.content)
        for call in body["choices"][0]["message"]["tool_calls"]:
            call["id"] = "dup"
        route = api.post(CHAT_URL).mock(side_effect=[httpx.Response(200, json=body), answer("Both sunny.")])
        make(tools).execute(ctx)

    assert sorted(tools.runs) == ["Oslo", "Rome"]  # both ran: neither was taken for an interrupted call
    tool_messages = [m for m in sent(route, 1)["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["dup", "s1_1"]
    assert [m["content"] for m in tool_messages] == ["sunny in Oslo", "sunny in Rome"]


def test_a_broken_escape_in_the_models_text_is_neither_fatal_nor_billed_twice(tmp_path):
    tools = Counter()
    record = tmp_path / "agent.jsonl"
    final = httpx.Response(200, content=answer("Sunny X.").content.replace(b"X", b"\\ud83d"))  # JSON: "\ud83d"
    with respx.mock() as api:
        # the arguments decode to a city with a lone surrogate in it, the final answer has one too
        route = api.post(CHAT_URL).mock(side_effect=[answer("", ("lookup", '{"city": "Oslo \\ud83d"}')), final])
        result = make(tools, checkpoint_path=str(record)).execute(context())

    assert route.call_count == 2
    assert tools.runs == ["Oslo \ud83d"]  # the tool got what the model sent
    assert json.loads(route.calls[1].request.content)["messages"][-1]["content"] == "sunny in Oslo ?"
    assert result == "Sunny ?."
    assert "model:2" in record.read_text(encoding="utf-8")  # every step was recorded

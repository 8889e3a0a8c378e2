"""The connection-wide limits as the hook applies them (respx): the daily budget refuses before sending, slots
and the rate hold across concurrent calls, every try counts, and the batch operator stops on the budget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import (
    AimlBatchError,
    AimlConfigurationError,
    AimlDailyBudgetError,
    AimlLimitStoreError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.settings import ConnectionSettings, LimitSettings
from airflow_provider_aiml.limits import reset_limiters
from airflow_provider_aiml.limits.plan import utc_day as limiter_day
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
MESSAGES = [{"role": "user", "content": "Hi"}]


def answer(usd: float | None = 0.25, content: str = "Hello") -> httpx.Response:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    headers = {} if usd is None else {"x-aimlapi-usd-spent": str(usd), "x-aimlapi-credits-used": "1"}
    return httpx.Response(200, json=body, headers=headers)


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``limited(conn_id, **extras)``: an aimlapi connection with limits, kept in a store of this test's own."""

    def make(conn_id: str = "aiml_limited", **extras: Any) -> AimlApiHook:
        extras.setdefault("limits_local_path", str(tmp_path / "limits.sqlite"))
        conn = {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL, "extra": extras}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return AimlApiHook(aiml_conn_id=conn_id)

    reset_limiters()
    yield make
    reset_limiters()


def test_no_limits_means_no_limiter_and_no_store() -> None:
    hook = AimlApiHook()
    with respx.mock() as api:
        api.post(CHAT_URL).mock(return_value=answer())
        hook.chat_completion(MESSAGES)
    assert hook.limiter is None


def test_the_daily_budget_counts_costs_then_refuses_before_sending(limited: Any) -> None:
    hook = limited(max_usd_per_day=0.5)
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(return_value=answer(usd=0.25))
        hook.chat_completion(MESSAGES)
        hook.chat_completion(MESSAGES)
        assert hook.limiter is not None
        assert hook.limiter.spent_today() == pytest.approx(0.5)
        with pytest.raises(AimlDailyBudgetError) as refused:
            hook.chat_completion(MESSAGES, client_request_id="third")
        assert route.call_count == 2  # the third call was never sent
    message = str(refused.value)
    assert "'aiml_limited'" in message
    assert "max_usd_per_day is $0.5" in message
    assert "$0.5000 today" in message
    assert "third" in message
    assert TEST_API_KEY not in message


def test_another_hook_and_the_async_path_share_the_budget(limited: Any) -> None:
    limited(max_usd_per_day=0.3)
    first, second = AimlApiHook(aiml_conn_id="aiml_limited"), AimlApiHook(aiml_conn_id="aiml_limited")
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(return_value=answer(usd=0.3))
        first.chat_completion(MESSAGES)

        async def later() -> None:
            try:
                await second.achat_completion(MESSAGES)
            finally:
                await second.aclose()

        with pytest.raises(AimlDailyBudgetError):
            asyncio.run(later())
        assert route.call_count == 1


def test_every_try_of_a_call_takes_a_turn_of_the_rate(limited: Any) -> None:
    hook = limited(max_requests_per_minute=600, max_retries=2)  # a burst of 10, then one every 60/591 s
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=[httpx.Response(500, json={"error": "busy"}), *[answer()] * 20])
        started = time.monotonic()
        for _ in range(11):  # 12 requests: the retry counts
            hook.chat_completion(MESSAGES)
        elapsed = time.monotonic() - started
    assert route.call_count == 12
    assert elapsed >= 2 * 60 / 591 * 0.9  # the 11th and 12th request waited their turn


def test_concurrent_async_calls_hold_at_most_max_concurrency_slots(limited: Any) -> None:
    hook = limited(max_concurrency=2)
    in_flight = peak = 0

    async def slow_answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return answer()

    async def main() -> list[Any]:
        try:
            return list(await asyncio.gather(*(hook.achat_completion(MESSAGES) for _ in range(6))))
        finally:
            await hook.aclose()

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(side_effect=slow_answer)
        started = time.monotonic()
        results = asyncio.run(main())
        elapsed = time.monotonic() - started
    assert len(results) == 6
    assert route.call_count == 6
    assert peak == 2
    assert elapsed >= 3 * 0.05 * 0.9  # three rounds of two


def test_a_failed_call_gives_its_slot_back(limited: Any) -> None:
    hook = limited(max_concurrency=1, max_retries=0)
    with respx.mock() as api:
        api.post(CHAT_URL).mock(side_effect=[httpx.Response(400, json={"error": "bad"}), answer()])
        with pytest.raises(Exception, match="400"):
            hook.chat_completion(MESSAGES)
        assert hook.chat_completion(MESSAGES).content == "Hello"  # would wait forever on a slot never given back


def test_a_stream_holds_its_slot_until_it_ends(limited: Any) -> None:
    hook = limited(max_concurrency=1)
    stream = (
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    with respx.mock() as api:
        api.post(CHAT_URL).mock(
            return_value=httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        )
        pieces = hook.stream_chat_completion(MESSAGES)
        next(pieces)  # the first delta: the stream, and its slot, are open
        limiter = hook.limiter
        assert limiter is not None
        assert limiter.store.admit(limiter.plan, "other", "2026-12-07").blocked_by == "slots"
        list(pieces)
        assert limiter.store.admit(limiter.plan, "other", "2026-12-07").granted


def test_a_stream_gives_its_slot_back_before_handing_over_the_result(limited: Any) -> None:
    from airflow_provider_aiml.models import ChatCompletionResult

    hook = limited(max_concurrency=1, max_usd_per_day=5.0)
    stream = (
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    headers = {"content-type": "text/event-stream", "x-aimlapi-usd-spent": "0.5"}
    with respx.mock() as api:
        api.post(CHAT_URL).mock(return_value=httpx.Response(200, content=stream, headers=headers))
        pieces = hook.stream_chat_completion(MESSAGES)
        final = next(piece for piece in pieces if isinstance(piece, ChatCompletionResult))
        limiter = hook.limiter
        assert limiter is not None
        # the caller holds the result and has not finished the generator: the slot is free, the cost counted
        assert limiter.store.admit(limiter.plan, "other", limiter_day()).granted
        assert limiter.spent_today() == pytest.approx(0.5)
    assert final.content == "Hi"


def test_an_answer_that_cannot_be_read_still_counts_its_billed_cost(limited: Any) -> None:
    from airflow_provider_aiml.exceptions import AimlResponseError

    hook = limited(max_usd_per_day=1.0, max_retries=0)
    broken = httpx.Response(200, content=b"{not json", headers={"x-aimlapi-usd-spent": "0.6"})
    with respx.mock() as api:
        api.post(CHAT_URL).mock(return_value=broken)
        with pytest.raises(AimlResponseError):
            hook.chat_completion(MESSAGES)
        with pytest.raises(AimlResponseError):
            hook.chat_completion(MESSAGES)
        with pytest.raises(AimlDailyBudgetError):  # $1.20 billed for two unreadable answers
            hook.chat_completion(MESSAGES)
    assert hook.limiter is not None
    assert hook.limiter.spent_today() == pytest.approx(1.2)


def test_an_unreachable_redis_store_fails_before_sending(limited: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_GONE",
        json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 1, "password": "redis-secret-pw"}),
    )
    hook = limited(max_concurrency=4, limits_redis_conn_id="redis_gone")
    with respx.mock(assert_all_called=False) as api:
        route = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlLimitStoreError) as failed:
            hook.chat_completion(MESSAGES)
        assert route.call_count == 0
    assert "Redis connection 'redis_gone'" in str(failed.value)
    assert "nothing was sent" in str(failed.value)
    assert "redis-secret-pw" not in str(failed.value)


def test_the_batch_operator_stops_on_the_connections_budget(limited: Any) -> None:
    limited(max_usd_per_day=0.5)
    batch = AimlBatchChatCompletionOperator(
        task_id="enrich",
        aiml_conn_id="aiml_limited",
        inputs=[f"record {i}" for i in range(6)],
        prompt="Summarize: {{ record }}",
        concurrency=1,
    )
    ti = mock.Mock(dag_id="dag", task_id="enrich", run_id="run", map_index=-1, try_number=1)
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(return_value=answer(usd=0.25))
        with pytest.raises(AimlBatchError) as stopped:
            batch.execute({"ti": ti})
    assert route.call_count == 2  # two calls spent the day's $0.50; the other four were not sent
    assert "max_usd_per_day" in str(stopped.value)
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    results = pushed["return_value"]
    assert [r["error"] is None for r in results] == [True, True, False, False, False, False]
    assert results[2]["error"].startswith("not run")
    assert pushed["batch"]["stop_reason"]
    assert "max_usd_per_day" in pushed["batch"]["stop_reason"]


def test_the_batch_operator_stops_when_the_limits_store_is_down(limited: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_GONE", json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 1, "password": "p"})
    )
    limited(max_concurrency=4, limits_redis_conn_id="redis_gone")
    batch = AimlBatchChatCompletionOperator(
        task_id="enrich", aiml_conn_id="aiml_limited", inputs=["a", "b", "c"], prompt="{{ record }}"
    )
    ti = mock.Mock(dag_id="dag", task_id="enrich", run_id="run", map_index=-1, try_number=1)
    with respx.mock(assert_all_called=False) as api:
        route = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlBatchError, match="could not be checked in Redis connection 'redis_gone'"):
            batch.execute({"ti": ti})
    assert route.call_count == 0
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    assert all(r["error"].startswith("not run") for r in pushed["return_value"])


def test_the_agent_stops_at_the_step_the_budget_refuses_with_its_steps_pushed(limited: Any) -> None:
    from airflow_provider_aiml.operators.agent import AimlAgentOperator

    limited(max_usd_per_day=0.2)

    def lookup(city: str) -> str:
        """The weather of a city."""
        return f"sunny in {city}"

    calling = answer(usd=0.25)
    body = json.loads(calling.content)
    body["choices"][0]["finish_reason"] = "tool_calls"
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'}}
        ],
    }
    agent = AimlAgentOperator(task_id="agent", aiml_conn_id="aiml_limited", prompt="Weather?", tools=[lookup])
    ti = mock.Mock(dag_id="dag", task_id="agent", run_id="run", map_index=-1, try_number=1)
    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=body, headers=calling.headers))
        with pytest.raises(AimlDailyBudgetError, match="max_usd_per_day"):
            agent.execute({"ti": ti})
    assert route.call_count == 1  # step 2 was refused before it was sent
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    assert [step["step"] for step in pushed["steps"]] == [1]
    assert pushed["steps"][0]["tool_calls"][0]["result"] == "sunny in Oslo"
    assert pushed["usage"]["usd_spent"] == pytest.approx(0.25)


def test_a_deferred_call_in_the_triggerer_counts_against_the_same_budget(limited: Any) -> None:
    from airflow_provider_aiml.triggers.aiml import AimlChatTrigger, result_from_event

    hook = limited(max_usd_per_day=0.25)
    trigger = AimlChatTrigger(aiml_conn_id="aiml_limited", messages=MESSAGES, client_request_id="deferred-1")

    async def fire() -> Any:
        return [event async for event in trigger.run()]

    with respx.mock() as api:
        route = api.post(CHAT_URL).mock(return_value=answer(usd=0.25))
        (first,) = asyncio.run(fire())
        assert result_from_event(first.payload).usage.usd_spent == pytest.approx(0.25)
        with pytest.raises(AimlDailyBudgetError, match="'aiml_limited'"):  # the worker's hook sees the spend
            hook.chat_completion(MESSAGES)
        (second,) = asyncio.run(fire())
        assert route.call_count == 1
    assert second.payload["error"]["type"] == "AimlDailyBudgetError"
    with pytest.raises(AimlDailyBudgetError, match="deferred-1 was not sent"):
        result_from_event(second.payload)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"max_usd_per_day": -1}, "'max_usd_per_day' must be at least 0"),
        ({"max_requests_per_minute": 0}, "'max_requests_per_minute' must be at least 1"),
        ({"max_requests_per_minute": 1.5}, "'max_requests_per_minute' must be a whole number"),
        ({"max_concurrency": "many"}, "'max_concurrency' must be a whole number"),
        ({"limits_lease_seconds": 0.1}, "'limits_lease_seconds' must be at least 1"),
    ],
)
def test_bad_limit_extras_fail_naming_the_field(extra: dict[str, Any], problem: str) -> None:
    conn = mock.Mock(password=TEST_API_KEY, host=TEST_BASE_URL, port=None, schema=None, extra_dejson=extra)
    with pytest.raises(AimlConfigurationError, match=problem):
        ConnectionSettings.from_connection(conn, "aiml_x")


def test_limit_extras_from_the_form_and_from_a_uri_read_alike() -> None:
    form = {"max_usd_per_day": 25, "max_requests_per_minute": 600, "max_concurrency": 16, "limits_redis_conn_id": "r"}
    uri = {key: str(value) for key, value in form.items()}
    empty = {"max_usd_per_day": None, "max_requests_per_minute": "", "max_concurrency": None}
    read = [
        ConnectionSettings.from_connection(
            mock.Mock(password=TEST_API_KEY, host=TEST_BASE_URL, port=None, schema=None, extra_dejson=extra), "c"
        ).limits
        for extra in (form, uri, empty)
    ]
    assert (
        read[0]
        == read[1]
        == LimitSettings(max_usd_per_day=25.0, max_requests_per_minute=600, max_concurrency=16, redis_conn_id="r")
    )
    assert read[2] == LimitSettings()
    assert not read[2].enabled

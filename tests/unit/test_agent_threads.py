"""ToolThreads: the threads an agent run's sync tools run in, awaited or waited for, and the loop's use of them."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
import time
from typing import Any

import pytest

from airflow_provider_aiml.agents import Tool, tool
from airflow_provider_aiml.agents.threads import ToolThreads

REQUEST = contextvars.ContextVar("REQUEST", default="unset")


def _where() -> tuple[str, str]:
    return threading.current_thread().name, REQUEST.get()


def _fail() -> None:
    raise KeyError("no such row")


def _alive(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def _wait_gone(prefix: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while _alive(prefix) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _alive(prefix)


def test_an_awaited_call_runs_in_a_thread_of_its_own_with_the_callers_context() -> None:
    threads = ToolThreads(2, name="t-await")

    async def main() -> tuple[tuple[str, str], str]:
        REQUEST.set("step 3")
        where = await threads.run(_where)
        return where, threading.current_thread().name

    try:
        (name, seen), loop_thread = asyncio.run(main())
    finally:
        threads.close()
    assert name == "t-await-1"
    assert name != loop_thread
    assert seen == "step 3"


def test_a_waited_call_runs_in_the_thread_and_returns_or_raises_there() -> None:
    threads = ToolThreads(1, name="t-wait")
    REQUEST.set("waited")
    try:
        assert threads.call(_where) == ("t-wait-1", "waited")
        with pytest.raises(KeyError, match="no such row"):
            threads.call(_fail)
        assert threads.call(lambda **kw: kw, a=1) == {"a": 1}
    finally:
        threads.close()
    assert threads.threads == 1


def test_an_awaited_call_hands_the_tools_exception_to_the_caller() -> None:
    threads = ToolThreads(1, name="t-raise")

    async def main() -> None:
        await threads.run(_fail)

    try:
        with pytest.raises(KeyError, match="no such row"):
            asyncio.run(main())
    finally:
        threads.close()


def test_threads_start_as_calls_need_them_up_to_the_size() -> None:
    threads = ToolThreads(3, name="t-size")
    spans: list[tuple[float, float]] = []

    def slow() -> None:
        started = time.perf_counter()
        time.sleep(0.2)
        spans.append((started, time.perf_counter()))

    async def main() -> None:
        for _ in range(5):  # one after another: one thread is enough
            await threads.run(_where)
        assert threads.threads == 1
        await asyncio.gather(*(threads.run(slow) for _ in range(3)))
        assert threads.threads == 3
        await asyncio.gather(*(threads.run(slow) for _ in range(6)))  # more calls than threads: they queue

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert threads.threads == 3
    first_three = spans[:3]
    assert max(end for _, end in first_three) - min(start for start, _ in first_three) < 0.35  # one round, not 3
    assert len(spans) == 9


def test_close_ends_the_threads_and_refuses_new_calls() -> None:
    threads = ToolThreads(2, name="t-close")

    async def main() -> None:
        await asyncio.gather(threads.run(_where), threads.run(_where))

    asyncio.run(main())
    assert _alive("t-close")
    threads.close()
    threads.close()  # twice is fine
    assert _wait_gone("t-close") == []
    with pytest.raises(RuntimeError, match="closed"):
        threads.call(_where)


def test_a_signal_interrupts_a_waited_call() -> None:
    """A task timeout (SIGALRM raising in the main thread) is not held up by a tool that does not return."""

    class Timeout(Exception):
        pass

    def raise_timeout(signum: int, frame: Any) -> None:
        raise Timeout

    release = threading.Event()
    threads = ToolThreads(1, name="t-signal")
    previous = signal.signal(signal.SIGALRM, raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    started = time.monotonic()
    try:
        with pytest.raises(Timeout):
            threads.call(release.wait, timeout=10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()
        threads.close()
    assert time.monotonic() - started < 5
    assert _wait_gone("t-signal") == []


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ToolThreads(0)


def test_a_lone_sync_call_may_run_an_event_loop_of_its_own() -> None:
    """Waited for from the loop's thread, the tool still runs in another: asyncio.run inside it works."""

    def fetch(city: str) -> str:
        """Fetch the weather with an async client."""

        async def inner() -> str:
            await asyncio.sleep(0)
            return f"{city}: sunny, from {threading.current_thread().name}"

        return asyncio.run(inner())

    lookup: Tool = tool(fetch)
    threads = ToolThreads(1, name="t-inner")

    async def main() -> Any:
        return await lookup.run('{"city": "Oslo"}', threads, exclusive=True)

    try:
        outcome = asyncio.run(main())
    finally:
        threads.close()
    assert outcome.error is None, outcome.content
    assert outcome.content == "Oslo: sunny, from t-inner-1"

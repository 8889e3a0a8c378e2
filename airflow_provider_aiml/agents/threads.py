"""The threads an agent run's plain (sync) tools run in, so a tool that blocks never blocks the run's work.

``asyncio.to_thread`` goes through the loop's default executor: a ``concurrent.futures`` future chained to an
asyncio one through callbacks and locks, then the loop's self-pipe to wake it, about 70 µs per call on a
2-core machine between network round trips. Two cheaper ways back are offered here:

- :meth:`ToolThreads.run`, awaited, for calls that run alongside others: one ``SimpleQueue.put`` there and one
  ``call_soon_threadsafe`` back.
- :meth:`ToolThreads.call`, for the one call of a step that asks for one (most steps): the event loop's thread
  waits for the tool's thread directly, about 20 µs. This is only for a loop that has nothing else to run
  meanwhile, which is the case of an agent run: the operator gives it an event loop of its own
  (:func:`~airflow_provider_aiml.operators.batch.run_coroutine`). The tool still runs in another thread, so a
  tool may call ``asyncio.run`` or Airflow's task SDK as in any sync code, and a signal (a task timeout)
  still interrupts the wait.

The threads start as calls need them, up to ``size`` (the run's ``max_parallel_tools``), so a run that calls
one tool at a time has one thread. Like ``asyncio.to_thread``, a call runs in a copy of the caller's context.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Reply = Callable[[Any, "BaseException | None"], None]
_Job = tuple[_Reply, contextvars.Context, Callable[..., Any], dict[str, Any]]


class ToolThreads:
    """Up to ``size`` threads, started on demand, running the calls of one agent run; :meth:`close` them after."""

    def __init__(self, size: int, name: str = "aiml-tool") -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # calls handed over and not yet answered; only the caller's thread changes it
        self._closed = False

    def run(self, function: Callable[..., T], /, **kwargs: Any) -> asyncio.Future[T]:
        """Call ``function(**kwargs)`` in one of the threads; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def reply(result: Any, error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody awaits the call any more
                loop.call_soon_threadsafe(self._settle, future, result, error)

        self._hand_over(reply, function, kwargs)
        return future

    def call(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Call ``function(**kwargs)`` in one of the threads and wait for it, blocking the calling thread."""
        answers: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
        self._hand_over(lambda result, error: answers.put((result, error)), function, kwargs)
        result, error = answers.get()  # a signal handler that raises (a task timeout) interrupts this
        self._busy -= 1
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        """Let every thread end once its call returns; a tool still running is not waited for (the threads
        are daemons, so one that never returns cannot keep the task's process alive)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)

    @property
    def threads(self) -> int:
        """How many threads were started."""
        return len(self._threads)

    def _hand_over(self, reply: _Reply, function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("the tool threads are closed")
        if self._busy >= len(self._threads) and len(self._threads) < self._size:
            thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._busy += 1
        self._jobs.put((reply, contextvars.copy_context(), function, kwargs))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            reply, context, function, kwargs = job
            try:
                result, error = context.run(function, **kwargs), None
            except BaseException as raised:  # handed to the caller, as an executor does
                result, error = None, raised
            reply(result, error)
            del job, reply, result, error

    def _settle(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        self._busy -= 1
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

"""Thread-safe mutable state shared by the emulator's handler threads."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_aiml.testing.catalog_store import CatalogStore
from airflow_provider_aiml.testing.faults import Fault
from airflow_provider_aiml.testing.pricing import credits_to_usd
from airflow_provider_aiml.testing.records import RecordedRequest
from airflow_provider_aiml.testing.replies import ReplyOverride
from airflow_provider_aiml.testing.scripts import ScriptedReply, ToolLoop
from airflow_provider_aiml.testing.usage_log import UsageLog


def normalize_fault_rates(
    rates: Mapping[Fault, float] | Iterable[tuple[Fault, float]] | None,
) -> tuple[tuple[Fault, float], ...]:
    """Check a fault -> probability mapping (each in [0, 1], sum <= 1) and freeze its order."""
    if rates is None:
        return ()
    items = list(rates.items()) if isinstance(rates, Mapping) else list(rates)
    total = 0.0
    for fault, probability in items:
        if not isinstance(fault, Fault):
            raise TypeError(f"fault_rates keys must be Fault instances, got {fault!r}")
        if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 <= probability <= 1:
            raise ValueError(f"fault probability must be within [0, 1], got {probability!r}")
        total += probability
    if total > 1 + 1e-9:
        raise ValueError(f"fault probabilities add up to {total:g}, more than 1")
    return tuple((fault, float(probability)) for fault, probability in items)


class EmulatorState:
    """Request log, queued faults, random faults, concurrency counters, billing and reply override."""

    def __init__(self, fault_rates: tuple[tuple[Fault, float], ...] = (), seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._slots: dict[int, int] = {}
        self._tokens = itertools.count()
        self._faults: deque[Fault] = deque()
        self._rates = fault_rates
        self._seed = seed
        self._rng = random.Random(seed)
        self._in_flight = 0
        self._max_in_flight = 0
        self._chat_count = 0
        self._embeddings_count = 0
        self._credits = 0
        self._billed_requests = 0
        self._override: ReplyOverride | None = None
        self._connections = 0
        self._script: deque[ScriptedReply] = deque()
        self._loop: ToolLoop | None = None
        self._call_ids = itertools.count(1)
        self.catalog = CatalogStore()
        """The models served (changed at run time through :class:`CatalogStore`)."""
        self.usage_log = UsageLog()
        """What ``GET /v2/logs`` reads: a row per generation request."""

    # -- request log --------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> int:
        """Append a request to the log; returns a token for :meth:`complete`."""
        with self._lock:
            token = next(self._tokens)
            self._slots[token] = len(self._log)
            self._log.append(request)
            if request.is_chat:
                self._chat_count += 1
            elif request.is_embeddings:
                self._embeddings_count += 1
            return token

    def complete(self, token: int, status: int | None) -> None:
        """Store the answered status of a logged request (ignored after a reset)."""
        with self._lock:
            index = self._slots.pop(token, None)
            if index is not None:
                self._log[index] = dataclasses.replace(self._log[index], status=status)

    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the log."""
        with self._lock:
            return list(self._log)

    # -- faults -------------------------------------------------------------------------------

    def add_fault(self, fault: Fault, times: int = 1) -> int:
        """Queue ``fault`` for the next ``times`` chat or embeddings requests; returns the queue length."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {fault!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an integer >= 1, got {times!r}")
        with self._lock:
            self._faults.extend([fault] * times)
            return len(self._faults)

    def set_fault_rates(self, rates: tuple[tuple[Fault, float], ...], seed: int | None = None) -> None:
        """Replace the random faults (and re-seed when ``seed`` is given)."""
        with self._lock:
            self._rates = rates
            if seed is not None:
                self._seed = seed
            self._rng = random.Random(self._seed)

    def next_fault(self) -> Fault | None:
        """The fault for the chat or embeddings request being handled: queued first, then a random one."""
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if not self._rates:
                return None
            draw = self._rng.random()
            cumulative = 0.0
            for fault, probability in self._rates:
                cumulative += probability
                if draw < cumulative:
                    return fault
            return None

    @property
    def pending_faults(self) -> int:
        """Number of queued fault applications left."""
        with self._lock:
            return len(self._faults)

    # -- concurrency --------------------------------------------------------------------------

    def connection_opened(self) -> None:
        """A client connection was accepted."""
        with self._lock:
            self._connections += 1

    @property
    def connections_opened(self) -> int:
        """Client connections accepted since start or reset (keep-alive reuses one)."""
        with self._lock:
            return self._connections

    def enter_chat(self) -> None:
        """A chat request starts being handled."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def exit_chat(self) -> None:
        """A chat request is done (answered, failed or dropped)."""
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        """Chat requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Highest number of concurrent chat requests since start or reset."""
        with self._lock:
            return self._max_in_flight

    # -- billing ------------------------------------------------------------------------------

    def bill(self, credits: int) -> None:
        """Charge a successfully delivered completion."""
        with self._lock:
            self._credits += credits
            self._billed_requests += 1

    @property
    def credits_used(self) -> int:
        """Credits charged so far."""
        with self._lock:
            return self._credits

    @property
    def usd_spent(self) -> float:
        """USD charged so far."""
        return credits_to_usd(self.credits_used)

    @property
    def billed_requests(self) -> int:
        """Completions charged so far."""
        with self._lock:
            return self._billed_requests

    # -- reply override -----------------------------------------------------------------------

    @property
    def reply_override(self) -> ReplyOverride | None:
        """The fixed reply parts, if any."""
        return self._override

    def set_reply_override(self, override: ReplyOverride | None) -> None:
        """Set or clear (``None``) the fixed reply parts."""
        self._override = override

    # -- scripted replies ---------------------------------------------------------------------

    def add_script(self, replies: Iterable[ScriptedReply]) -> int:
        """Queue scripted replies (after those already queued); returns the queue length."""
        items = list(replies)
        for reply in items:
            if not isinstance(reply, ScriptedReply):
                raise TypeError(f"expected a ScriptedReply, got {reply!r}")
        with self._lock:
            self._script.extend(items)
            return len(self._script)

    def set_loop(self, loop: ToolLoop | None) -> None:
        """Start (or, with ``None``, stop) the never-ending tool loop."""
        with self._lock:
            self._loop = loop

    def clear_script(self) -> None:
        """Drop the queued scripted replies and stop the tool loop."""
        with self._lock:
            self._script.clear()
            self._loop = None

    def take_scripted(self, body: Mapping[str, Any], *, consume: bool = True) -> ScriptedReply | None:
        """The scripted reply for an admitted chat request: the head of the queue (left there unless
        ``consume``), else the tool loop's call when the request offers that tool, else ``None``."""
        with self._lock:
            if self._script:
                return self._script.popleft() if consume else self._script[0]
            loop = self._loop
        return loop.reply if loop is not None and loop.applies_to(body) else None

    def next_call_id(self) -> str:
        """A fresh tool-call id for a scripted reply: ``call_1``, ``call_2``... (restarted by ``reset``)."""
        with self._lock:
            return f"call_{next(self._call_ids)}"

    @property
    def scripted_replies_left(self) -> int:
        """Queued scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def script_dict(self) -> dict[str, Any]:
        """The queue and the loop as JSON."""
        with self._lock:
            return {
                "replies": [reply.to_dict() for reply in self._script],
                "loop": None if self._loop is None else self._loop.to_dict(),
            }

    # -- reset --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear queued faults, the log, counters, billing and usage rows, the reply override and the script;
        restore the built-in catalog; re-seed."""
        with self._lock:
            self._log.clear()
            self._slots.clear()
            self._faults.clear()
            self._rng = random.Random(self._seed)
            self._max_in_flight = self._in_flight
            self._connections = 0
            self._chat_count = 0
            self._embeddings_count = 0
            self._credits = 0
            self._billed_requests = 0
            self._override = None
            self._script.clear()
            self._loop = None
            self._call_ids = itertools.count(1)
        self.catalog.reset()
        self.usage_log.clear()

    def stats(self) -> dict[str, Any]:
        """Counters as JSON."""
        with self._lock:
            return {
                "requests": len(self._log),
                "chat_requests": self._chat_count,
                "embedding_requests": self._embeddings_count,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "connections_opened": self._connections,
                "pending_faults": len(self._faults),
                "scripted_replies_left": len(self._script),
                "tool_loop": self._loop is not None,
                "billed_requests": self._billed_requests,
                "credits_used": self._credits,
                "usd_spent": credits_to_usd(self._credits),
            }

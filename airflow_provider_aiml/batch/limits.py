"""Pacing of a batch: bounded in-flight calls that shrink on 429s, and per-minute request and token limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable


class AdaptiveConcurrency:
    """At most ``limit`` calls in flight; a rate limit (429) halves the limit and pauses every worker.

    The limit grows back by one slot for every ``limit`` successes (additive increase, multiplicative decrease),
    so the whole batch slows down when the API pushes back, not only the record that got the 429.
    """

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.rate_limited = 0
        self._clock = clock
        self._paused_until = 0.0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for a free slot (and for the end of a rate-limit pause)."""
        async with self._changed:
            while True:
                pause = self._paused_until - self._clock()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=pause)
                    continue
                if self.in_flight < max(1, int(self.limit)):
                    self.in_flight += 1
                    return
                await self._changed.wait()

    async def release(self, *, rate_limited_for: float | None = None) -> None:
        """Free a slot; ``rate_limited_for`` (seconds) reports a 429 and its wait."""
        async with self._changed:
            self.in_flight -= 1
            if rate_limited_for is not None:
                self.rate_limited += 1
                self.limit = max(1.0, self.limit / 2)
                self._paused_until = max(self._paused_until, self._clock() + rate_limited_for)
            else:
                self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
            self._changed.notify_all()


class RateWindow:
    """A sliding-window limit on how much (requests or tokens) may start within ``window`` seconds."""

    def __init__(self, per_window: float, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_window = per_window
        self.window = window
        self._clock = clock
        self._events: deque[list[float]] = deque()  # [started, amount]
        self._total = 0.0

    def delay_for(self, amount: float) -> float:
        """Seconds to wait before ``amount`` more fits in the window (0 when it fits now)."""
        now = self._clock()
        self._expire(now)
        if not self._events or self._total + amount <= self.per_window:
            return 0.0  # an empty window always admits one item, however large, or nothing would ever run
        excess = self._total + amount - self.per_window
        freed = 0.0
        for started, size in self._events:
            freed += size
            if freed >= excess:
                return max(0.0, started + self.window - now)
        return max(0.0, self._events[-1][0] + self.window - now)

    def add(self, amount: float) -> list[float]:
        """Count ``amount`` as used now; returns the entry, to correct it later."""
        now = self._clock()
        self._expire(now)
        entry = [now, amount]
        self._events.append(entry)
        self._total += amount
        return entry

    def correct(self, entry: list[float], amount: float) -> None:
        """Replace an entry's amount (an estimate) by the real one, if it is still in the window."""
        if entry[0] > self._clock() - self.window:  # still counted in the window
            self._total += amount - entry[1]
        entry[1] = amount

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window:
            self._total -= self._events.popleft()[1]


class RateLimits:
    """Per-minute request and token limits of a batch (either may be off)."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = RateWindow(requests_per_minute, window, clock) if requests_per_minute else None
        self.tokens = RateWindow(tokens_per_minute, window, clock) if tokens_per_minute else None
        self._lock = asyncio.Lock()

    async def admit(self, estimated_tokens: float) -> list[float] | None:
        """Wait until one more request with about ``estimated_tokens`` fits both limits, then count it.

        Returns the token entry, for :meth:`correct_tokens` once the real usage is known.
        """
        async with self._lock:  # one waiter at a time keeps the order fair and the windows consistent
            while True:
                delay = max(
                    self.requests.delay_for(1) if self.requests else 0.0,
                    self.tokens.delay_for(estimated_tokens) if self.tokens else 0.0,
                )
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            if self.requests:
                self.requests.add(1)
            return self.tokens.add(estimated_tokens) if self.tokens else None

    def correct_tokens(self, entry: list[float] | None, actual: float) -> None:
        """Replace a request's token estimate by what it really used, once its usage is known."""
        if self.tokens and entry is not None:
            self.tokens.correct(entry, actual)

"""What a connection's limits mean in the units the stores work in, and what a store answers.

Requests per minute are a GCRA (the token bucket written as one stored timestamp, the "theoretical arrival
time"): requests are spaced ``interval_s`` apart on average, with a burst of about one second's worth allowed.
The interval is chosen so that no 60-second window, wherever it starts, holds more than
``max_requests_per_minute`` requests: with a burst ``b`` and an interval ``T``, a half-open window of ``W``
seconds holds fewer than ``W / T + b`` requests, so ``T = 60 / (R - b + 1)`` gives at most ``R``. The
sustained rate is then ``R - b + 1`` a minute, under 2% less than ``R``.

Concurrency is leased slots: a slot is taken with an expiry ``lease_s`` ahead and renewed while its call runs,
so the slots of a worker that was killed come back after at most ``lease_s``.

The daily budget is a per-UTC-day sum of what the calls cost, as the API reported it. A request is admitted
while that sum, plus what the requests in flight will likely cost (the day's average call), is under the
budget: a request that the calls in flight may leave no room for waits for them to land, and only a spent
budget refuses. Every admission takes a lease for this count, even without ``max_concurrency``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from airflow_provider_aiml.hooks.settings import LimitSettings

SLOT_POLL_S = 0.005
"""How soon a caller waiting for a concurrency slot first asks again (one caller per process asks at a time);
the wait doubles while the slots stay taken, up to :data:`SLOT_POLL_MAX_S`."""
SLOT_POLL_MAX_S = 0.05
DAY_KEPT_S = 3 * 86_400
"""How long a day's spend is kept by the stores after its last call."""


@dataclass(frozen=True)
class LimitPlan:
    """One connection's limits as the stores apply them."""

    namespace: str
    """Every key of the connection's state starts with this (``aiml:limits:{conn_id}``)."""
    interval_s: float | None
    """GCRA emission interval: seconds between requests at the sustained rate; ``None``: no rate limit."""
    tolerance_s: float
    """How far ahead of its turn a request may go (the burst, as time)."""
    max_concurrency: int | None
    max_usd_per_day: float | None
    lease_s: float

    @property
    def takes_leases(self) -> bool:
        """Whether each admission takes a lease: for ``max_concurrency``, and to count what a budget has in flight."""
        return self.max_concurrency is not None or self.max_usd_per_day is not None

    @classmethod
    def of(cls, conn_id: str, limits: LimitSettings) -> LimitPlan:
        interval = tolerance = None
        rpm = limits.max_requests_per_minute
        if rpm is not None:
            burst = burst_of(rpm)
            # Rounded up to the microsecond, the stores' resolution, so the rounding never runs the rate fast.
            interval = math.ceil(60e6 / (rpm - burst + 1)) / 1e6
            tolerance = (burst - 1) * interval
        return cls(
            namespace=f"aiml:limits:{{{conn_id}}}",  # a Redis Cluster hash tag: every key in one slot
            interval_s=interval,
            tolerance_s=tolerance or 0.0,
            max_concurrency=limits.max_concurrency,
            max_usd_per_day=limits.max_usd_per_day,
            lease_s=limits.lease_seconds,
        )


def burst_of(requests_per_minute: int) -> int:
    """The requests that may go at once: one second's worth, at least one."""
    return max(1, requests_per_minute // 60)


def utc_day(now: dt.datetime | None = None) -> str:
    """The UTC day a call's spend counts for, as ``YYYY-MM-DD``."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Admission:
    """A store's answer to "may this request start now?"."""

    granted: bool
    blocked_by: str | None = None
    """``"budget"`` (spent: refused), ``"in_flight"`` (the calls in flight may spend the rest: wait), ``"slots"``
    or ``"rate"`` when not granted."""
    wait_s: float = 0.0
    """When blocked by the rate or the slots: how long to wait before asking again."""
    spent_usd: float = 0.0
    """When blocked by the budget: the day's spend so far."""
    in_flight: int = 0
    """When blocked by the budget: the requests still running, whose cost is counted ahead."""
    in_use: int = 0
    """When blocked by the slots: how many are taken."""


GRANTED = Admission(True)

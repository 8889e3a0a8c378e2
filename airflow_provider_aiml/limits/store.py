"""What a store of shared limit state does; :mod:`.local` and :mod:`.redis` are the two there are.

Each operation is atomic in the store (one SQLite transaction, one Redis script), so any number of processes
on any number of machines can share a store: a request is admitted by the budget, the slots and the rate
together or not at all. The operations are blocking; the limiter runs them in a thread for async callers.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from airflow_provider_aiml.limits.plan import Admission, LimitPlan


class LimitStore(Protocol):
    """Shared state of the connection-wide limits."""

    location: str
    """Where the state is (a file path, a Redis connection id), for messages; never a password."""

    def admit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        """Start a request now if the budget, a slot and the rate allow it, taking the lease and the turn."""

    def release(self, plan: LimitPlan, lease_id: str, day: str, usd: float | None) -> None:
        """Give the lease back and add what the request cost to the day's spend (``None``: no cost reported).

        Releasing a lease twice counts its cost once."""

    def renew(self, plan: LimitPlan, lease_ids: Collection[str]) -> int:
        """Push back the expiry of leases still held; returns how many were still held."""

    def spent(self, plan: LimitPlan, day: str) -> float:
        """The day's spend so far."""

    def after_fork(self) -> None:
        """Forget what the parent process had open (called in a forked child before any use)."""

    def close(self) -> None:
        """Close the store's connections."""

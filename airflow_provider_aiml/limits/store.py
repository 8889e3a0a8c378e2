"""What a store of shared limit state does; :mod:`.local` and :mod:`.redis` are the two there are.

Each operation is atomic in the store (one SQLite transaction, one Redis script), so any number of processes
on any number of machines can share a store: a request is admitted by the budget, the slots and the rate
together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from airflow_provider_aiml.limits.plan import Admission, LimitPlan


class LimitStore(Protocol):
    """Shared state of the connection-wide limits."""

    location: str
    """Where the state is (a file path, a Redis address), for messages; never a password."""

    def admit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        """Start a request now if the budget, a slot and the rate allow it, taking the slot and the turn."""

    def release(self, plan: LimitPlan, lease_id: str, day: str, usd: float) -> None:
        """Give the slot back and add what the request cost to the day's spend."""

    def renew(self, plan: LimitPlan, lease_ids: Collection[str]) -> int:
        """Push back the expiry of slots still held; returns how many were still held."""

    def spent(self, plan: LimitPlan, day: str) -> float:
        """The day's spend so far."""

    async def aadmit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        """Async :meth:`admit`."""

    async def arelease(self, plan: LimitPlan, lease_id: str, day: str, usd: float) -> None:
        """Async :meth:`release`."""

    async def aclose(self) -> None:
        """Close what the running event loop used."""

    def close(self) -> None:
        """Close the store's connections."""

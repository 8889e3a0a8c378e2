"""Applies a connection's shared limits to each request the hook sends: one place, for every call path.

Before each HTTP request (each try of a call) :meth:`ConnectionLimiter.acquire` waits until the rate and a
concurrency slot allow it, or raises :class:`~airflow_provider_aiml.exceptions.AimlDailyBudgetError` when
the day's budget is spent; after the answer, :meth:`~ConnectionLimiter.release` gives the slot back and adds
the cost. Within a process the waiting callers ask the store one at a time, in turn, so the store sees one
poll per process rather than one per waiting call. While slots are held a thread renews their leases.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aiml.exceptions import AimlDailyBudgetError, AimlLimitStoreError
from airflow_provider_aiml.hooks.settings import LimitSettings
from airflow_provider_aiml.limits.plan import Admission, LimitPlan, utc_day
from airflow_provider_aiml.limits.store import LimitStore

WAIT_LOGGED_AFTER_S = 5.0
"""A call that has waited this long for the limits says so in the log, once."""
LONGEST_SLEEP_S = 2.0
"""A waiting call asks again at least this often (a budget may be spent meanwhile)."""

_log = logging.getLogger(__name__)


@dataclass
class Lease:
    """One request's admission; give it back with :meth:`ConnectionLimiter.release`."""

    lease_id: str
    day: str
    waited_s: float = 0.0


@dataclass
class ConnectionLimiter:
    """The shared limits of one connection in this process (see :func:`limiter_for`)."""

    conn_id: str
    plan: LimitPlan
    store: LimitStore
    _turn: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _async_turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = field(default_factory=dict, repr=False)
    _held: set[str] = field(default_factory=set, repr=False)
    _held_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _keeper: threading.Thread | None = field(default=None, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _warned_no_cost: bool = field(default=False, repr=False)

    def acquire(self, call_id: str, log: Any = _log) -> Lease:
        """Wait until the request may start (blocking); raises past the day's budget."""
        lease, waiting = Lease(uuid.uuid4().hex, utc_day()), _Waiting(self, call_id, log)
        with self._turn:
            while not (admission := self._admit(lease)).granted:
                time.sleep(waiting.pause(admission))
        return self._taken(lease, waiting)

    async def aacquire(self, call_id: str, log: Any = _log) -> Lease:
        """Async :meth:`acquire`."""
        lease, waiting = Lease(uuid.uuid4().hex, utc_day()), _Waiting(self, call_id, log)
        async with self._async_turn():
            while not (admission := await self._aadmit(lease)).granted:
                await asyncio.sleep(waiting.pause(admission))
        return self._taken(lease, waiting)

    def release(self, lease: Lease, usd: float | None, log: Any = _log) -> None:
        """Give the slot back and count the cost; never raises (the answer it follows is already paid for)."""
        self._drop(lease)
        try:
            self.store.release(self.plan, lease.lease_id, lease.day, self._cost(usd, log))
        except Exception as error:
            self._release_failed(error, log)

    async def arelease(self, lease: Lease, usd: float | None, log: Any = _log) -> None:
        """Async :meth:`release`."""
        self._drop(lease)
        try:
            await self.store.arelease(self.plan, lease.lease_id, lease.day, self._cost(usd, log))
        except Exception as error:
            self._release_failed(error, log)

    def slot(self, call_id: str, log: Any = _log) -> Slot:
        """``with limiter.slot(id) as slot: ...; slot.cost = usd``: acquire, then release with the cost."""
        return Slot(self, call_id, log)

    def close(self) -> None:
        """Stop renewing leases (the process is done with this limiter)."""
        self._closed.set()

    def spent_today(self) -> float:
        """What the connection has spent today (UTC), as the store counts it."""
        return self.store.spent(self.plan, utc_day())

    # --- the store ------------------------------------------------------------------------------------------

    def _admit(self, lease: Lease) -> Admission:
        try:
            return self.store.admit(self.plan, lease.lease_id, lease.day)
        except Exception as error:
            raise self._store_error(error) from None

    async def _aadmit(self, lease: Lease) -> Admission:
        try:
            return await self.store.aadmit(self.plan, lease.lease_id, lease.day)
        except Exception as error:
            raise self._store_error(error) from None

    def _store_error(self, error: Exception) -> AimlLimitStoreError:
        return AimlLimitStoreError(
            f"The connection-wide limits of {self.conn_id!r} could not be checked in {self.store.location} "
            f"({type(error).__name__}: {error}); nothing was sent"
        )

    def _release_failed(self, error: Exception, log: Any) -> None:
        log.warning(
            "Giving back a slot of %r's limits in %s failed (%s: %s); the slot comes back when its lease ends",
            self.conn_id,
            self.store.location,
            type(error).__name__,
            error,
        )

    def _cost(self, usd: float | None, log: Any) -> float:
        if usd is None and self.plan.max_usd_per_day is not None and not self._warned_no_cost:
            self._warned_no_cost = True
            log.warning(
                "The API reported no cost for a call: connection %r's max_usd_per_day counts only reported costs",
                self.conn_id,
            )
        return usd or 0.0

    def _async_turn(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        turn = self._async_turns.get(loop)
        if turn is None:
            for ended in [other for other in self._async_turns if other.is_closed()]:
                del self._async_turns[ended]
            turn = self._async_turns[loop] = asyncio.Lock()
        return turn

    # --- leases ---------------------------------------------------------------------------------------------

    def _taken(self, lease: Lease, waiting: _Waiting) -> Lease:
        lease.waited_s = time.monotonic() - waiting.started
        if self.plan.max_concurrency is not None:
            with self._held_lock:
                self._held.add(lease.lease_id)
                if self._keeper is None:
                    self._keeper = threading.Thread(target=self._keep, name=f"aiml-leases-{self.conn_id}", daemon=True)
                    self._keeper.start()
        return lease

    def _drop(self, lease: Lease) -> None:
        if self.plan.max_concurrency is not None:
            with self._held_lock:
                self._held.discard(lease.lease_id)

    def _keep(self) -> None:
        """Renew the held leases every third of a lease; end once none has been held for a whole lease."""
        period = self.plan.lease_s / 3
        idle_since: float | None = None
        while not self._closed.wait(period):
            with self._held_lock:
                held = list(self._held)
                if not held:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= self.plan.lease_s:
                        self._keeper = None
                        return
                    continue
            idle_since = None
            try:
                still = self.store.renew(self.plan, held)
            except Exception as error:
                _log.warning("Renewing %d slots of %r's limits failed: %s", len(held), self.conn_id, error)
                continue
            if still < len(held):
                _log.warning(
                    "%d of %d slots of %r's max_concurrency had expired before their calls ended",
                    len(held) - still,
                    len(held),
                    self.conn_id,
                )
        with self._held_lock:
            self._keeper = None


class Slot:
    """One request's admission as a context manager, sync (``with``) or async (``async with``); set ``cost`` to
    what the request cost before the block ends."""

    __slots__ = ("_call_id", "_lease", "_limiter", "_log", "cost")

    def __init__(self, limiter: ConnectionLimiter, call_id: str, log: Any) -> None:
        self._limiter, self._call_id, self._log = limiter, call_id, log
        self._lease: Lease | None = None
        self.cost: float | None = None

    def __enter__(self) -> Slot:
        self._lease = self._limiter.acquire(self._call_id, self._log)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lease is not None:
            self._limiter.release(self._lease, self.cost, self._log)

    async def __aenter__(self) -> Slot:
        self._lease = await self._limiter.aacquire(self._call_id, self._log)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lease is not None:
            await self._limiter.arelease(self._lease, self.cost, self._log)


class NoSlot:
    """The slot of a connection without limits: nothing to wait for or give back."""

    __slots__ = ("cost",)

    def __init__(self) -> None:
        self.cost: float | None = None

    def __enter__(self) -> NoSlot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> NoSlot:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


NO_SLOT = NoSlot()


@dataclass
class _Waiting:
    """One call's wait: how long to sleep after each refusal, the budget error, the one log line."""

    limiter: ConnectionLimiter
    call_id: str
    log: Any
    started: float = field(default_factory=time.monotonic)
    logged: bool = False

    def pause(self, admission: Admission) -> float:
        plan, conn_id = self.limiter.plan, self.limiter.conn_id
        if admission.blocked_by == "budget":
            raise AimlDailyBudgetError(
                f"Connection {conn_id!r} has spent ${admission.spent_usd:.4f} today (UTC), its max_usd_per_day is "
                f"${plan.max_usd_per_day:g}: call {self.call_id} was not sent. New calls are refused until 00:00 "
                "UTC; raise max_usd_per_day in the connection to go on today."
            )
        if not self.logged and time.monotonic() - self.started >= WAIT_LOGGED_AFTER_S:
            self.logged = True
            what = (
                f"all {plan.max_concurrency} slots of max_concurrency in use"
                if admission.blocked_by == "slots"
                else f"max_requests_per_minute={_rpm(plan)}"
            )
            self.log.info(
                "Call %s has waited %.0fs for connection %r's limits (%s)",
                self.call_id,
                time.monotonic() - self.started,
                conn_id,
                what,
            )
        return min(admission.wait_s, LONGEST_SLEEP_S)


def _rpm(plan: LimitPlan) -> str:
    return "?" if plan.interval_s is None else f"{round(60 / plan.interval_s + plan.tolerance_s / plan.interval_s)}"


# --- one limiter per connection and process ---------------------------------------------------------------------

_limiters: dict[tuple[str, LimitSettings], ConnectionLimiter] = {}
_stores: dict[tuple[str, str | None], LimitStore] = {}
_registry_lock = threading.Lock()


def limiter_for(conn_id: str, limits: LimitSettings) -> ConnectionLimiter | None:
    """The process's limiter of a connection, or ``None`` when it sets no limit (nothing to check then)."""
    if not limits.enabled:
        return None
    key = (conn_id, limits)
    limiter = _limiters.get(key)
    if limiter is None:
        with _registry_lock:
            limiter = _limiters.get(key)
            if limiter is None:
                limiter = _limiters[key] = ConnectionLimiter(conn_id, LimitPlan.of(conn_id, limits), _store_for(limits))
    return limiter


def _store_for(limits: LimitSettings) -> LimitStore:
    key = ("redis", limits.redis_conn_id) if limits.redis_conn_id else ("local", limits.local_path)
    store = _stores.get(key)
    if store is None:
        if limits.redis_conn_id:
            from airflow_provider_aiml.limits.redis import RedisLimitStore

            store = RedisLimitStore(limits.redis_conn_id)
        else:
            from airflow_provider_aiml.limits.local import LocalLimitStore

            store = LocalLimitStore(limits.local_path)
        _stores[key] = store
    return store


def reset_limiters() -> None:
    """Forget every limiter and close their stores (tests; a process that changes connections)."""
    with _registry_lock:
        for limiter in _limiters.values():
            limiter.close()
        for store in _stores.values():
            store.close()
        _stores.clear()
        _limiters.clear()

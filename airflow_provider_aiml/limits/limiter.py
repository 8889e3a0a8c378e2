"""Applies a connection's shared limits to each request the hook sends: one place, for every call path.

Before each HTTP request (each try of a call) :meth:`ConnectionLimiter.acquire` waits until the rate and a
concurrency slot allow it, or raises :class:`~airflow_provider_aiml.exceptions.AimlDailyBudgetError` when
the day's budget is spent; after the answer, :meth:`~ConnectionLimiter.release` gives the lease back and adds
the cost. Within a process the waiting callers ask the store one at a time, in turn, so the store sees one
poll per process rather than one per waiting call. While leases are held a thread renews them.

Async callers run the store's operations in a thread, so a slow store never blocks the event loop, and one
store client serves every loop of the process. A cancelled caller still gives back what it took: a lease the
store granted after the caller was cancelled is released, and a release is never cut short. A process forked
from one that used a limiter (``multiprocessing`` in a task) starts afresh with locks and a keeper of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aiml.exceptions import AimlDailyBudgetError, AimlLimitStoreError
from airflow_provider_aiml.hooks.parsing import billed_usd
from airflow_provider_aiml.hooks.settings import LimitSettings
from airflow_provider_aiml.limits.plan import SLOT_POLL_MAX_S, Admission, LimitPlan, utc_day
from airflow_provider_aiml.limits.store import LimitStore

WAIT_LOGGED_AFTER_S = 5.0
"""A call that has waited this long for the limits says so in the log, once."""
LONGEST_SLEEP_S = 2.0
"""A waiting call asks again at least this often (a budget may be spent meanwhile)."""
STORE_THREADS = 4
"""Threads that run the store's operations for async callers (admissions take turns; releases overlap)."""

_log = logging.getLogger(__name__)


@dataclass
class Lease:
    """One request's admission; give it back with :meth:`ConnectionLimiter.release`."""

    lease_id: str
    day: str
    waited_s: float = 0.0


@dataclass
class _ProcessState:
    """What a limiter keeps per process: made again in a forked child, whose copies could be locked."""

    pid: int = field(default_factory=os.getpid)
    turn: threading.Lock = field(default_factory=threading.Lock)
    async_turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    held_lock: threading.Lock = field(default_factory=threading.Lock)
    keeper: threading.Thread | None = None
    pending: list[tuple[Lease, float | None]] = field(default_factory=list)
    """Releases the store refused (it was down): tried again by the keeper, so their cost is not lost."""
    executor: concurrent.futures.ThreadPoolExecutor | None = None


@dataclass
class ConnectionLimiter:
    """The shared limits of one connection in this process (see :func:`limiter_for`)."""

    conn_id: str
    plan: LimitPlan
    store: LimitStore
    _state: _ProcessState = field(default_factory=_ProcessState, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _warned_no_cost: bool = field(default=False, repr=False)

    def acquire(self, call_id: str, log: Any = _log) -> Lease:
        """Wait until the request may start (blocking); raises past the day's budget."""
        state, waiting = self._here(), _Waiting(self, call_id, log)
        lease = Lease(uuid.uuid4().hex, utc_day())
        with state.turn:
            while True:
                lease.day = utc_day()  # a call that waits past midnight counts for the new day
                admission = self._admit(lease)
                if admission.granted:
                    break
                time.sleep(waiting.pause(admission))
        return self._taken(lease, waiting)

    async def aacquire(self, call_id: str, log: Any = _log) -> Lease:
        """Async :meth:`acquire`."""
        state, waiting = self._here(), _Waiting(self, call_id, log)
        lease = Lease(uuid.uuid4().hex, utc_day())
        async with self._async_turn(state):
            while True:
                lease.day = utc_day()
                admission = await self._aadmit(lease, state)
                if admission.granted:
                    break
                await asyncio.sleep(waiting.pause(admission))
        return self._taken(lease, waiting)

    def release(self, lease: Lease, usd: float | None, log: Any = _log) -> None:
        """Give the lease back and count the cost; never raises (the answer it follows is already paid for)."""
        self._drop(lease)
        self._note_cost(usd, log)
        try:
            self.store.release(self.plan, lease.lease_id, lease.day, usd)
        except Exception as error:
            self._release_failed(lease, usd, error, log)

    async def arelease(self, lease: Lease, usd: float | None, log: Any = _log) -> None:
        """Async :meth:`release`; runs to the end even when the caller is cancelled meanwhile."""
        state = self._here()
        self._drop(lease)
        self._note_cost(usd, log)
        job = self._executor(state).submit(self.store.release, self.plan, lease.lease_id, lease.day, usd)
        try:
            await asyncio.shield(asyncio.wrap_future(job))
        except asyncio.CancelledError:
            raise  # the release itself goes on in its thread
        except Exception as error:
            self._release_failed(lease, usd, error, log)

    def slot(self, call_id: str, log: Any = _log) -> Slot:
        """``with limiter.slot(id) as slot: ...; slot.cost = usd``: acquire, then release with the cost."""
        return Slot(self, call_id, log)

    def close(self) -> None:
        """Stop renewing leases and retrying releases (the process is done with this limiter)."""
        self._closed.set()
        executor = self._state.executor
        if executor is not None:
            executor.shutdown(wait=False)

    def spent_today(self) -> float:
        """What the connection has spent today (UTC), as the store counts it."""
        return self.store.spent(self.plan, utc_day())

    def after_fork(self) -> None:
        """Start afresh in a forked child: the parent's locks, leases and threads are not this process's."""
        self._state = _ProcessState()

    # --- the store ------------------------------------------------------------------------------------------

    def _here(self) -> _ProcessState:
        if self._state.pid != os.getpid():  # forked without the fork hook having run (it always should)
            self.after_fork()
        return self._state

    def _admit(self, lease: Lease) -> Admission:
        try:
            return self.store.admit(self.plan, lease.lease_id, lease.day)
        except Exception as error:
            raise self._store_error(error) from None

    async def _aadmit(self, lease: Lease, state: _ProcessState) -> Admission:
        job = self._executor(state).submit(self.store.admit, self.plan, lease.lease_id, lease.day)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # The store may grant the lease after the caller gave up: give it back once it has.
            job.add_done_callback(lambda done: self._release_orphan(done, lease))
            raise
        except Exception as error:
            raise self._store_error(error) from None

    def _release_orphan(self, done: concurrent.futures.Future[Admission], lease: Lease) -> None:
        if done.cancelled() or done.exception() is not None or not done.result().granted:
            return
        try:
            self.store.release(self.plan, lease.lease_id, lease.day, None)
        except Exception as error:
            _log.warning("Giving back a lease of %r after a cancelled call failed: %s", self.conn_id, error)

    def _executor(self, state: _ProcessState) -> concurrent.futures.ThreadPoolExecutor:
        if state.executor is None:
            state.executor = concurrent.futures.ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="aiml-limits")
        return state.executor

    def _store_error(self, error: Exception) -> AimlLimitStoreError:
        return AimlLimitStoreError(
            f"The connection-wide limits of {self.conn_id!r} could not be checked in {self.store.location} "
            f"({type(error).__name__}: {error}); nothing was sent"
        )

    def _release_failed(self, lease: Lease, usd: float | None, error: Exception, log: Any) -> None:
        log.warning(
            "Giving back a lease of %r's limits in %s failed (%s: %s); it is tried again in the background",
            self.conn_id,
            self.store.location,
            type(error).__name__,
            error,
        )
        state = self._here()
        with state.held_lock:
            state.pending.append((lease, usd))
        self._ensure_keeper(state)

    def _note_cost(self, usd: float | None, log: Any) -> None:
        if usd is None and self.plan.max_usd_per_day is not None and not self._warned_no_cost:
            self._warned_no_cost = True
            log.warning(
                "The API reported no cost for a call: connection %r's max_usd_per_day counts only reported costs",
                self.conn_id,
            )

    def _async_turn(self, state: _ProcessState) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        turn = state.async_turns.get(loop)
        if turn is None:
            for ended in [other for other in state.async_turns if other.is_closed()]:
                del state.async_turns[ended]
            turn = state.async_turns[loop] = asyncio.Lock()
        return turn

    # --- leases ---------------------------------------------------------------------------------------------

    def _taken(self, lease: Lease, waiting: _Waiting) -> Lease:
        lease.waited_s = time.monotonic() - waiting.started
        if self.plan.takes_leases:
            state = self._here()
            with state.held_lock:
                state.held.add(lease.lease_id)
            self._ensure_keeper(state)
        return lease

    def _drop(self, lease: Lease) -> None:
        if self.plan.takes_leases:
            state = self._here()
            with state.held_lock:
                state.held.discard(lease.lease_id)

    def _ensure_keeper(self, state: _ProcessState) -> None:
        with state.held_lock:
            if state.keeper is None and not self._closed.is_set():
                state.keeper = threading.Thread(
                    target=self._keep, args=(state,), name=f"aiml-leases-{self.conn_id}", daemon=True
                )
                state.keeper.start()

    def _keep(self, state: _ProcessState) -> None:
        """Renew the held leases every third of a lease and retry failed releases; end once nothing has been
        held or pending for a whole lease."""
        period = self.plan.lease_s / 3
        idle_since: float | None = None
        while not self._closed.wait(period) and state is self._state:
            with state.held_lock:
                held, pending = list(state.held), list(state.pending)
                state.pending.clear()
                if not held and not pending:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= self.plan.lease_s:
                        state.keeper = None  # under the lock: a lease taken from now on starts a new keeper
                        return
                    continue
            idle_since = None
            for lease, usd in pending:
                try:
                    self.store.release(self.plan, lease.lease_id, lease.day, usd)
                except Exception:
                    with state.held_lock:
                        state.pending.append((lease, usd))
            self._renew(state, held)
        with state.held_lock:
            state.keeper = None

    def _renew(self, state: _ProcessState, held: list[str]) -> None:
        if not held:
            return
        try:
            still = self.store.renew(self.plan, held)
        except Exception as error:
            _log.warning("Renewing %d leases of %r's limits failed: %s", len(held), self.conn_id, error)
            return
        with state.held_lock:
            wanted = len(state.held.intersection(held))  # some were given back meanwhile
        if still < wanted:
            _log.warning(
                "%d leases of %r's limits had expired before their calls ended",
                wanted - still,
                self.conn_id,
            )


class Slot:
    """One request's admission as a context manager, sync (``with``) or async (``async with``); set ``cost`` to
    what the request cost before the block ends."""

    __slots__ = ("_call_id", "_lease", "_limiter", "_log", "cost")

    def __init__(self, limiter: ConnectionLimiter, call_id: str, log: Any) -> None:
        self._limiter, self._call_id, self._log = limiter, call_id, log
        self._lease: Lease | None = None
        self.cost: float | None = None

    def answered(self, headers: Mapping[str, str]) -> None:
        """The response's headers are in: count the cost they report, even if its body cannot be read."""
        self.cost = billed_usd(headers)

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

    def answered(self, headers: Mapping[str, str]) -> None:
        """Nothing to count: the headers are not read."""

    def __enter__(self) -> NoSlot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> NoSlot:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@dataclass
class _Waiting:
    """One call's wait: how long to sleep after each refusal, the budget error, the one log line."""

    limiter: ConnectionLimiter
    call_id: str
    log: Any
    started: float = field(default_factory=time.monotonic)
    logged: bool = False
    slot_polls: int = 0

    def pause(self, admission: Admission) -> float:
        plan, conn_id = self.limiter.plan, self.limiter.conn_id
        if admission.blocked_by == "budget":
            raise AimlDailyBudgetError(
                f"Connection {conn_id!r} has spent ${admission.spent_usd:.4f} today (UTC), its "
                f"max_usd_per_day is ${plan.max_usd_per_day:g}: call {self.call_id} was not sent. New calls are "
                "refused until 00:00 UTC; raise max_usd_per_day in the connection to go on today."
            )
        if not self.logged and time.monotonic() - self.started >= WAIT_LOGGED_AFTER_S:
            self.logged = True
            what = {
                "slots": f"all {plan.max_concurrency} slots of max_concurrency in use",
                "in_flight": f"the {admission.in_flight} calls in flight may spend the rest of max_usd_per_day",
            }.get(admission.blocked_by or "", f"max_requests_per_minute={_rpm(plan)}")
            self.log.info(
                "Call %s has waited %.0fs for connection %r's limits (%s)",
                self.call_id,
                time.monotonic() - self.started,
                conn_id,
                what,
            )
        if admission.blocked_by in ("slots", "in_flight"):  # freed when calls end: ask soon, then less often
            self.slot_polls += 1
            return min(admission.wait_s * 2 ** min(self.slot_polls - 1, 8), SLOT_POLL_MAX_S)
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


def _after_fork_in_child() -> None:
    """A forked child keeps the limiters (hooks hold them) but none of the parent's locks, leases or threads."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for store in _stores.values():
        store.after_fork()
    for limiter in _limiters.values():
        limiter.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

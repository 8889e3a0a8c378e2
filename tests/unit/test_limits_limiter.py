"""The limiter around the stores: the async path on both stores, cancelled callers, a forked child, a store
that fails or hangs. Each test gives the limiter the store it needs directly."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import Any

import pytest

from airflow_provider_aiml.exceptions import AimlDailyBudgetError, AimlLimitStoreError
from airflow_provider_aiml.hooks.settings import LimitSettings
from airflow_provider_aiml.limits import limiter as limiter_module
from airflow_provider_aiml.limits.limiter import ConnectionLimiter
from airflow_provider_aiml.limits.plan import LimitPlan, utc_day
from airflow_provider_aiml.limits.redis import RedisLimitStore


def limiter(store: Any, conn_id: str = "aiml_test", **limits: Any) -> ConnectionLimiter:
    settings = LimitSettings(**limits)
    return ConnectionLimiter(conn_id, LimitPlan.of(conn_id, settings), store)


class Slow:
    """A store whose admissions and releases take ``seconds`` (to cancel a caller in the middle of one)."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.seconds, self.location = inner, seconds, inner.location

    def admit(self, *args: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.admit(*args)

    def release(self, *args: Any) -> None:
        time.sleep(self.seconds)
        self.inner.release(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_async_callers_share_the_slots_and_the_budget_on_both_stores(store: Any) -> None:
    limits = limiter(store, max_concurrency=2, max_usd_per_day=1.0)
    in_use = peak = 0

    async def call(number: int) -> None:
        nonlocal in_use, peak
        lease = await limits.aacquire(f"call-{number}")
        in_use += 1
        peak = max(peak, in_use)
        await asyncio.sleep(0.02)
        in_use -= 1
        await limits.arelease(lease, 0.125)

    async def spend_the_rest() -> None:
        for n in range(10):  # two more calls spend the dollar
            await call(100 + n)

    async def main() -> None:
        await asyncio.gather(*(call(n) for n in range(6)))
        with pytest.raises(AimlDailyBudgetError):
            await spend_the_rest()

    asyncio.run(main())
    assert peak == 2
    assert limits.spent_today() == pytest.approx(1.0)
    limits.close()


def test_a_caller_cancelled_while_the_store_admits_it_gives_the_lease_back(store: Any) -> None:
    limits = limiter(Slow(store, 0.3), max_concurrency=1)

    async def main() -> None:
        waiting = asyncio.ensure_future(limits.aacquire("cancelled"))
        await asyncio.sleep(0.1)  # the admission is running in its thread
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    time.sleep(0.6)  # the admission ends, is granted, and is given back
    assert store.admit(limits.plan, "next", utc_day()).granted
    limits.close()


def test_a_release_is_not_cut_short_by_a_cancelled_caller(store: Any) -> None:
    limits = limiter(Slow(store, 0.3), max_concurrency=1, max_usd_per_day=5.0)

    async def main() -> None:
        lease = await limits.aacquire("paid")
        releasing = asyncio.ensure_future(limits.arelease(lease, 0.75))
        await asyncio.sleep(0.1)  # the release is running in its thread
        releasing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await releasing

    asyncio.run(main())
    time.sleep(0.6)
    assert store.spent(limits.plan, utc_day()) == pytest.approx(0.75)
    assert store.admit(limits.plan, "next", utc_day()).granted
    limits.close()


def test_a_forked_child_renews_its_own_leases(store: Any) -> None:
    limits = limiter(store, max_concurrency=1, lease_seconds=1.0)
    limits.release(limits.acquire("parent"), None)  # the parent has used the limiter (and its keeper) first
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            lease = limits.acquire("child")
            time.sleep(2.5)  # two and a half leases: only renewals keep the slot
            limits.release(lease, None)
            code = 0
        finally:
            os._exit(code)
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:
            assert store.admit(limits.plan, "parent-2", utc_day()).blocked_by == "slots"
            time.sleep(0.1)
    finally:
        _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    limits.close()


def test_a_release_the_store_refused_is_retried_so_its_cost_is_counted(store: Any) -> None:
    class FailsOnce:
        def __init__(self, inner: Any) -> None:
            self.inner, self.location, self.failed = inner, inner.location, False

        def release(self, *args: Any) -> None:
            if not self.failed:
                self.failed = True
                raise ConnectionError("the store went away")
            self.inner.release(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    limits = limiter(FailsOnce(store), max_usd_per_day=5.0, lease_seconds=1.0)
    limits.release(limits.acquire("paid"), 0.4)  # the store refuses: logged, kept for the keeper
    assert store.spent(limits.plan, utc_day()) == 0
    deadline = time.monotonic() + 3
    while store.spent(limits.plan, utc_day()) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.spent(limits.plan, utc_day()) == pytest.approx(0.4)
    limits.close()


def test_a_redis_that_never_answers_fails_the_call_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does), never answers
    port = silent.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_SILENT", f'{{"conn_type": "redis", "host": "127.0.0.1", "port": {port}, "password": "p"}}'
    )
    monkeypatch.setattr("airflow_provider_aiml.limits.redis.SOCKET_TIMEOUT_S", 0.5)
    limits = limiter(RedisLimitStore("redis_silent"), max_concurrency=2)
    started = time.monotonic()
    try:
        with pytest.raises(AimlLimitStoreError, match="could not be checked in Redis connection 'redis_silent'"):
            limits.acquire("hung")
    finally:
        silent.close()
        limits.close()
    assert time.monotonic() - started < 10


def test_closing_a_limiter_stops_its_keeper() -> None:
    class Memory:
        location = "memory"

        def admit(self, *args: Any) -> Any:
            from airflow_provider_aiml.limits.plan import GRANTED

            return GRANTED

        def release(self, *args: Any) -> None: ...

        def renew(self, plan: Any, ids: Any) -> int:
            return len(ids)

    limits = limiter(Memory(), "aiml_keeper", max_concurrency=3, lease_seconds=1.0)
    limits.acquire("held")
    assert any(t.name == "aiml-leases-aiml_keeper" for t in threading.enumerate())
    limits.close()
    deadline = time.monotonic() + 3
    while any(t.name == "aiml-leases-aiml_keeper" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "aiml-leases-aiml_keeper" for t in threading.enumerate())
    assert limiter_module.STORE_THREADS >= 1

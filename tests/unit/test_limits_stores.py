"""The two stores of the connection-wide limits, held to the same behaviour: the local SQLite file and a real
Redis server the tests start. Single operations first, then many processes sharing one store."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.hooks.settings import LimitSettings
from airflow_provider_aiml.limits.local import LocalLimitStore
from airflow_provider_aiml.limits.plan import LimitPlan, burst_of

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-12-07"
WORKER_TIMEOUT_S = 60


@pytest.fixture
def store_spec(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The same store, as the worker processes open it."""
    if store_kind == "local":
        return {"kind": "local", "path": str(tmp_path / "shared.sqlite")}
    server = request.getfixturevalue("redis_server")
    server.client().flushall()
    return {"kind": "redis", "port": server.port, "password": server.password}


def plan(**limits: Any) -> LimitPlan:
    return LimitPlan.of("aiml_test", LimitSettings(**limits))


# --- one operation at a time ----------------------------------------------------------------------------------


def test_the_daily_budget_refuses_once_spent_and_a_new_day_starts_afresh(store: Any) -> None:
    budget = plan(max_usd_per_day=1.0)
    assert store.admit(budget, "a", DAY).granted
    store.release(budget, "a", DAY, 0.6)
    assert store.spent(budget, DAY) == pytest.approx(0.6)
    assert store.admit(budget, "b", DAY).granted  # 0.6 < 1.0: calls in flight may still pass the budget
    store.release(budget, "b", DAY, 0.5)
    refused = store.admit(budget, "c", DAY)
    assert not refused.granted
    assert refused.blocked_by == "budget"
    assert refused.spent_usd == pytest.approx(1.1)
    assert store.admit(budget, "d", "2026-12-08").granted
    assert store.spent(budget, "2026-12-08") == 0


def test_connections_do_not_share_their_state(store: Any) -> None:
    one = LimitPlan.of("one", LimitSettings(max_concurrency=1, max_usd_per_day=1.0))
    other = LimitPlan.of("other", LimitSettings(max_concurrency=1, max_usd_per_day=1.0))
    assert store.admit(one, "a", DAY).granted
    store.release(one, "x", DAY, 5.0)
    assert not store.admit(one, "b", DAY).granted
    assert store.admit(other, "c", DAY).granted


def test_slots_are_taken_and_given_back(store: Any) -> None:
    slots = plan(max_concurrency=2)
    assert store.admit(slots, "a", DAY).granted
    assert store.admit(slots, "b", DAY).granted
    full = store.admit(slots, "c", DAY)
    assert (full.granted, full.blocked_by, full.in_use) == (False, "slots", 2)
    assert 0 < full.wait_s < 0.1
    store.release(slots, "a", DAY, 0.0)
    assert store.admit(slots, "c", DAY).granted


def test_a_slot_not_renewed_expires_and_a_renewed_one_stays(store: Any) -> None:
    slots = plan(max_concurrency=2, lease_seconds=2.0)
    assert store.admit(slots, "kept", DAY).granted
    assert store.admit(slots, "lost", DAY).granted
    time.sleep(1.2)
    assert store.renew(slots, ["kept"]) == 1
    time.sleep(1.2)  # "lost" is past its lease, "kept" was pushed back
    assert store.admit(slots, "new", DAY).granted
    assert not store.admit(slots, "one more", DAY).granted
    assert store.renew(slots, ["lost", "kept"]) == 1  # an expired slot is not taken back by a renewal


def test_the_rate_lets_one_seconds_burst_through_then_spaces_requests(store: Any) -> None:
    rate = plan(max_requests_per_minute=120)  # a burst of 2, then one every 60/119 s
    assert store.admit(rate, "a", DAY).granted
    assert store.admit(rate, "b", DAY).granted
    third = store.admit(rate, "c", DAY)
    assert (third.granted, third.blocked_by) == (False, "rate")
    assert 0.3 < third.wait_s <= 60 / 119 + 0.01
    time.sleep(third.wait_s)
    assert store.admit(rate, "c", DAY).granted


def test_the_schedule_advances_by_the_exact_interval_at_a_high_rate(store: Any, store_kind: str) -> None:
    """Each admitted request moves the stored time of the next turn on by the interval to the microsecond (the
    Redis script once wrote it with Lua's 14 digits, 0.1 ms for a Unix time, which ran a high rate 2% fast)."""
    rate = plan(max_requests_per_minute=100_000)
    assert rate.interval_s is not None

    def next_turn() -> float:
        if store_kind == "redis":
            return float(store._redis().get(f"{rate.namespace}:rate"))
        with store._transaction() as db:
            return float(db.execute("SELECT tat FROM rate WHERE namespace = ?", (rate.namespace,)).fetchone()[0])

    turns = []
    for number in range(50):  # well within the burst of 1,666: all granted, each one interval on
        assert store.admit(rate, f"r{number}", DAY).granted
        turns.append(next_turn())
    steps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    late = [step for step in steps if abs(step - rate.interval_s) > 2e-6]
    assert len(late) <= 2, (rate.interval_s, steps)  # a step can be longer only when the clock passed the turn


def test_a_request_held_back_by_the_rate_takes_no_slot(store: Any) -> None:
    both = plan(max_requests_per_minute=1, max_concurrency=1)
    assert store.admit(both, "a", DAY).granted
    store.release(both, "a", DAY, 0.0)
    assert store.admit(both, "b", DAY).blocked_by == "rate"
    assert store.admit(both, "c", DAY).blocked_by == "rate"  # not "slots": the refused request took none


def test_the_burst_and_interval_keep_every_minute_within_the_limit() -> None:
    for rpm in (1, 2, 59, 60, 61, 120, 1000, 6000, 100_000):
        limits = plan(max_requests_per_minute=rpm)
        assert limits.interval_s is not None
        burst = burst_of(rpm)
        # a half-open window of 60 s holds fewer than 60 / T + burst requests
        assert 60 / limits.interval_s + burst < rpm + 1 + 1e-9, rpm
        assert limits.tolerance_s == pytest.approx((burst - 1) * limits.interval_s)
        assert 60 / limits.interval_s >= 0.98 * rpm - 1  # the sustained rate stays close to the limit


# --- many processes -------------------------------------------------------------------------------------------


def run_workers(store_spec: dict[str, Any], limits: dict[str, Any], processes: int, **job: Any) -> list[list[float]]:
    spec = {"store": store_spec, "limits": limits, "conn_id": "aiml_shared", **job}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.limits_worker", json.dumps(spec)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for _ in range(processes)
    ]
    grants: list[list[float]] = []
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=WORKER_TIMEOUT_S)
            assert worker.returncode == 0, out
            grants += _report(out.splitlines())["grants"]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    return grants


def test_many_processes_never_hold_more_slots_than_max_concurrency(store_spec: dict[str, Any]) -> None:
    grants = run_workers(store_spec, {"max_concurrency": 3}, processes=4, count=6, hold_s=0.1)
    assert len(grants) == 24
    events = sorted([(start, 1) for start, _ in grants] + [(end, -1) for _, end in grants], key=lambda e: (e[0], e[1]))
    in_use = peak = 0
    for _, change in events:
        in_use += change
        peak = max(peak, in_use)
    assert peak <= 3  # never passed
    assert peak >= 2  # and the slots are shared, not taken one at a time
    # 24 holds of 100 ms, 3 at a time, take at least 8 rounds
    assert max(end for _, end in grants) - min(start for start, _ in grants) >= 8 * 0.1


def test_many_processes_share_one_rate(store_spec: dict[str, Any]) -> None:
    rpm = 6000  # a burst of 100, then one request every 60/5901 s
    grants = run_workers(store_spec, {"max_requests_per_minute": rpm}, processes=4, count=75)
    starts = sorted(start for start, _ in grants)
    assert len(starts) == 300
    limits = plan(max_requests_per_minute=rpm)
    assert limits.interval_s is not None
    burst = burst_of(rpm)
    # the 200 requests after the burst cannot go faster than the interval allows
    assert starts[-1] - starts[0] >= 0.95 * (len(starts) - burst) * limits.interval_s
    slack = 0.1  # the grant is timed just after the store's answer
    for window in (0.5, 1.0):
        allowed = window / limits.interval_s + burst
        for i, start in enumerate(starts):
            inside = sum(1 for other in starts[i:] if other < start + window - slack)
            assert inside < allowed + 1, (window, inside, allowed)


def test_the_slots_of_a_killed_process_come_back_after_their_lease(store_spec: dict[str, Any], store: Any) -> None:
    limits = {"max_concurrency": 2, "lease_seconds": 1.0}
    spec = {"store": store_spec, "limits": limits, "conn_id": "aiml_shared", "count": 2, "hold_forever": True}
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.limits_worker", json.dumps(spec)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None
        assert _report(iter(holder.stdout.readline, "")) == {"held": 2}
        shared_store = _same_store(store_spec, store)
        slots = LimitPlan.of("aiml_shared", LimitSettings(**limits))
        time.sleep(1.2)  # the holder's keeper renews its leases while it lives
        assert shared_store.admit(slots, "mine", DAY).blocked_by == "slots"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        while not shared_store.admit(slots, "mine", DAY).granted:
            assert time.monotonic() - killed < 3, "the killed process's slots never came back"
            time.sleep(0.05)
        assert time.monotonic() - killed < 1.5  # within a lease of the last renewal
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def _report(lines: Any) -> dict[str, Any]:
    """The worker's JSON line (Airflow may log a line or two to stdout before it)."""
    for line in lines:
        if line.startswith("{"):
            return dict(json.loads(line))
    raise AssertionError("the worker printed no report")


def _same_store(store_spec: dict[str, Any], store: Any) -> Any:
    """A store object of this process on the workers' store."""
    if store_spec["kind"] == "local":
        return LocalLimitStore(store_spec["path"])
    return store  # the fixture's store talks to the same Redis server


# --- the budget counts what is in flight ------------------------------------------------------------------------


def test_calls_in_flight_that_may_spend_the_rest_make_the_next_wait_and_only_a_spent_budget_refuses(
    store: Any,
) -> None:
    budget = plan(max_usd_per_day=1.0)
    for lease in ("a", "b"):
        assert store.admit(budget, lease, DAY).granted
        store.release(budget, lease, DAY, 0.25)  # spent 0.5 in 2 calls: 0.25 a call
    assert store.admit(budget, "c", DAY).granted  # 0.5 + 0 in flight
    assert store.admit(budget, "d", DAY).granted  # 0.5 + 1 x 0.25
    waits = store.admit(budget, "e", DAY)  # 0.5 + 2 x 0.25 reaches 1.0: wait for them
    assert (waits.granted, waits.blocked_by, waits.in_flight) == (False, "in_flight", 2)
    store.release(budget, "c", DAY, 0.125)  # 0.625 in 3 calls, 1 in flight
    assert store.admit(budget, "e", DAY).granted
    store.release(budget, "d", DAY, 0.25)
    store.release(budget, "e", DAY, 0.25)  # 1.125: spent
    refused = store.admit(budget, "f", DAY)
    assert (refused.blocked_by, refused.spent_usd, refused.in_flight) == ("budget", 1.125, 0)


def test_a_release_sent_twice_counts_its_cost_once(store: Any) -> None:
    budget = plan(max_usd_per_day=10.0)
    assert store.admit(budget, "a", DAY).granted
    store.release(budget, "a", DAY, 0.5)
    store.release(budget, "a", DAY, 0.5)  # a client's retry after a lost reply
    assert store.spent(budget, DAY) == pytest.approx(0.5)

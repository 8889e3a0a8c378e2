"""The batch's building blocks: adaptive concurrency, rate windows, the checkpoint, and the runner's pacing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_aiml.batch.checkpoint import Checkpoint
from airflow_provider_aiml.batch.limits import AdaptiveConcurrency, RateLimits, RateWindow
from airflow_provider_aiml.batch.runner import BatchItem, BatchLimits, BatchRunner
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.retry import RetryPolicy
from airflow_provider_aiml.testing import AimlApiEmulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- rate windows -------------------------------------------------------------------------------------------


def test_rate_window_admits_up_to_its_size_then_waits_for_the_oldest_to_expire():
    clock = FakeClock()
    window = RateWindow(3, window=60, clock=clock)
    for _ in range(3):
        assert window.delay_for(1) == 0
        window.add(1)
        clock.now += 1
    assert window.delay_for(1) == pytest.approx(57)  # the first one (at 100) leaves the window at 160
    clock.now = 160.0
    assert window.delay_for(1) == 0


def test_token_window_waits_until_enough_tokens_expired():
    clock = FakeClock()
    window = RateWindow(1000, window=60, clock=clock)
    window.add(600)
    clock.now += 10
    window.add(300)
    assert window.delay_for(200) == pytest.approx(50)  # 600 must expire first: at 160, now 110
    assert window.delay_for(100) == 0


def test_an_item_larger_than_the_window_still_runs_alone():
    window = RateWindow(100, window=60, clock=FakeClock())
    assert window.delay_for(5000) == 0


def test_token_estimates_are_corrected_by_the_reported_usage():
    clock = FakeClock()
    limits = RateLimits(None, 1000, window=60, clock=clock)
    entry = asyncio.run(limits.admit(900))
    limits.correct_tokens(entry, 100)
    assert limits.tokens is not None
    assert limits.tokens.delay_for(800) == 0
    clock.now += 60  # the corrected entry leaves the window with its real size, not the estimate
    assert limits.tokens.delay_for(1000) == 0
    limits.tokens.add(1000)
    assert limits.tokens.delay_for(1) > 0


# --- adaptive concurrency -----------------------------------------------------------------------------------


def test_a_rate_limit_halves_concurrency_and_successes_grow_it_back():
    async def scenario() -> list[float]:
        gate = AdaptiveConcurrency(8)
        seen = []
        await gate.acquire()
        await gate.release(rate_limited_for=0.0)
        seen.append(gate.limit)
        await gate.acquire()
        await gate.release(rate_limited_for=0.0)
        seen.append(gate.limit)
        for _ in range(20):
            await gate.acquire()
            await gate.release()
        seen.append(gate.limit)
        return seen

    halved_once, halved_twice, recovered = asyncio.run(scenario())
    assert (halved_once, halved_twice) == (4.0, 2.0)
    assert 6 <= recovered <= 8


def test_in_flight_never_exceeds_the_limit():
    async def scenario() -> int:
        gate = AdaptiveConcurrency(3)
        peak = 0

        async def worker() -> None:
            nonlocal peak
            for _ in range(5):
                await gate.acquire()
                peak = max(peak, gate.in_flight)
                await asyncio.sleep(0.001)
                await gate.release()

        await asyncio.gather(*(worker() for _ in range(10)))
        return peak

    assert asyncio.run(scenario()) == 3


def test_a_rate_limit_pauses_every_waiting_worker():
    async def scenario() -> float:
        gate = AdaptiveConcurrency(4)
        await gate.acquire()
        await gate.release(rate_limited_for=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await gate.acquire()
        return loop.time() - started

    assert asyncio.run(scenario()) >= 0.18


# --- checkpoint ---------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_a_torn_last_line(tmp_path):
    path = tmp_path / "sub" / "ck.jsonl"
    checkpoint = Checkpoint(path)
    assert checkpoint.load() == {}
    checkpoint.append({"index": 0, "fingerprint": "a", "content": "zero"})
    checkpoint.append({"index": 2, "fingerprint": "c", "content": "two"})
    checkpoint.close()
    with path.open("a") as handle:
        handle.write('{"index": 3, "finger')  # the worker died mid-write
    again = Checkpoint(path)
    assert sorted(again.load()) == [0, 2]
    again.append({"index": 3, "fingerprint": "d", "content": "three"})
    again.close()
    assert sorted(Checkpoint(path).load()) == [0, 2, 3]


def test_checkpoint_on_object_storage_is_rewritten_whole(tmp_path):
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    attach(protocol="memory", fs=fsspec.filesystem("memory"))
    url = "memory://bucket/runs/ck.jsonl"
    first = Checkpoint(url, flush_interval=0)
    first.load()
    first.append({"index": 1, "fingerprint": "x"})
    first.close()
    second = Checkpoint(url, flush_interval=3600)
    assert list(second.load()) == [1]
    second.append({"index": 4, "fingerprint": "y"})
    assert len(ObjectStoragePath(url).read_text().splitlines()) == 1  # not flushed yet
    second.close()
    lines = ObjectStoragePath(url).read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [1, 4]


# --- the runner against the emulator ------------------------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    warning = info


def _runner(
    emulator: AimlApiEmulator, monkeypatch, count: int, resumed: dict | None = None, **limits: Any
) -> BatchRunner:
    conn = {"conn_type": "aimlapi", "password": "sk-runner", "host": emulator.base_url}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_RUNNER", json.dumps(conn))
    concurrency = limits.pop("concurrency", 8)
    hook = AimlApiHook(aiml_conn_id="aiml_runner", retry_policy=RetryPolicy(max_retries=0), log_calls=False)
    items = [
        BatchItem(i, [{"role": "user", "content": f"record {i}"}], f"fp{i}", estimated_tokens=100) for i in range(count)
    ]
    return BatchRunner(
        hook,
        items,
        total=count,
        call_kwargs={},
        request_id_prefix="test",
        limits=BatchLimits(concurrency=concurrency, **limits),
        retry_policy=RetryPolicy(max_retries=2, base_delay=0.01),
        parse=lambda content: None,
        resumed=resumed,
        log=_Log(),
    )


def test_requests_per_window_are_honoured(aiml_emulator, monkeypatch):
    runner = _runner(aiml_emulator, monkeypatch, 9, requests_per_minute=3, rate_window_s=0.3)
    report = asyncio.run(runner.run())
    starts = sorted(r.received_at for r in aiml_emulator.chat_requests)
    assert len(report.failed) == 0
    # Never more than 3 in any 0.3 s. The first three may arrive late (the first calls open connections and
    # load httpx's async backend), which only shortens the first gap, so the check starts at the second window.
    for i in range(6, len(starts)):
        assert starts[i] - starts[i - 3] >= 0.29
    assert report.elapsed_s >= 0.6


def test_tokens_per_window_are_honoured(aiml_emulator, monkeypatch):
    runner = _runner(aiml_emulator, monkeypatch, 6, tokens_per_minute=250, rate_window_s=0.3)
    report = asyncio.run(runner.run())
    starts = sorted(r.received_at for r in aiml_emulator.chat_requests)
    assert len(report.failed) == 0
    assert starts[-1] - starts[0] >= 0.5  # about 100 tokens each: two per window


def test_concurrency_is_never_exceeded(aiml_emulator, monkeypatch):
    aiml_emulator.settings.latency = 0.05
    report = asyncio.run(_runner(aiml_emulator, monkeypatch, 30, concurrency=5).run())
    assert len(report.outcomes) == 30
    assert aiml_emulator.max_in_flight == 5


def test_budgets_count_what_earlier_tries_spent_on_resumed_records(aiml_emulator, monkeypatch):
    from airflow_provider_aiml.batch.runner import RecordOutcome
    from airflow_provider_aiml.models import Usage

    resumed = {9: RecordOutcome(index=9, content="old", usage=Usage(total_tokens=990), resumed=True)}
    runner = _runner(aiml_emulator, monkeypatch, 5, resumed=resumed, max_total_tokens=1000)
    report = asyncio.run(runner.run())
    assert aiml_emulator.chat_requests == []  # 990 of 1000 already spent: no record fits
    assert report.stop_reason is not None
    assert report.stop_reason.startswith("the token budget of 1,000 would be passed (990 spent)")
    assert report.usage.total_tokens == 990


def test_the_final_line_tells_this_try_from_the_whole_batch(aiml_emulator, monkeypatch):
    from airflow_provider_aiml.batch.runner import RecordOutcome
    from airflow_provider_aiml.models import Usage

    earlier = Usage(total_tokens=900, reasoning_tokens=600, cached_tokens=64, credits_used=1800, usd_spent=0.0009)
    resumed = {9: RecordOutcome(index=9, content="old", usage=earlier, resumed=True)}
    runner = _runner(aiml_emulator, monkeypatch, 3, resumed=resumed)
    report = asyncio.run(runner.run())

    this_try = sum((o.usage for o in report.outcomes if not o.resumed), Usage())
    assert this_try.total_tokens > 0
    assert this_try.usd_spent is not None
    assert report.usage == this_try + earlier  # XCom usage: the whole batch
    [final] = [line for line in runner.log.lines if line.startswith("Batch finished:")]
    assert (
        f"this try: 3 calls, tokens {this_try.total_tokens} (reasoning {this_try.reasoning_tokens}), "
        f"cost ${this_try.usd_spent:.6f}; "
    ) in final
    whole = report.usage
    assert (
        f"; in all, with 1 record resumed from the checkpoint: tokens {whole.total_tokens} "
        f"(reasoning {whole.reasoning_tokens}, cached 64), cost ${whole.usd_spent:.6f}; 3 requests,"
    ) in final


def test_without_resumed_records_the_final_line_has_this_try_only(aiml_emulator, monkeypatch):
    runner = _runner(aiml_emulator, monkeypatch, 2)
    report = asyncio.run(runner.run())
    [final] = [line for line in runner.log.lines if line.startswith("Batch finished:")]
    assert f"this try: 2 calls, tokens {report.usage.total_tokens} (" in final
    assert "in all" not in final
    assert ("cached" in final) == (report.usage.cached_tokens > 0)


class _SlowRead:
    """A file record whose read takes ``read_s``; notes which thread rendered it."""

    def __init__(self, index: int, read_s: float, built: list[int]) -> None:
        self.index, self.read_s, self.built = index, read_s, built

    def fetch(self) -> bytes:
        import time

        time.sleep(self.read_s)
        return f"record {self.index}".encode()

    def build(self, fetched: bytes) -> tuple[list[dict[str, Any]], None]:
        import threading

        assert threading.current_thread().name.startswith("aiml-prepare")
        self.built.append(self.index)
        return [{"role": "user", "content": fetched.decode()}], None


def test_slow_reads_do_not_hold_up_the_records_already_read(aiml_emulator, monkeypatch):
    runner = _runner(aiml_emulator, monkeypatch, 0, concurrency=4)
    built: list[int] = []
    runner._queue.extend(
        BatchItem(i, [], f"fp{i}", 100, None, _SlowRead(i, 1.0 if i < 2 else 0.0, built)) for i in range(8)
    )
    runner.total = 8

    report = asyncio.run(runner.run())

    assert len(report.outcomes) == 8
    assert not report.failed
    # Records 0 and 1 wait a second on storage; meanwhile the six others are read, rendered and answered
    # (rendering waiting behind reads would put 0 and 1 among the first built).
    assert sorted(built[:6]) == [2, 3, 4, 5, 6, 7]
    assert [r.json["messages"][0]["content"] for r in aiml_emulator.chat_requests][-2:] in (
        ["record 0", "record 1"],
        ["record 1", "record 0"],
    )

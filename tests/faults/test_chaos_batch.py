"""Chaos run: 2,000 records through the batch operator in ``dag.test()`` while the emulator injects random faults.

Every record must end with its own answer or, only once its retries are exhausted, an error; nothing lost,
nothing asked twice after it succeeded, results aligned with the inputs. The figures go to
build/faults/chaos-summary.json, from which tests/faults/write_reliability.py writes docs/reliability.md.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from typing import Any

import httpx

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.dags.aiml_fault_dags import CHAOS_CONCURRENCY, CHAOS_RECORDS, record_text
from tests.e2e.test_operator_dags import xcom
from tests.faults.harness import (
    CHAOS_SEED,
    CHAOS_SUMMARY,
    FAULTS_TIMEOUT_S,
    MAX_RETRIES,
    REPO,
    SLOW_REPLY_S,
    WAIT_SCALE,
    AttemptSpy,
    ChaosFault,
    CompressedRetryPolicy,
    FaultLedger,
    chaos_mix,
    expected_answer,
    fault_rates,
    install_compressed_waits,
    record_index,
    write_summary,
)

FINISHED_LINE = re.compile(
    r"Batch finished: (?P<done>\d+)/(?P<asked>\d+) done \((?P<failed>\d+) failed\).*?"
    r"(?P<requests>\d+) requests, (?P<retries>\d+) retries \((?P<rate_limited>\d+) rate-limited\)"
)
TIME_LIMIT_S = 240
ERROR_TEXT = {
    "AimlRateLimitError": "AI/ML API error 429",
    "AimlServerError": "AI/ML API error 50",
    "AimlTransportError": "Connection to the AI/ML API failed",
    "AimlTimeoutError": f"No answer from the AI/ML API within {FAULTS_TIMEOUT_S:g}s",
}


def test_chaos_batch_every_record_answered_or_exhausted(
    dagbag, faults_emulator: AimlApiEmulator, ledger: FaultLedger, monkeypatch, capsys
):
    mix = chaos_mix()
    by_fault = {item.fault: item for item in mix}
    install_compressed_waits(monkeypatch.setattr)
    spy = AttemptSpy()
    spy.install(monkeypatch.setattr)
    faults_emulator.set_fault_rates(fault_rates(mix), seed=CHAOS_SEED)

    started = time.monotonic()
    dag_run = dagbag.dags["aiml_faults_chaos"].test()
    elapsed = time.monotonic() - started
    log = capsys.readouterr().out

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "batch")
    batch = xcom(dag_run, "batch", "batch")
    usage = xcom(dag_run, "usage", "batch")
    requests = faults_emulator.chat_requests

    # Aligned with the inputs, each answer traceable to its own record, none lost or duplicated.
    assert len(results) == CHAOS_RECORDS
    assert [item["index"] for item in results] == list(range(CHAOS_RECORDS))
    answered = [item for item in results if item["error"] is None]
    for item in answered:
        assert item["content"] == expected_answer(record_text(item["index"]))
    assert len({item["content"] for item in answered}) == len(answered)

    by_record: dict[int, list[Any]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.received_at):
        by_record[record_index(request.client_request_id)].append(request)
    assert sorted(by_record) == list(range(CHAOS_RECORDS))
    assert len(requests) <= CHAOS_RECORDS * (1 + MAX_RETRIES)

    injected: Counter[str] = Counter()
    recovered_after: Counter[str] = Counter()
    exhausted_by: Counter[str] = Counter()
    tries_per_record: Counter[int] = Counter()
    for index, item in enumerate(results):
        calls = by_record[index]
        cid = calls[0].client_request_id
        faults: list[ChaosFault | None] = [
            None if (fault := ledger.fault_of(call)) is None else by_fault[fault] for call in calls
        ]
        outcomes = spy.outcomes[cid]
        tries_per_record[len(calls)] += 1
        assert all(call.client_request_id == cid for call in calls)
        # What the provider made of each try is exactly what was injected into it.
        assert outcomes == ["ok" if f is None else f.error.__name__ for f in faults], (index, faults, outcomes)
        for fault in faults:
            if fault is not None:
                injected[fault.key] += 1
        if item["error"] is None:
            assert faults[-1] is None, (index, faults)
            assert None not in faults[:-1], (index, faults)
            assert len(calls) <= 1 + MAX_RETRIES
            for fault in {f.key for f in faults if f is not None}:
                recovered_after[fault] += 1
        else:
            last = faults[-1]
            assert len(calls) == 1 + MAX_RETRIES, (index, item["error"], faults)
            assert None not in faults, (index, faults)
            assert last is not None
            assert item["content"] is None
            assert ERROR_TEXT[last.error.__name__] in item["error"], (last, item["error"])
            exhausted_by[last.key] += 1

    failed = CHAOS_RECORDS - len(answered)
    retries = len(requests) - CHAOS_RECORDS
    rate_limited = sum(n for key, n in injected.items() if key.startswith("429"))
    assert batch == {
        "total": CHAOS_RECORDS,
        "succeeded": len(answered),
        "failed": failed,
        "not_run": 0,
        "resumed": 0,
        "requests": len(requests),
        "elapsed_s": batch["elapsed_s"],
        "stop_reason": None,
    }
    assert usage["total_tokens"] == sum(item["usage"]["total_tokens"] for item in results)
    assert all(item["usage"]["total_tokens"] == 0 for item in results if item["error"])

    finished = FINISHED_LINE.search(log)
    assert finished, "no 'Batch finished' line in the task log"
    assert int(finished["requests"]) == len(requests)
    assert int(finished["retries"]) == retries
    assert int(finished["rate_limited"]) == rate_limited
    assert int(finished["failed"]) == failed

    # The policy's waits: Retry-After followed to the second, one record wait per retry, one pause per 429 retried.
    waits = CompressedRetryPolicy.waits
    record_waits = [w for w in waits if w.caller == "_process"]
    pauses = [w for w in waits if w.caller == "_call"]
    assert len(record_waits) == retries
    for wait in waits:
        if wait.retry_after is not None:
            assert wait.seconds == float(wait.retry_after)
    assert len(pauses) == sum(1 for w in record_waits if w.status == 429)

    # The slow replies are still being written after the client gave up on them: let them finish, then count.
    deadline = time.monotonic() + SLOW_REPLY_S + 2
    while faults_emulator.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = httpx.get(f"{faults_emulator.url}/_emulator/stats", timeout=5).json()
    # Every answer was billed once, plus every slow answer nobody read any more (a timeout can cost money).
    assert stats["billed_requests"] == len(answered) + injected["timeout"]
    summary = {
        "records": CHAOS_RECORDS,
        "concurrency": CHAOS_CONCURRENCY,
        "max_retries": MAX_RETRIES,
        "timeout_s": FAULTS_TIMEOUT_S,
        "slow_reply_s": SLOW_REPLY_S,
        "seed": CHAOS_SEED,
        "wait_scale": WAIT_SCALE,
        "faults": [
            {
                "key": item.key,
                "label": item.label,
                "rate": item.rate,
                "error": item.error.__name__,
                "injected": injected[item.key],
                "records_recovered": recovered_after[item.key],
                "records_exhausted": exhausted_by[item.key],
            }
            for item in mix
        ],
        "requests": len(requests),
        "clean_requests": len(requests) - sum(injected.values()),
        "faulted_requests": sum(injected.values()),
        "retries": retries,
        "rate_limited": rate_limited,
        "records_by_tries": {str(k): tries_per_record[k] for k in sorted(tries_per_record)},
        "succeeded": len(answered),
        "recovered": sum(
            1 for index in range(CHAOS_RECORDS) if len(by_record[index]) > 1 and results[index]["error"] is None
        ),
        "exhausted": failed,
        "billed_requests": stats["billed_requests"],
        "billed_not_read": stats["billed_requests"] - len(answered),
        "retry_wait_chosen_s": round(sum(w.seconds for w in record_waits), 3),
        "rate_limit_pause_chosen_s": round(sum(w.seconds for w in pauses), 3),
        "retry_after_followed": sum(1 for w in record_waits if w.retry_after is not None),
        "max_in_flight": faults_emulator.max_in_flight,
        "batch_elapsed_s": batch["elapsed_s"],
        "dag_run_elapsed_s": round(elapsed, 3),
    }
    write_summary(CHAOS_SUMMARY, summary)
    with capsys.disabled():
        print(f"\nchaos summary ({CHAOS_SUMMARY.relative_to(REPO)}):")  # noqa: T201
        for key, value in summary.items():
            print(f"  {key}: {value}")  # noqa: T201

"""The streamed chaos variant: the batch operator never streams (it builds its bodies with ``stream=False`` and
``extra_body`` may not set ``stream``), so streamed calls go through the hook's async streaming path, with the same
fault mix and streams cut in the middle of the answer's content.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict

import httpx

from airflow_provider_aiml.exceptions import AimlApiError
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import ChatCompletionResult, StreamDelta
from airflow_provider_aiml.testing import AimlApiEmulator
from tests.dags.aiml_fault_dags import record_text
from tests.faults.harness import (
    CHAOS_SEED,
    FAULTS_API_KEY,
    FAULTS_CONN_ID,
    FAULTS_TIMEOUT_S,
    MAX_RETRIES,
    REPO,
    STREAM_SUMMARY,
    FaultLedger,
    chaos_mix,
    expected_answer,
    fault_rates,
    record_index,
    write_summary,
)

TIME_LIMIT_S = 120
STREAM_RECORDS = 1000
STREAM_CONCURRENCY = 8
MODEL = "alibaba/qwen3-vl-32b-thinking"


def messages(index: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": record_text(index)}]


def content_cut_point(emulator: AimlApiEmulator) -> int:
    """How many SSE events to let through so that the cut falls after the answer's first content piece."""
    body = {"model": MODEL, "messages": messages(0), "stream": True}
    with httpx.Client(timeout=5, trust_env=False) as client:
        response = client.post(
            f"{emulator.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {FAULTS_API_KEY}"}
        )
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    first_content = next(i for i, e in enumerate(events) if e["choices"] and e["choices"][0]["delta"].get("content"))
    content_events = sum(1 for e in events if e["choices"] and e["choices"][0]["delta"].get("content"))
    assert content_events >= 3, "the answer is too short to be cut in its middle"
    return first_content + 2  # two content pieces arrive, the rest of the answer does not


async def stream_all(hook: AimlApiHook) -> dict[int, tuple[list[StreamDelta], ChatCompletionResult | AimlApiError]]:
    gate = asyncio.Semaphore(STREAM_CONCURRENCY)
    outcomes: dict[int, tuple[list[StreamDelta], ChatCompletionResult | AimlApiError]] = {}

    async def one(index: int) -> None:
        deltas: list[StreamDelta] = []
        async with gate:
            try:
                async for item in hook.astream_chat_completion(messages(index), client_request_id=f"stream:r{index}"):
                    if isinstance(item, StreamDelta):
                        deltas.append(item)
                    else:
                        outcomes[index] = (deltas, item)
            except AimlApiError as error:
                outcomes[index] = (deltas, error)

    try:
        await asyncio.gather(*(one(index) for index in range(STREAM_RECORDS)))
    finally:
        await hook.aclose()
    return outcomes


def test_streamed_chaos_every_record_answered_or_exhausted(faults_emulator, ledger: FaultLedger, retry_waits, capsys):
    cut_after = content_cut_point(faults_emulator)
    faults_emulator.reset()
    mix = chaos_mix(cut_after_chunks=cut_after)
    by_fault = {item.fault: item for item in mix}
    faults_emulator.set_fault_rates(fault_rates(mix), seed=CHAOS_SEED + 1)
    hook = AimlApiHook(aiml_conn_id=FAULTS_CONN_ID, log_calls=False)

    started = time.monotonic()
    outcomes = asyncio.run(stream_all(hook))
    elapsed = time.monotonic() - started

    by_record = defaultdict(list)
    for request in sorted(faults_emulator.chat_requests, key=lambda r: r.received_at):
        assert request.json["stream"] is True
        by_record[record_index(request.client_request_id)].append(request)
    assert sorted(outcomes) == sorted(by_record) == list(range(STREAM_RECORDS))

    injected: Counter[str] = Counter()
    cut_mid_answer = 0
    for index in range(STREAM_RECORDS):
        deltas, outcome = outcomes[index]
        faults = [None if (f := ledger.fault_of(r)) is None else by_fault[f] for r in by_record[index]]
        injected.update(f.key for f in faults if f is not None)
        assert None not in faults[:-1], (index, faults)
        attempts = len(faults)
        if isinstance(outcome, ChatCompletionResult):
            assert faults[-1] is None
            assert attempts <= 1 + MAX_RETRIES
            assert outcome.content == expected_answer(record_text(index))
            # The pieces of the last try add up to the answer; pieces of a broken try are marked as such.
            assert "".join(d.content for d in deltas if d.attempt == attempts) == outcome.content
            assert {d.attempt for d in deltas} <= set(range(1, attempts + 1))
        else:
            assert attempts == 1 + MAX_RETRIES, (index, faults, outcome)
            assert faults[-1] is not None
            assert isinstance(outcome, faults[-1].error), (faults[-1], outcome)
        for attempt, fault in enumerate(faults, start=1):
            if fault is not None and fault.key == "cut":
                partial = "".join(d.content for d in deltas if d.attempt == attempt)
                assert partial
                assert expected_answer(record_text(index)).startswith(partial)
                cut_mid_answer += 1

    requests = sum(len(calls) for calls in by_record.values())
    exhausted = sum(1 for _, outcome in outcomes.values() if isinstance(outcome, AimlApiError))
    assert requests <= STREAM_RECORDS * (1 + MAX_RETRIES)
    assert len(retry_waits) == requests - STREAM_RECORDS  # one backoff decision per retry
    assert cut_mid_answer == injected["cut"] > 0
    summary = {
        "records": STREAM_RECORDS,
        "concurrency": STREAM_CONCURRENCY,
        "max_retries": MAX_RETRIES,
        "timeout_s": FAULTS_TIMEOUT_S,
        "seed": CHAOS_SEED + 1,
        "cut_after_events": cut_after,
        "injected": {item.key: injected[item.key] for item in mix},
        "requests": requests,
        "retries": requests - STREAM_RECORDS,
        "succeeded": STREAM_RECORDS - exhausted,
        "recovered": sum(
            1 for i, (_, o) in outcomes.items() if isinstance(o, ChatCompletionResult) and len(by_record[i]) > 1
        ),
        "exhausted": exhausted,
        "streams_cut_mid_answer": cut_mid_answer,
        "elapsed_s": round(elapsed, 3),
    }
    write_summary(STREAM_SUMMARY, summary)
    with capsys.disabled():
        print(f"\nstreamed chaos summary ({STREAM_SUMMARY.relative_to(REPO)}): {summary}")  # noqa: T201

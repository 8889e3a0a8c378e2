"""Shared pieces of the fault-injection suite: the chaos fault mix, instruments and the compressed retry clock.

Also imported by the subprocess of the kill-and-resume test, so it must not need pytest.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlRateLimitError,
    AimlServerError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.retry import RetryPolicy
from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from airflow_provider_aiml.testing.records import RecordedRequest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / "build" / "faults"
CHAOS_SUMMARY = BUILD_DIR / "chaos-summary.json"
STREAM_SUMMARY = BUILD_DIR / "stream-chaos-summary.json"
RESUME_SUMMARY = BUILD_DIR / "resume-summary.json"
FUZZ_SUMMARY = BUILD_DIR / "fuzz-scope.json"

FAULTS_CONN_ID = "aiml_faults"
FAULTS_API_KEY = "sk-faults-test-key"
FAULTS_TIMEOUT_S = 1.0
"""The connection's timeout: a ``delay`` fault of :data:`SLOW_REPLY_S` trips it."""
SLOW_REPLY_S = 2.0
MAX_RETRIES = 2
CHAOS_SEED = 20260601
WAIT_SCALE = 0.02
"""Retry waits and 429 pauses are taken at this fraction of their length (1 s of backoff -> 20 ms)."""


@dataclass(frozen=True)
class ChaosFault:
    """One line of the fault mix: what is injected, how often, and the error the provider must turn it into."""

    key: str
    label: str
    fault: Fault
    rate: float
    error: type[AimlApiError]


def chaos_mix(*, cut_after_chunks: int = 3) -> list[ChaosFault]:
    """The chaos fault mix (19% of the requests): 10% 429, 5% 503, 1% each of four harder failures."""
    return [
        ChaosFault(
            "429_retry_after_1", "429, `Retry-After: 1`", Fault.status(429, retry_after=1), 0.04, AimlRateLimitError
        ),
        ChaosFault(
            "429_retry_after_0", "429, `Retry-After: 0`", Fault.status(429, retry_after=0), 0.03, AimlRateLimitError
        ),
        ChaosFault("429_no_retry_after", "429, no `Retry-After`", Fault.status(429), 0.03, AimlRateLimitError),
        ChaosFault("503", "503 (JSON error body)", Fault.status(503), 0.05, AimlServerError),
        ChaosFault("502_html", "502 with an HTML page", Fault.status(502, body="html"), 0.01, AimlServerError),
        ChaosFault("reset", "connection reset (TCP RST, no response)", Fault.reset(), 0.01, AimlTransportError),
        ChaosFault(
            "cut",
            f"answer cut mid-body (`cut_stream({cut_after_chunks})`)",
            Fault.cut_stream(cut_after_chunks),
            0.01,
            AimlTransportError,
        ),
        ChaosFault(
            "timeout",
            f"no answer for {SLOW_REPLY_S:g} s (read timeout {FAULTS_TIMEOUT_S:g} s)",
            Fault.delay(SLOW_REPLY_S),
            0.01,
            AimlTimeoutError,
        ),
    ]


def fault_rates(mix: list[ChaosFault]) -> dict[Fault, float]:
    """The mix as ``set_fault_rates`` takes it."""
    return {item.fault: item.rate for item in mix}


def faults_connection(emulator: AimlApiEmulator) -> str:
    """``AIRFLOW_CONN_AIML_FAULTS``: the emulator, a 1 s timeout, 2 retries."""
    return json.dumps(
        {
            "conn_type": "aimlapi",
            "password": FAULTS_API_KEY,
            "host": emulator.base_url,
            "extra": {"timeout": FAULTS_TIMEOUT_S, "max_retries": MAX_RETRIES},
        }
    )


def record_index(client_request_id: str | None) -> int:
    """The record of a batch call, from its ``X-Client-Request-Id`` (``...:r<index>``)."""
    assert client_request_id, "a batch call without X-Client-Request-Id"
    return int(client_request_id.rsplit(":r", 1)[1])


def expected_answer(text: str) -> str:
    """The emulator's deterministic answer to a record (its first two sentences, prefixed)."""
    return f"Summary: {' '.join(text.split())}"


class FaultLedger:
    """Which fault the emulator drew for each chat request.

    Test instrumentation: the emulator logs requests but not the fault it applied, so this wraps two methods of
    its (private) state object: the handler thread logs a request, then draws its fault.
    """

    def __init__(self, emulator: AimlApiEmulator) -> None:
        state = emulator._state
        self._faults: dict[tuple[str | None, float], Fault | None] = {}
        self._local = threading.local()
        record, next_fault = state.record, state.next_fault

        def recording(request: RecordedRequest) -> int:
            token = record(request)
            self._local.key = (request.client_request_id, request.received_at)
            return token

        def drawing() -> Fault | None:
            fault = next_fault()
            self._faults[self._local.key] = fault
            return fault

        state.record = recording  # type: ignore[method-assign]
        state.next_fault = drawing  # type: ignore[method-assign]

    def fault_of(self, request: RecordedRequest) -> Fault | None:
        """The fault applied to ``request`` (``None``: answered normally)."""
        key = (request.client_request_id, request.received_at)
        assert key in self._faults, f"no fault was drawn for {request!r}"
        return self._faults[key]


@dataclass(frozen=True)
class RetryWait:
    """One wait the retry policy chose (before compression)."""

    caller: str
    """``_call``: the pause of every worker after a 429; ``_process``: the record's own wait before its retry."""
    status: int | None
    attempt: int
    seconds: float
    retry_after: str | None


class CompressedRetryPolicy(RetryPolicy):
    """The batch's retry policy, unchanged in every decision, with its waits shortened by :data:`WAIT_SCALE`.

    The runner takes both the pause of all workers after a 429 and each record's backoff from
    ``delay_before_retry``, so scaling its answer compresses the batch's clock without changing what happens.
    """

    waits: list[RetryWait] = []  # one log for the process, reset by install_compressed_waits()

    def delay_before_retry(self, error: AimlApiError, attempt: int) -> float | None:
        delay = super().delay_before_retry(error, attempt)
        if delay is None:
            return None
        caller = sys._getframe(1).f_code.co_name
        CompressedRetryPolicy.waits.append(RetryWait(caller, error.status_code, attempt, delay, error.retry_after))
        return delay * WAIT_SCALE


def install_compressed_waits(setattr_: Any = setattr) -> None:
    """Make the batch operator build :class:`CompressedRetryPolicy` (``setattr_``: a monkeypatch's, in tests).

    The operator imports ``RetryPolicy`` from ``hooks.retry`` when it runs (or, in older versions, at import).
    """
    from airflow_provider_aiml.hooks import retry
    from airflow_provider_aiml.operators import batch

    CompressedRetryPolicy.waits = []
    setattr_(retry, "RetryPolicy", CompressedRetryPolicy)
    if hasattr(batch, "RetryPolicy"):
        setattr_(batch, "RetryPolicy", CompressedRetryPolicy)


class AttemptSpy:
    """What the provider made of each call of a batch: ``"ok"`` or the name of the error it raised."""

    def __init__(self) -> None:
        self.outcomes: dict[str, list[str]] = defaultdict(list)

    def install(self, setattr_: Any) -> None:
        from airflow_provider_aiml.hooks.aiml import AimlApiHook

        original = AimlApiHook.asend_chat
        outcomes = self.outcomes

        async def asend_chat(hook: AimlApiHook, call: Any) -> Any:
            try:
                result = await original(hook, call)
            except AimlApiError as error:
                outcomes[call.client_request_id].append(type(error).__name__)
                raise
            outcomes[call.client_request_id].append("ok")
            return result

        setattr_(AimlApiHook, "asend_chat", asend_chat)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write a summary as JSON under build/faults (the input of write_reliability.py), with where it was measured."""
    import httpx
    from airflow import __version__ as airflow_version

    from airflow_provider_aiml import __version__

    meta = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": f"airflow-provider-aiml {__version__}, apache-airflow {airflow_version}, httpx {httpx.__version__}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, "meta": meta}, indent=2) + "\n", encoding="utf-8")

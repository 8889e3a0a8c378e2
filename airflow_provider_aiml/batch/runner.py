"""Runs the calls of a batch on the async client: bounded, paced, within budget, resumable.

Each record is tried until it succeeds or the retry policy gives up; a 429 slows the whole batch down. Before a
call is started the token and cost budgets are checked against what was spent plus what the calls in flight
will likely spend; once a budget would be passed no new call starts, the ones in flight finish, and every
result obtained is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_aiml.batch.checkpoint import Checkpoint
from airflow_provider_aiml.batch.limits import AdaptiveConcurrency, RateLimits
from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlDailyBudgetError,
    AimlLimitStoreError,
    AimlOutputParseError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat
from airflow_provider_aiml.hooks.building import client_request_id
from airflow_provider_aiml.hooks.retry import RetryPolicy
from airflow_provider_aiml.models import ChatCompletionResult, Usage
from airflow_provider_aiml.structured import reask_messages

RETRIES_LOGGED_ONE_BY_ONE = 5
PREPARER_THREADS = 2
READER_THREADS = 8


Prepared = tuple[list[dict[str, Any]], dict[str, Any] | None]
"""A record's messages and request body."""


class Preparation(Protocol):
    """How a file record becomes its request, in two stages run on different threads."""

    def fetch(self) -> Any:
        """Read what the record needs (waits on storage)."""

    def build(self, fetched: Any) -> Prepared:
        """Turn what was read into the messages and body (uses the CPU)."""


@dataclass(frozen=True)
class BatchItem:
    """One record's request."""

    index: int
    messages: list[dict[str, Any]]
    fingerprint: str
    """A hash of everything that shapes the request: a changed prompt or parameter invalidates a checkpoint."""
    estimated_tokens: float = 0.0
    body: dict[str, Any] | None = None
    """The request body, built and checked before the batch started (``None``: built at call time)."""
    prepare: Preparation | None = None
    """For a file record: reads and renders the file into the messages and body, on worker threads, while other
    records' calls are in flight (so 1,000 PDFs are never all in memory)."""
    source: str | None = None
    """The file a record came from, for the results."""


@dataclass
class RecordOutcome:
    """What became of one record."""

    index: int
    content: str | None = None
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    parsed: Any = None
    error: str | None = None
    resumed: bool = False
    """Taken from the checkpoint instead of being asked again."""
    source: str | None = None

    def to_xcom(self, with_parsed: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"index": self.index}
        if self.source is not None:
            item["source"] = self.source
        item |= {
            "content": self.content,
            "reasoning": self.reasoning,
            "usage": self.usage.model_dump(),
        }
        if with_parsed:
            item["parsed"] = self.parsed
        item["error"] = self.error
        return item

    def to_checkpoint(self, fingerprint: str) -> dict[str, Any]:
        return {**self.to_xcom(with_parsed=True), "fingerprint": fingerprint}

    @classmethod
    def from_checkpoint(cls, entry: Mapping[str, Any]) -> RecordOutcome:
        return cls(
            index=int(entry["index"]),
            content=entry.get("content"),
            reasoning=entry.get("reasoning") or "",
            usage=Usage.model_validate(entry.get("usage") or {}),
            parsed=entry.get("parsed"),
            resumed=True,
            source=entry.get("source"),
        )


@dataclass(frozen=True)
class _Stopped:
    """A budget refused the call."""

    reason: str


@dataclass(frozen=True)
class BatchLimits:
    """How the batch may spend: concurrency, per-minute limits, budgets."""

    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    rate_window_s: float = 60.0


@dataclass
class BatchReport:
    """The outcome of a whole batch, aligned with its inputs."""

    outcomes: list[RecordOutcome]
    stop_reason: str | None
    requests: int
    elapsed_s: float

    @property
    def failed(self) -> list[RecordOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for outcome in self.outcomes:
            total = total + outcome.usage
        return total


class BatchRunner:
    """Works through the records of one batch task."""

    def __init__(
        self,
        hook: AimlApiHook,
        items: list[BatchItem],
        *,
        total: int,
        call_kwargs: Mapping[str, Any],
        request_id_prefix: str,
        limits: BatchLimits,
        retry_policy: RetryPolicy,
        parse: Callable[[str], Any],
        max_validation_retries: int = 0,
        checkpoint: Checkpoint | None = None,
        resumed: Mapping[int, RecordOutcome] | None = None,
        progress_interval: float = 15.0,
        log: Any,
        template: PreparedChat | None = None,
    ) -> None:
        self.hook = hook
        self.total = total
        self.call_kwargs = dict(call_kwargs)
        self.request_id_prefix = request_id_prefix
        self.limits = limits
        self.retry_policy = retry_policy
        self.parse = parse
        self.max_validation_retries = max_validation_retries
        self.checkpoint = checkpoint
        self.progress_interval = progress_interval
        self.log = log
        self.template = template
        """The first record's checked call: each record's call is built from it, with its fallbacks."""
        self.outcomes: dict[int, RecordOutcome] = dict(resumed or {})
        self._queue = deque(items)
        self._gate = AdaptiveConcurrency(limits.concurrency)
        self._rates = RateLimits(limits.requests_per_minute, limits.tokens_per_minute, window=limits.rate_window_s)
        self._resumed_count = len(self.outcomes)
        # Budgets are for the whole batch: what earlier tries of the task spent on resumed records counts.
        self._spent = sum((outcome.usage for outcome in self.outcomes.values()), Usage())
        self._try_spent = Usage()  # the calls of this try only, for the log lines
        self._calls_done = len(self.outcomes)
        self._calls_without_cost = sum(1 for outcome in self.outcomes.values() if outcome.usage.usd_spent is None)
        self._requests = 0
        self._retries = 0
        self._stop_reason: str | None = None
        self._started = 0.0
        self._pools: dict[str, ThreadPoolExecutor] = {}

    async def run(self) -> BatchReport:
        """Run every pending record; returns when all settled or a budget stopped the batch."""
        self._started = time.monotonic()
        pending = len(self._queue)
        self.log.info(
            "Batch of %d records: %d to ask, %d taken from the checkpoint; concurrency %d",
            self.total,
            pending,
            self._resumed_count,
            self.limits.concurrency,
        )
        if pending:
            await self.hook.get_async_conn()  # create the clients once, before the workers race for them
            progress = asyncio.create_task(self._report_progress())
            try:
                await asyncio.gather(*(self._work() for _ in range(min(self.limits.concurrency, pending))))
            finally:
                progress.cancel()
                for pool in self._pools.values():
                    pool.shutdown(wait=False, cancel_futures=True)
                await self.hook.aclose()
                if self.checkpoint is not None:
                    self.checkpoint.close()
        for item in self._queue:
            self.outcomes[item.index] = RecordOutcome(
                index=item.index, error=f"not run: {self._stop_reason}", source=item.source
            )
        self._log_progress(final=True)
        ordered = [self.outcomes[index] for index in sorted(self.outcomes)]
        return BatchReport(ordered, self._stop_reason, self._requests, time.monotonic() - self._started)

    async def _work(self) -> None:
        upcoming = self._take()
        while upcoming is not None:
            item, preparing = upcoming
            prepared = await preparing
            # The next record is read and rendered while this one's call is in flight.
            upcoming = self._take()
            outcome = await self._process(item, prepared)
            if outcome is None:  # a budget stopped the batch before this record's first call
                self._queue.appendleft(item)
                break
            self._settle(item, outcome)
        if upcoming is not None:  # stopped with the next record prepared: it is not run
            upcoming[1].cancel()
            self._queue.appendleft(upcoming[0])

    def _take(self) -> tuple[BatchItem, asyncio.Future[Prepared | AimlApiError]] | None:
        """The next record and its preparation (started now), or ``None`` when none is left or the batch stopped."""
        if not self._queue or self._stop_reason is not None:
            return None
        item = self._queue.popleft()
        return item, asyncio.ensure_future(self._prepare(item))

    def _pool(self, stage: str) -> ThreadPoolExecutor:
        """The threads of a preparation stage. ``read``: many, as they mostly wait on storage, so one slow read
        does not hold up the rendering. ``prepare``: few, as PDFium renders one page at a time anyway and more
        threads only fight over the GIL with the event loop."""
        pool = self._pools.get(stage)
        if pool is None:
            workers = READER_THREADS if stage == "read" else PREPARER_THREADS
            pool = self._pools[stage] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"aiml-{stage}")
        return pool

    async def _prepare(self, item: BatchItem) -> Prepared | AimlApiError:
        if item.prepare is None:
            return item.messages, item.body
        try:
            loop = asyncio.get_running_loop()
            fetched = await loop.run_in_executor(self._pool("read"), item.prepare.fetch)
            return await loop.run_in_executor(self._pool("prepare"), item.prepare.build, fetched)
        except AimlApiError as error:  # a bad file fails its record, before any call is made for it
            return error

    async def _process(self, item: BatchItem, prepared: Prepared | AimlApiError) -> RecordOutcome | None:
        if isinstance(prepared, AimlApiError):
            return RecordOutcome(index=item.index, error=str(prepared), source=item.source)
        messages, body = prepared
        spent = Usage()
        last: ChatCompletionResult | None = None
        attempt = validation_attempt = 0
        while True:
            attempt += 1
            result = await self._call(item, messages, body, attempt, validation_attempt)
            if isinstance(result, _Stopped):
                if last is None and spent == Usage():
                    return None
                return RecordOutcome(  # keep the answer already paid for, if a re-ask was stopped
                    index=item.index,
                    content=last.content if last is not None else None,
                    reasoning=last.reasoning if last is not None else "",
                    usage=spent,
                    error=f"stopped: {result.reason}",
                    source=item.source,
                )
            if isinstance(result, AimlApiError):
                delay = self.retry_policy.delay_before_retry(result, attempt)
                if delay is None:
                    return RecordOutcome(index=item.index, usage=spent, error=str(result), source=item.source)
                self._note_retry(item, result, attempt, delay)
                await asyncio.sleep(delay)
                continue
            spent = spent + result.usage
            last = result
            try:
                parsed = self.parse(result.content)
            except AimlOutputParseError as problem:
                if validation_attempt >= self.max_validation_retries:
                    return RecordOutcome(
                        index=item.index,
                        content=result.content,
                        reasoning=result.reasoning,
                        usage=spent,
                        error=str(problem),
                        source=item.source,
                    )
                validation_attempt += 1
                attempt = 0
                messages = reask_messages(messages, result.content, problem)
                continue
            return RecordOutcome(
                index=item.index,
                content=result.content,
                reasoning=result.reasoning,
                usage=spent,
                parsed=parsed,
                source=item.source,
            )

    async def _call(
        self,
        item: BatchItem,
        messages: list[dict[str, Any]],
        body: dict[str, Any] | None,
        attempt: int,
        validation_attempt: int,
    ) -> ChatCompletionResult | AimlApiError | _Stopped:
        token_entry = await self._rates.admit(item.estimated_tokens)
        await self._gate.acquire()
        rate_limited_for: float | None = None
        try:
            # Checked at the moment the call would start, after any wait for a slot or the rate limits.
            refusal = self._over_budget(item)
            if refusal is not None:
                self._stop_reason = self._stop_reason or refusal
                return _Stopped(refusal)
            self._requests += 1
            parts = [self.request_id_prefix, f"r{item.index}"] + (
                [f"v{validation_attempt}"] if validation_attempt else []
            )
            request_id = client_request_id(*parts)
            if validation_attempt == 0 and body is not None:
                model = self.call_kwargs.get("model") or body["model"]
                template = self.template
                call = template.for_body(body, request_id) if template else PreparedChat(model, body, request_id)
                result = await self.hook.asend_chat(call)
            else:  # a validation re-ask: a new conversation, checked and built now
                result = await self.hook.achat_completion(messages, client_request_id=request_id, **self.call_kwargs)
        except (AimlDailyBudgetError, AimlLimitStoreError) as error:
            # The connection's budget for the day, or its limits' store gone: stop like our own budgets (no new
            # call starts, what was obtained is kept), rather than fail every record one by one.
            self._stop_reason = self._stop_reason or error.message
            return _Stopped(error.message)
        except AimlApiError as error:
            if error.status_code == 429:
                rate_limited_for = self.retry_policy.delay_before_retry(error, attempt) or 0.0
            return error
        else:
            self._account(result.usage)
            self._rates.correct_tokens(token_entry, result.usage.total_tokens)
            return result
        finally:
            await self._gate.release(rate_limited_for=rate_limited_for)

    def _account(self, usage: Usage) -> None:
        self._spent = self._spent + usage
        self._try_spent = self._try_spent + usage
        self._calls_done += 1
        if usage.usd_spent is None:
            self._calls_without_cost += 1

    def _over_budget(self, item: BatchItem) -> str | None:
        """Why this call may not start, or ``None``.

        A budget counts what was spent (resumed records included) plus what the calls in flight, this one
        included, will likely spend: the average call so far, or this record's own estimate before any call
        finished.
        """
        if self._stop_reason is not None:
            return self._stop_reason
        in_flight = self._gate.in_flight
        tokens_cap = self.limits.max_total_tokens
        if tokens_cap is not None:
            per_call = self._spent.total_tokens / self._calls_done if self._calls_done else item.estimated_tokens
            if self._spent.total_tokens + in_flight * per_call > tokens_cap:
                return f"the token budget of {tokens_cap:,} would be passed ({self._spent.total_tokens:,} spent)"
        cost_cap = self.limits.max_cost_usd
        if cost_cap is not None and self._calls_done:
            if self._calls_without_cost:
                return "the cost budget cannot be enforced: the API reported no cost for some calls"
            spent_usd = self._spent.usd_spent or 0.0
            if spent_usd + in_flight * spent_usd / self._calls_done > cost_cap:
                return f"the cost budget of ${cost_cap:g} would be passed (${spent_usd:.6f} spent)"
        return None

    def _note_retry(self, item: BatchItem, error: AimlApiError, attempt: int, delay: float) -> None:
        self._retries += 1
        if self._retries <= RETRIES_LOGGED_ONE_BY_ONE:
            self.log.warning(
                "Record %d: %s; retry %d of %d in %.1fs%s",
                item.index,
                error.message,
                attempt,
                self.retry_policy.max_retries,
                delay,
                " (the progress lines count further retries)" if self._retries == RETRIES_LOGGED_ONE_BY_ONE else "",
            )

    def _settle(self, item: BatchItem, outcome: RecordOutcome) -> None:
        self.outcomes[item.index] = outcome
        if outcome.error is not None or self.checkpoint is None:
            return
        try:
            self.checkpoint.append(outcome.to_checkpoint(item.fingerprint))
        except Exception as error:  # a failing checkpoint must not cost the results already paid for
            self.log.warning(
                "Writing the checkpoint %s failed (%s: %s); the batch goes on without it",
                self.checkpoint.location,
                type(error).__name__,
                error,
            )
            self.checkpoint = None

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            self._log_progress()

    def _log_progress(self, *, final: bool = False) -> None:
        settled = len(self.outcomes) - self._resumed_count
        failed = sum(1 for outcome in self.outcomes.values() if outcome.error is not None)
        done = settled
        asked = self.total - self._resumed_count
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = done / elapsed
        remaining = asked - done
        eta = f"{remaining / rate:.0f}s" if rate > 0 and remaining > 0 else "-"
        resumed = ""
        if self._resumed_count:  # the budgets count these too: show the whole batch's spend as well
            records = f"{self._resumed_count} record{'s' if self._resumed_count != 1 else ''}"
            resumed = f"; in all, with {records} resumed from the checkpoint: {_spend(self._spent)}"
        self.log.info(
            "%s %d/%d done (%d failed), %.1f records/s, ETA %s; this try: %d calls, %s%s; "
            "%d requests, %d retries (%d rate-limited), %d in flight, concurrency limit %d",
            "Batch finished:" if final else "Batch progress:",
            done,
            asked,
            failed,
            rate,
            eta,
            self._calls_done - self._resumed_count,
            _spend(self._try_spent),
            resumed,
            self._requests,
            self._retries,
            self._gate.rate_limited,
            self._gate.in_flight,
            int(self._gate.limit),
        )


def _spend(usage: Usage) -> str:
    """Tokens and cost for a progress line: ``tokens 272 (reasoning 188, cached 12), cost $0.000272``."""
    shares = f"reasoning {usage.reasoning_tokens}" + (f", cached {usage.cached_tokens}" if usage.cached_tokens else "")
    cost = f"${usage.usd_spent:.6f}" if usage.usd_spent is not None else "unknown"
    return f"tokens {usage.total_tokens} ({shares}), cost {cost}"

"""What the API billed, call by call: ``GET /v2/logs`` read page by page, optionally kept to the client request
ids of one's own calls, and summed (reconciliation).

The query building, the page parsing, the filtering and the 429 policy live here once; the sync and async reads
differ only in their HTTP GET and their sleeps. Requests are paced under the endpoint's limit of 200 per 60 s.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_aiml.exceptions import AimlParameterError, AimlRateLimitError, AimlResponseError
from airflow_provider_aiml.hooks.retry import parse_retry_after
from airflow_provider_aiml.models import round_usd

if TYPE_CHECKING:
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

LOGS_PATH = "/v2/logs"
PAGE_LIMIT_MAX = 100
"""Rows per page the endpoint allows at most (and the size :func:`billed_usage` asks for)."""
MAX_WINDOW = timedelta(days=92)
LOGS_PERIOD = re.compile(r"(?P<count>[1-9][0-9]{0,4})(?P<unit>[hd])")
"""``period`` of ``GET /v2/logs``: a positive count of hours or days, as in ``24h`` or ``7d``."""
STATUSES = frozenset({"succeeded", "failed"})
MODELS_MAX = 50
"""``model`` values the endpoint accepts in one query."""
DEFAULT_MAX_PAGES = 100
RATE_LIMIT = 200
RATE_WINDOW_S = 60.0
"""The endpoint answers 429 above :data:`RATE_LIMIT` requests per :data:`RATE_WINDOW_S` seconds."""
RATE_LIMIT_TRIES = 4
"""Tries of one page when the API answers 429 anyway (the first and three more)."""
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 30.0
MISSING_SHOWN = 5
"""Missing client request ids :meth:`BilledUsage.summary` lists by name."""


class _Log(Protocol):
    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


# --- results --------------------------------------------------------------------------------------------------


class BilledCall(BaseModel):
    """One row of ``GET /v2/logs``: one request, what it cost and the ids that tie it to the call made."""

    model_config = ConfigDict(frozen=True)

    created: datetime
    """When the request was made (UTC)."""
    status: str
    """``succeeded`` or ``failed``; a failed request is billed nothing."""
    model: str
    origin: str | None = None
    """``api`` or ``playground``."""
    usd: float
    credits: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    request_id: str | None
    inference_id: str | None
    """The ``x-inference-id`` header of the answer, and the ``reference_id`` of its charge in the ledger."""
    client_request_id: str | None
    """The ``X-Client-Request-Id`` sent with the request (``None`` when none was)."""


class BilledUsage(BaseModel):
    """The calls :func:`billed_usage` found in the window, and their sums."""

    model_config = ConfigDict(frozen=True)

    calls: list[BilledCall]
    """The rows kept, newest first."""
    missing: list[str] = []
    """Requested client request ids with no row (yet: charges land after the answer)."""
    pages: int = 0
    """Pages read."""
    rows: int = 0
    """Rows read, before filtering by client request id."""
    complete: bool = True
    """``False`` when ``max_pages`` stopped the read before the last page."""

    @property
    def usd(self) -> float:
        return round_usd(sum(call.usd for call in self.calls))

    @property
    def credits(self) -> int:
        return sum(call.credits for call in self.calls)

    @property
    def count(self) -> int:
        """Calls kept (failed ones included)."""
        return len(self.calls)

    @property
    def failed(self) -> int:
        return sum(call.status == "failed" for call in self.calls)

    def summary(self) -> dict[str, Any]:
        """The figures as a small JSON-safe dict (for XCom)."""
        return {
            "billed_usd": self.usd,
            "billed_credits": self.credits,
            "billed_calls": self.count,
            "failed_calls": self.failed,
            "missing_client_request_ids": len(self.missing),
            "missing_sample": self.missing[:MISSING_SHOWN],
            "complete": self.complete,
        }


# --- query and page -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsQuery:
    """The validated filters of a ``GET /v2/logs`` read; :meth:`page` gives the parameters of one page."""

    filters: tuple[tuple[str, str], ...]
    limit: int = PAGE_LIMIT_MAX

    def page(self, offset: int) -> tuple[tuple[str, str], ...]:
        return (*self.filters, ("limit", str(self.limit)), ("offset", str(offset)))


def logs_queries(
    *,
    period: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    models: str | Sequence[str] = (),
    statuses: str | Sequence[str] = (),
    limit: int = PAGE_LIMIT_MAX,
) -> LogsQuery:
    """Check the arguments of a ``GET /v2/logs`` read and build its query; a bad one raises
    :class:`AimlParameterError` naming it, before any request."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_LIMIT_MAX:
        raise AimlParameterError(f"'limit' must be a whole number from 1 to {PAGE_LIMIT_MAX}, got {limit!r}")
    filters: list[tuple[str, str]] = []
    if period is not None:
        if start is not None or end is not None:
            raise AimlParameterError("Give either 'period' or 'start' and 'end', not both")
        filters.append(("period", _period(period)))
    elif start is None and end is None:
        raise AimlParameterError("Give the window: 'period' (such as '24h' or '7d'), or 'start' and 'end'")
    elif start is None or end is None:
        raise AimlParameterError(f"'{'start' if start is None else 'end'}' is missing: give 'start' and 'end' together")
    else:
        began, ended = _instant(start, "start"), _instant(end, "end")
        if ended < began:
            raise AimlParameterError(f"'end' ({_iso(ended)}) is earlier than 'start' ({_iso(began)})")
        if ended - began > MAX_WINDOW:
            raise AimlParameterError(f"'start' to 'end' spans {ended - began}, more than the API's 92 days")
        filters += [("start", _iso(began)), ("end", _iso(ended))]
    model_values = _values(models, "models")
    if len(model_values) > MODELS_MAX:
        raise AimlParameterError(f"'models' may hold {MODELS_MAX} models at most, got {len(model_values)}")
    for model in model_values:
        if "," in model:
            raise AimlParameterError(f"'models' must list each model on its own, got {model!r}")
        filters.append(("model", model))
    for status in _values(statuses, "statuses"):
        if status not in STATUSES:
            raise AimlParameterError(f"'statuses' may hold 'succeeded' and 'failed', got {status!r}")
        filters.append(("status", status))
    return LogsQuery(tuple(filters), limit)


def _period(period: object) -> str:
    match = LOGS_PERIOD.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise AimlParameterError(f"'period' must be a count of hours or days such as '24h' or '7d', got {period!r}")
    count = int(match["count"])
    length = timedelta(hours=count) if match["unit"] == "h" else timedelta(days=count)
    if length > MAX_WINDOW:
        raise AimlParameterError(f"'period' {period!r} is longer than the API's 92 days")
    return match[0]


def _instant(value: object, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise AimlParameterError(f"'{name}' must be an ISO-8601 date and time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise AimlParameterError(f"'{name}' must be a datetime or an ISO-8601 string, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _values(values: object, name: str) -> list[str]:
    chosen = [values] if isinstance(values, str) else values
    if not isinstance(chosen, Iterable) or not all(isinstance(v, str) and v.strip() for v in chosen):
        raise AimlParameterError(f"'{name}' must be a list of non-empty strings, got {values!r}")
    return list(dict.fromkeys(chosen))


class _Cost(BaseModel):
    usd: float
    credits: int


class _Tokens(BaseModel):
    input: int
    output: int
    total: int


class _Row(BaseModel):
    created: datetime
    status: str
    origin: str | None = None
    model: str
    cost: _Cost
    tokens: _Tokens
    request_id: str | None
    inference_id: str | None
    client_request_id: str | None


class _Pagination(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class _Page(BaseModel):
    data: list[_Row]
    pagination: _Pagination


@dataclass(frozen=True)
class LogsPage:
    """One parsed page of ``GET /v2/logs``."""

    calls: list[BilledCall]
    total: int
    has_more: bool


def parse_logs_page(response_json: Any) -> LogsPage:
    """The rows of a ``GET /v2/logs`` answer, or :class:`AimlResponseError` for another shape."""
    try:
        page = _Page.model_validate(response_json)
    except ValidationError as error:
        where = ".".join(str(part) for part in error.errors()[0]["loc"]) or "the body"
        raise AimlResponseError(
            f"The answer of GET {LOGS_PATH} is not the documented {{data, pagination}} shape (at {where})"
        ) from None
    calls = [
        BilledCall(
            created=row.created,
            status=row.status,
            model=row.model,
            origin=row.origin,
            usd=row.cost.usd,
            credits=row.cost.credits,
            input_tokens=row.tokens.input,
            output_tokens=row.tokens.output,
            total_tokens=row.tokens.total,
            request_id=row.request_id,
            inference_id=row.inference_id,
            client_request_id=row.client_request_id,
        )
        for row in page.data
    ]
    if page.pagination.has_more and not calls:
        raise AimlResponseError(f"GET {LOGS_PATH} sent an empty page that says more follow")
    return LogsPage(calls, page.pagination.total, page.pagination.has_more)


# --- pacing ---------------------------------------------------------------------------------------------------


class RequestPacer:
    """A sliding window of request times: :meth:`reserve` books the next request and says how long to wait so
    that no ``window`` seconds hold more than ``limit`` of them. Thread-safe; the sleeps can be swapped."""

    def __init__(
        self,
        limit: int = RATE_LIMIT,
        window: float = RATE_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise AimlParameterError(f"A pacer needs a limit >= 1 and a window > 0, got {limit} per {window}s")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._sent: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book a request; the seconds to wait before sending it."""
        with self._lock:
            now = self._clock()
            at = now
            if len(self._sent) == self.limit:
                at = max(at, self._sent[0] + self.window)
            if self._sent:
                at = max(at, self._sent[-1])
            self._sent.append(at)
            return at - now

    def wait(self, log: _Log | None = None) -> float:
        """Book a request and sleep until it may go; the seconds slept."""
        delay = self.reserve()
        if delay > 0:
            self._note(log, delay)
            self._sleep(delay)
        return delay

    async def await_turn(self, log: _Log | None = None) -> float:
        """:meth:`wait` without blocking the event loop."""
        delay = self.reserve()
        if delay > 0:
            self._note(log, delay)
            await self._async_sleep(delay)
        return delay

    def _note(self, log: _Log | None, delay: float) -> None:
        if log is not None:
            log.info(
                "Pacing GET %s: waiting %.1fs to stay under %d requests per %gs",
                LOGS_PATH,
                delay,
                self.limit,
                self.window,
            )


_PACERS: dict[str, RequestPacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(api_root: str) -> RequestPacer:
    """The process's pacer of ``GET /v2/logs`` at ``api_root`` (one per API root, shared by every call)."""
    with _PACERS_LOCK:
        return _PACERS.setdefault(api_root, RequestPacer())


# --- the read -------------------------------------------------------------------------------------------------


class _Read:
    """The state of one paged read: which page comes next, the rows kept, the ids still unseen."""

    def __init__(
        self, query: LogsQuery, client_request_ids: Iterable[str] | None, max_pages: int, stop_early: bool
    ) -> None:
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise AimlParameterError(f"'max_pages' must be a whole number >= 1, got {max_pages!r}")
        self.wanted = None if client_request_ids is None else _values(client_request_ids, "client_request_ids")
        self.wanted_set = set(self.wanted or ())
        self.unseen = set(self.wanted_set)
        self.query, self.max_pages, self.stop_early = query, max_pages, stop_early
        self.offset = self.pages = self.rows = 0
        self.calls: list[BilledCall] = []
        self.seen: set[tuple[str | None, str | None, datetime]] = set()
        self.done = self.wanted == []
        self.complete = True

    def next_params(self) -> tuple[tuple[str, str], ...] | None:
        if self.done:
            return None
        if self.pages == self.max_pages:
            self.complete, self.done = False, True
            return None
        return self.query.page(self.offset)

    def take(self, response_json: Any) -> None:
        page = parse_logs_page(response_json)
        self.pages += 1
        self.rows += len(page.calls)
        self.offset += len(page.calls)
        for call in page.calls:
            key = (call.request_id, call.inference_id, call.created)
            if key in self.seen:  # a row that arrived meanwhile shifted the pages by one
                continue
            self.seen.add(key)
            if self.wanted is None or call.client_request_id in self.wanted_set:
                self.calls.append(call)
                self.unseen.discard(call.client_request_id or "")
        self.done = not page.has_more or (self.stop_early and self.wanted is not None and not self.unseen)

    def result(self, log: _Log) -> BilledUsage:
        usage = BilledUsage(
            calls=self.calls,
            missing=[i for i in self.wanted or () if i in self.unseen],
            pages=self.pages,
            rows=self.rows,
            complete=self.complete,
        )
        if not usage.complete:
            log.warning("GET %s: stopped after max_pages=%d pages; more rows follow", LOGS_PATH, self.max_pages)
        log.info(
            "GET %s: %d pages, %d rows, %d calls matched (%d failed), %s missing; billed $%.7f (%d credits)",
            LOGS_PATH,
            usage.pages,
            usage.rows,
            usage.count,
            usage.failed,
            "-" if self.wanted is None else len(usage.missing),
            usage.usd,
            usage.credits,
        )
        return usage


def _retry_delay(hook: AimlApiHook, response: httpx.Response, attempt: int, url: str) -> float | None:
    """``None`` for a usable answer, the wait before trying again after a 429; raises on any other failure."""
    if response.status_code == 429:
        error = hook._status_error(response, None)
        if attempt >= RATE_LIMIT_TRIES:
            raise AimlRateLimitError(
                f"GET {LOGS_PATH} is still rate limited after {attempt} tries: {error.message}",
                status_code=429,
                api_request_id=error.api_request_id,
                retry_after=error.retry_after,
            )
        server_wait = parse_retry_after(error.retry_after)
        delay = min(BACKOFF_MAX_S, server_wait if server_wait is not None else BACKOFF_BASE_S * 2 ** (attempt - 1))
        hook.log.warning(
            "GET %s rate limited (HTTP 429); try %d of %d in %.1fs", LOGS_PATH, attempt + 1, RATE_LIMIT_TRIES, delay
        )
        return delay
    if response.status_code >= 400:
        raise hook._status_error(response, None)
    if response.status_code >= 300:
        raise AimlResponseError(
            f"{url} redirects (HTTP {response.status_code}) to "
            f"{response.headers.get('location', 'another address')}: fix the Base URL"
        )
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AimlResponseError(f"The answer of GET {LOGS_PATH} is not JSON") from None


def billed_usage(
    hook: AimlApiHook,
    client_request_ids: Iterable[str] | None = None,
    *,
    period: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    models: str | Sequence[str] = (),
    statuses: str | Sequence[str] = (),
    timeout: float | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    stop_early: bool = True,
    pacer: RequestPacer | None = None,
) -> BilledUsage:
    """What the API billed in a window (``GET /v2/logs``), kept to ``client_request_ids`` when given.

    The window is ``period`` (``"24h"``, ``"7d"``) or ``start`` and ``end`` (naive times are UTC), 92 days at
    most. With ids, reading stops once each was seen unless ``stop_early`` is false (older tries of a call may
    follow). Requests are paced by ``pacer`` (the process's pacer of the API root by default); a 429 is retried
    with backoff, then raises :class:`~airflow_provider_aiml.exceptions.AimlRateLimitError`.
    """
    from airflow_provider_aiml.hooks.aiml import translate_transport_errors

    query = logs_queries(period=period, start=start, end=end, models=models, statuses=statuses)
    read = _Read(query, client_request_ids, max_pages, stop_early)
    settings = hook.settings
    url, wait = f"{settings.api_root}{LOGS_PATH}", settings.timeout if timeout is None else timeout
    pacer = pacer or pacer_for(settings.api_root)
    while (params := read.next_params()) is not None:
        for attempt in itertools.count(1):
            pacer.wait(hook.log)
            with translate_transport_errors(wait):
                response = hook.get_conn().get(url, params=params, timeout=wait, follow_redirects=False)
            if (delay := _retry_delay(hook, response, attempt, url)) is None:
                break
            hook._sleep(delay)
        read.take(_json(response))
    return read.result(hook.log)


async def abilled_usage(
    hook: AimlApiHook,
    client_request_ids: Iterable[str] | None = None,
    *,
    period: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    models: str | Sequence[str] = (),
    statuses: str | Sequence[str] = (),
    timeout: float | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    stop_early: bool = True,
    pacer: RequestPacer | None = None,
) -> BilledUsage:
    """:func:`billed_usage` without blocking the event loop."""
    from airflow_provider_aiml.hooks.aiml import translate_transport_errors

    query = logs_queries(period=period, start=start, end=end, models=models, statuses=statuses)
    read = _Read(query, client_request_ids, max_pages, stop_early)
    settings = await hook.asettings()
    url, wait = f"{settings.api_root}{LOGS_PATH}", settings.timeout if timeout is None else timeout
    pacer = pacer or pacer_for(settings.api_root)
    while (params := read.next_params()) is not None:
        client = await hook.get_async_conn()
        for attempt in itertools.count(1):
            await pacer.await_turn(hook.log)
            with translate_transport_errors(wait):
                response = await client.get(url, params=params, timeout=wait, follow_redirects=False)
            if (delay := _retry_delay(hook, response, attempt, url)) is None:
                break
            await hook._async_sleep(delay)
        read.take(_json(response))
    return read.result(hook.log)

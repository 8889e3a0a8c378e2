"""``GET /v2/logs``: one row per generation request a key made, what it cost and the ids that tie it to the call,
read back in pages; filtered by window, model and status; 429 above the endpoint's rate limit.

Rows are kept per API key (a key reads its own), newest first. A request that failed, or whose answer never
arrived whole, has ``status: failed`` and costs nothing, as the API documents.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_aiml.testing.pricing import credits_to_usd

PAGE_LIMIT_MAX = 100
DEFAULT_LIMIT = 20
MAX_WINDOW = timedelta(days=92)
RATE_WINDOW_S = 60.0
_PERIOD = re.compile(r"^([1-9][0-9]{0,4})([hd])$")
_DIGITS = re.compile(r"[0-9]{1,9}")

Problem = tuple[int, str]


@dataclass(frozen=True)
class UsageRow:
    """One request as ``GET /v2/logs`` shows it."""

    created: datetime
    status: str
    model: str
    credits: int
    input_tokens: int
    output_tokens: int
    request_id: str
    inference_id: str
    client_request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "status": self.status,
            "origin": "api",
            "model": self.model,
            "cost": {"usd": credits_to_usd(self.credits), "credits": self.credits},
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "total": self.input_tokens + self.output_tokens,
            },
            "request_id": self.request_id,
            "inference_id": self.inference_id,
            "client_request_id": self.client_request_id,
        }


class UsageLog:
    """The rows of every key, and the times of recent ``GET /v2/logs`` reads (for the rate limit, counted over
    all keys: the API does not say whether its limit is per key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, list[UsageRow]] = {}
        self._reads: deque[float] = deque()

    def add(self, key: str, row: UsageRow) -> None:
        with self._lock:
            self._rows.setdefault(key, []).append(row)

    def rows(self, key: str) -> list[UsageRow]:
        """A key's rows, oldest first."""
        with self._lock:
            return list(self._rows.get(key, ()))

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._reads.clear()

    def admit_read(self, limit: int, now: float | None = None) -> bool:
        """Count one read; ``False`` when ``limit`` reads were already made in the last 60 s."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            while self._reads and self._reads[0] <= moment - RATE_WINDOW_S:
                self._reads.popleft()
            if len(self._reads) >= limit:
                return False
            self._reads.append(moment)
            return True

    def page(self, key: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any] | Problem:
        """The page a query asks for, or ``(400, message)`` for a bad query."""
        try:
            start, end = _window(query)
            limit, offset = _paging(query)
        except _BadQuery as problem:
            return 400, str(problem)
        models = {m.lower() for m in query.get("model", ())}
        statuses = set(query.get("status", ()))
        if statuses - {"succeeded", "failed"}:
            return 400, f"status must be 'succeeded' or 'failed', got {sorted(statuses)}"
        kept = [
            row
            for row in reversed(self.rows(key))
            if start <= row.created <= end
            and (not models or row.model.lower() in models)
            and (not statuses or row.status in statuses)
        ]
        chosen = kept[offset : offset + limit]
        return {
            "data": [row.to_dict() for row in chosen],
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": len(kept),
                "has_more": offset + len(chosen) < len(kept),
            },
        }


class _BadQuery(ValueError):
    """A query parameter the endpoint refuses (answered with 400)."""


def _window(query: Mapping[str, Sequence[str]]) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    period, start, end = (_first(query, name) for name in ("period", "start", "end"))
    if period is not None:
        if start is not None or end is not None:
            raise _BadQuery("Give either period or start and end, not both")
        match = _PERIOD.match(period)
        if match is None:
            raise _BadQuery(f"period must be a count of hours or days such as 24h or 7d, got {period!r}")
        span = timedelta(**{"hours" if match.group(2) == "h" else "days": int(match.group(1))})
        if span > MAX_WINDOW:
            raise _BadQuery("The window may span 92 days at most")
        return now - span, now
    if start is None or end is None:
        raise _BadQuery("Give the window: period, or start and end")
    try:
        began, ended = (_instant(value) for value in (start, end))
    except (ValueError, OverflowError):
        raise _BadQuery(f"start and end must be ISO-8601 dates and times, got {start!r} and {end!r}") from None
    if ended < began or ended - began > MAX_WINDOW:
        raise _BadQuery("end must follow start, within 92 days")
    return began, ended


def _paging(query: Mapping[str, Sequence[str]]) -> tuple[int, int]:
    raw_limit, raw_offset = _first(query, "limit") or str(DEFAULT_LIMIT), _first(query, "offset") or "0"
    if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= PAGE_LIMIT_MAX:
        raise _BadQuery(f"limit must be a whole number from 1 to {PAGE_LIMIT_MAX}, got {raw_limit!r}")
    if not _DIGITS.fullmatch(raw_offset):
        raise _BadQuery(f"offset must be a whole number >= 0, got {raw_offset!r}")
    return int(raw_limit), int(raw_offset)


def _first(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

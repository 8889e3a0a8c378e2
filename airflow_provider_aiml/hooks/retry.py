"""The one place that decides whether a failed call is tried again, and after how long.

Transient failures are retried: 429, 500, 502, 503, 504, connection errors, timeouts and a stream that ends
without a finish reason. Everything else (400, 401, 403, 404, 422, an unreadable answer) fails at once: retrying
cannot fix it, and a 403 "out of credits" must not be hammered. Waits grow exponentially with jitter (a random
wait between half and all of the step) and follow the server's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlNotFoundError,
    AimlPermissionError,
    AimlServerError,
    AimlStatusError,
    AimlStreamIncompleteError,
    AimlTransportError,
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait in between.

    :param max_retries: retries after the first try (0 disables retrying).
    :param base_delay: wait before the first retry; doubles with every further one.
    :param max_delay: cap of the exponential wait.
    :param max_retry_after: cap of a server-sent ``Retry-After``, so a task never sleeps for hours.
    """

    max_retries: int = 2
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def is_retryable(self, error: BaseException) -> bool:
        """Whether a failure is transient."""
        if isinstance(error, AimlStatusError):
            return error.status_code in RETRYABLE_STATUSES
        return isinstance(error, AimlTransportError | AimlStreamIncompleteError)

    def delay_before_retry(self, error: AimlApiError, attempt: int) -> float | None:
        """Seconds to wait after failed try number ``attempt``, or ``None`` when the error must be raised."""
        if attempt > self.max_retries or not self.is_retryable(error):
            return None
        server_wait = parse_retry_after(error.retry_after)
        if server_wait is not None:
            return min(server_wait, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None


_OUT_OF_MONEY = ("credit", "balance", "top up", "spend limit")


def fallback_reason(error: AimlApiError) -> str | None:
    """Why a failed call may go to the next of its ``fallback_models``, or ``None`` when it must not.

    Another model can help when this one is gone (404 "Model is deprecated"), when the key's scopes do not
    allow it (a 403 that names a scope; out of credits or a spend limit is not: every model would be refused),
    or when it kept failing (5xx, timeouts, broken connections or streams, once their retries are spent). A
    400, 401 or 429 is never passed on: the request, the key or the rate is at fault, not the model.
    """
    message = error.message.lower()
    if isinstance(error, AimlNotFoundError):
        return "the model is deprecated" if "deprecat" in message else None
    if isinstance(error, AimlPermissionError):
        if "scope" in message and not any(word in message for word in _OUT_OF_MONEY):
            return "the key's scopes do not allow the model"
        return None
    if isinstance(error, AimlServerError):
        return f"HTTP {error.status_code} after its retries"
    if isinstance(error, AimlTransportError | AimlStreamIncompleteError):
        return f"{type(error).__name__} after its retries"
    return None

"""Retry decisions: which failures are transient, exponential backoff with jitter, and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_aiml.exceptions import (
    AimlApiError,
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlConfigurationError,
    AimlNotFoundError,
    AimlOutputParseError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlResponseError,
    AimlServerError,
    AimlStatusError,
    AimlStreamIncompleteError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks import retry as retry_module
from airflow_provider_aiml.hooks.parsing import parse_error
from airflow_provider_aiml.hooks.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FixedDatetime(datetime):
    """``datetime`` whose ``now`` is frozen at :data:`NOW`."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return NOW if tz is None else NOW.astimezone(tz)


class RecordingRng:
    """Stands in for ``random.Random``: returns the upper bound and records the bounds asked for."""

    def __init__(self, pick: str = "high") -> None:
        self.pick = pick
        self.calls: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.calls.append((low, high))
        return high if self.pick == "high" else low


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(retry_module, "datetime", FixedDatetime)


def status(code: int, retry_after: str | None = None) -> AimlStatusError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return parse_error(code, headers, b'{"message": "x"}', "cid")


# --- what is retried -----------------------------------------------------------------------------------------


def test_retryable_statuses_are_the_documented_ones():
    assert frozenset({429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (501, False),
    ],
)
def test_status_errors(code, expected):
    assert RetryPolicy().is_retryable(status(code)) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AimlTransportError("connection reset"), True),
        (AimlTimeoutError("read timeout"), True),
        (AimlStreamIncompleteError("cut"), True),
        (AimlResponseError("not JSON"), False),
        (AimlOutputParseError("bad JSON"), False),
        (AimlParameterError("bad seed"), False),
        (AimlConfigurationError("no key"), False),
        (AimlApiError("generic"), False),
        (AimlPermissionError("out of credits", status_code=403), False),
        (AimlAuthenticationError("bad key", status_code=401), False),
        (AimlNotFoundError("deprecated", status_code=404), False),
        (AimlBadRequestError("Body validation error!", status_code=400), False),
        (AimlRateLimitError("slow", status_code=429), True),
        (AimlServerError("down", status_code=503), True),
        (ValueError("x"), False),
        (RuntimeError("x"), False),
    ],
)
def test_other_errors(error, expected):
    assert RetryPolicy().is_retryable(error) is expected


# --- how long to wait ----------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    rng = RecordingRng()
    policy = RetryPolicy(max_retries=10, base_delay=1.0, max_delay=30.0, rng=rng)

    waits = [policy.delay_before_retry(status(503), attempt) for attempt in range(1, 8)]

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # Full-ish jitter: each wait is drawn between half the ceiling and the ceiling.
    assert rng.calls == [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (15.0, 30.0), (15.0, 30.0)]


def test_backoff_lower_bound():
    policy = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=10.0, rng=RecordingRng("low"))

    assert [policy.delay_before_retry(AimlTransportError("x"), n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]


def test_jitter_stays_in_range_with_a_real_rng():
    policy = RetryPolicy(max_retries=5, base_delay=2.0, max_delay=6.0, rng=random.Random(1234))

    waits = [policy.delay_before_retry(AimlTimeoutError("t"), attempt) for attempt in (1, 2, 3, 4) for _ in range(50)]

    first, second, third, fourth = (waits[i * 50 : (i + 1) * 50] for i in range(4))
    assert all(1.0 <= w <= 2.0 for w in first)
    assert all(2.0 <= w <= 4.0 for w in second)
    assert all(3.0 <= w <= 6.0 for w in third + fourth)
    assert len(set(first)) > 1  # jittered, not constant


def test_no_wait_once_retries_are_used_up():
    policy = RetryPolicy(max_retries=2, rng=RecordingRng())

    assert policy.delay_before_retry(status(429), 1) == 1.0
    assert policy.delay_before_retry(status(429), 2) == 2.0
    assert policy.delay_before_retry(status(429), 3) is None


def test_zero_retries_never_waits():
    assert RetryPolicy(max_retries=0).delay_before_retry(status(503), 1) is None


def test_defaults():
    policy = RetryPolicy()

    assert (policy.max_retries, policy.base_delay, policy.max_delay, policy.max_retry_after) == (2, 1.0, 30.0, 120.0)


@pytest.mark.parametrize("error", [status(400), status(401), status(403, "5"), AimlResponseError("x")])
def test_non_retryable_error_gets_no_wait_even_with_retry_after(error):
    assert RetryPolicy(max_retries=5).delay_before_retry(error, 1) is None


def test_retry_after_seconds_wins_over_backoff():
    rng = RecordingRng()
    policy = RetryPolicy(max_retries=3, rng=rng)

    assert policy.delay_before_retry(status(429, "7"), 1) == 7.0
    assert policy.delay_before_retry(status(503, "0"), 2) == 0.0
    assert rng.calls == []


def test_retry_after_is_capped():
    policy = RetryPolicy(max_retries=3, max_retry_after=120.0)

    assert policy.delay_before_retry(status(429, "3600"), 1) == 120.0
    assert RetryPolicy(max_retries=3, max_retry_after=10.0).delay_before_retry(status(429, "11"), 1) == 10.0


def test_retry_after_larger_than_max_delay_is_still_honoured():
    policy = RetryPolicy(max_retries=3, max_delay=5.0, max_retry_after=120.0)

    assert policy.delay_before_retry(status(429, "60"), 1) == 60.0


def test_retry_after_http_date(frozen_now):
    when = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    policy = RetryPolicy(max_retries=3, rng=RecordingRng())

    assert policy.delay_before_retry(status(503, when), 1) == 45.0


def test_unparseable_retry_after_falls_back_to_backoff():
    rng = RecordingRng()
    policy = RetryPolicy(max_retries=3, rng=rng)

    assert policy.delay_before_retry(status(429, "soon"), 2) == 2.0
    assert rng.calls == [(1.0, 2.0)]


# --- parse_retry_after ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # long past
    ],
)
def test_parse_retry_after(value, expected, frozen_now):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future(frozen_now):
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT") == 120.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=1.0), usegmt=True)) == 1.0


def test_parse_retry_after_http_date_without_zone_is_utc(frozen_now):
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 -0000") == 30.0


def test_parse_retry_after_uses_the_real_clock():
    value = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)

    assert 95.0 <= parse_retry_after(value) <= 100.0

"""``billed_usage()`` / ``abilled_usage()`` over ``GET /v2/logs``: the queries sent page by page, the filtering
by client request id, the sums, the errors, the pacing under 200 requests a minute, and the key kept out.

Over a mocked HTTP layer (respx); no test sleeps (the hook's backoff sleeps are recorded by conftest, the
pacer gets a fake clock).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_aiml import exceptions as errors
from airflow_provider_aiml.hooks import logs
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.logs import (
    BilledCall,
    BilledUsage,
    RequestPacer,
    abilled_usage,
    billed_usage,
    logs_queries,
    pacer_for,
    parse_logs_page,
)
from tests.airflow_env import TEST_API_KEY

LOGS_URL = "https://api.test.invalid/v2/logs"
T0 = datetime(2026, 7, 28, 12, 0, tzinfo=UTC)


def row(n: int, client_request_id: str | None = None, *, status: str = "succeeded", credits: int = 2480) -> dict:
    """Row ``n`` of the window (newest first: a higher ``n`` is older)."""
    failed = status == "failed"
    return {
        "created": (T0 - timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
        "status": status,
        "origin": "api",
        "model": "openai/gpt-5",
        "cost": {"usd": 0 if failed else credits / 2_000_000, "credits": 0 if failed else credits},
        "tokens": {"input": 0 if failed else 10, "output": 0 if failed else 20, "total": 0 if failed else 30},
        "request_id": f"req-{n}",
        "inference_id": f"inf-{n}",
        "client_request_id": client_request_id if client_request_id is not None else f"other-{n}",
    }


def serve(rows: list[dict]):
    """A ``/v2/logs`` that pages through ``rows`` as the API does."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", 50))
        offset = int(request.url.params.get("offset", 0))
        data = rows[offset : offset + limit]
        pagination = {"limit": limit, "offset": offset, "total": len(rows), "has_more": offset + limit < len(rows)}
        return httpx.Response(200, json={"data": data, "pagination": pagination})

    return handler


def page(data: list[dict], *, has_more: bool = False) -> dict:
    return {"data": data, "pagination": {"limit": 100, "offset": 0, "total": len(data), "has_more": has_more}}


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture(autouse=True)
def _fresh_pacers(monkeypatch):
    """Each test starts with no requests booked in the process's pacers."""
    monkeypatch.setattr(logs, "_PACERS", {})


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def hook() -> AimlApiHook:
    return AimlApiHook()


def sent(route) -> list[list[tuple[str, str]]]:
    return [call.request.url.params.multi_items() for call in route.calls]


# --- paging and queries ---------------------------------------------------------------------------------------


def test_three_pages_are_read_with_the_filters_repeated_and_the_sums_exact(hook, api):
    rows = [row(n) for n in range(250)]
    route = api.get(LOGS_URL).mock(side_effect=serve(rows))

    usage = billed_usage(hook, period="7d", models=["openai/gpt-5", "gpt-4o"], statuses=["succeeded", "failed"])

    filters = [
        ("period", "7d"),
        ("model", "openai/gpt-5"),
        ("model", "gpt-4o"),
        ("status", "succeeded"),
        ("status", "failed"),
    ]
    assert route.call_count == 3
    assert sent(route) == [[*filters, ("limit", "100"), ("offset", str(offset))] for offset in (0, 100, 200)]
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert request.content == b""
    assert usage.count == 250
    assert usage.pages == 3
    assert usage.rows == 250
    assert usage.complete
    assert usage.credits == 250 * 2480
    assert usage.usd == 0.31  # 250 x $0.00124, without the float error of the sum
    assert usage.missing == []
    assert usage.calls[0] == BilledCall(
        created=T0,
        status="succeeded",
        origin="api",
        model="openai/gpt-5",
        usd=0.00124,
        credits=2480,
        input_tokens=10,
        output_tokens=20,
        total_tokens=30,
        request_id="req-0",
        inference_id="inf-0",
        client_request_id="other-0",
    )


def test_a_start_and_end_window_is_sent_in_utc_and_a_naive_time_is_utc(hook, api):
    route = api.get(LOGS_URL).mock(side_effect=serve([row(0)]))
    start = datetime(2026, 7, 1, 0, 0)  # naive: UTC
    end = datetime(2026, 7, 28, 2, 30, tzinfo=timezone(timedelta(hours=2)))

    billed_usage(hook, start=start, end=end, timeout=7.0)

    assert sent(route) == [
        [("start", "2026-07-01T00:00:00Z"), ("end", "2026-07-28T00:30:00Z"), ("limit", "100"), ("offset", "0")]
    ]
    assert route.calls.last.request.extensions["timeout"]["read"] == 7.0
    billed_usage(hook, start="2026-07-01T00:00:00Z", end="2026-10-01T00:00:00+00:00")  # exactly 92 days
    assert sent(route)[-1][:2] == [("start", "2026-07-01T00:00:00Z"), ("end", "2026-10-01T00:00:00Z")]


def test_a_single_model_or_status_may_be_given_as_a_string(hook, api):
    route = api.get(LOGS_URL).mock(side_effect=serve([]))
    usage = billed_usage(hook, period="24h", models="openai/gpt-5", statuses="failed")
    assert sent(route) == [
        [("period", "24h"), ("model", "openai/gpt-5"), ("status", "failed"), ("limit", "100"), ("offset", "0")]
    ]
    assert usage.count == 0
    assert usage.usd == 0
    assert billed_usage(hook, "run-1:a", period="24h").missing == ["run-1:a"]  # a string is one id


# --- filtering by client request id ---------------------------------------------------------------------------


def test_only_the_requested_ids_are_kept_and_reading_stops_once_all_are_seen(hook, api):
    rows = [row(n) for n in range(350)]
    rows[5] = row(5, "run-1:a")
    rows[6] = row(6, "run-1:a", status="failed")  # an earlier try of the same call, same page
    rows[140] = row(140, "run-1:b", credits=1000)
    route = api.get(LOGS_URL).mock(side_effect=serve(rows))

    usage = billed_usage(hook, ["run-1:a", "run-1:b"], period="24h")

    assert route.call_count == 2  # the ids were all seen on page 2: pages 3 and 4 are not read
    assert [call.client_request_id for call in usage.calls] == ["run-1:a", "run-1:a", "run-1:b"]
    assert usage.missing == []
    assert usage.failed == 1
    assert usage.credits == 2480 + 1000
    assert usage.usd == 0.00174
    assert usage.rows == 200


def test_without_stopping_early_the_whole_window_is_read(hook, api):
    rows = [row(n) for n in range(250)]
    rows[0] = row(0, "run-1:a")
    rows[230] = row(230, "run-1:a")  # a try lost to a timeout, long before its retry
    route = api.get(LOGS_URL).mock(side_effect=serve(rows))

    usage = billed_usage(hook, ["run-1:a"], period="24h", stop_early=False)

    assert route.call_count == 3
    assert usage.count == 2
    assert usage.credits == 2 * 2480


def test_ids_without_a_row_are_missing_in_the_order_asked(hook, api):
    rows = [row(n) for n in range(150)]
    rows[120] = row(120, "run-1:b")
    route = api.get(LOGS_URL).mock(side_effect=serve(rows))
    wanted = ["run-1:z", "run-1:b", *(f"run-1:m{i}" for i in range(6)), "run-1:z"]

    usage = billed_usage(hook, wanted, period="24h")

    assert route.call_count == 2  # every page, as some ids never show up
    assert [call.client_request_id for call in usage.calls] == ["run-1:b"]
    assert usage.missing == ["run-1:z", *(f"run-1:m{i}" for i in range(6))]
    assert usage.summary() == {
        "billed_usd": 0.00124,
        "billed_credits": 2480,
        "billed_calls": 1,
        "failed_calls": 0,
        "missing_client_request_ids": 7,
        "missing_sample": ["run-1:z", "run-1:m0", "run-1:m1", "run-1:m2", "run-1:m3"],
        "complete": True,
    }
    json.dumps(usage.summary())  # fit for XCom


def test_an_empty_list_of_ids_sends_no_request(hook, api):
    route = api.get(LOGS_URL).mock(side_effect=serve([row(0)]))
    usage = billed_usage(hook, [], period="24h")
    assert route.call_count == 0
    assert usage == BilledUsage(calls=[])
    assert usage.summary()["billed_usd"] == 0


def test_failed_rows_count_as_calls_at_zero_cost(hook, api):
    rows = [row(0), row(1, status="failed"), row(2, status="failed"), row(3, credits=1)]
    api.get(LOGS_URL).mock(side_effect=serve(rows))

    usage = billed_usage(hook, period="1h")

    assert usage.count == 4
    assert usage.failed == 2
    assert usage.credits == 2481
    assert usage.usd == 0.0012405
    assert all(call.usd == 0 and call.total_tokens == 0 for call in usage.calls if call.status == "failed")


def test_a_row_pushed_onto_the_next_page_by_a_new_one_is_counted_once(hook, api):
    first = page([row(n) for n in range(100)], has_more=True)
    second = page([row(99), row(100)])  # a new call landed meanwhile: row 99 moved down by one
    route = api.get(LOGS_URL).mock(side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)])

    usage = billed_usage(hook, period="1h")

    assert route.call_count == 2
    assert usage.count == 101
    assert usage.rows == 102
    assert len({call.request_id for call in usage.calls}) == 101


def test_max_pages_stops_the_read_and_says_it_is_incomplete(hook, api, capsys):
    route = api.get(LOGS_URL).mock(side_effect=serve([row(n) for n in range(250)]))
    usage = billed_usage(hook, period="1h", max_pages=2)
    assert route.call_count == 2
    assert not usage.complete
    assert usage.summary()["complete"] is False
    assert "max_pages=2" in capsys.readouterr().out


# --- argument errors, before any request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({}, "'period'"),
        ({"period": "24h", "start": T0, "end": T0}, "'period'"),
        ({"period": "24h", "end": T0}, "'period'"),
        ({"start": T0}, "'end'"),
        ({"end": T0}, "'start'"),
        ({"period": "24"}, "'period'"),
        ({"period": "0h"}, "'period'"),
        ({"period": "1w"}, "'period'"),
        ({"period": "24h&x=1"}, "'period'"),
        ({"period": 24}, "'period'"),
        ({"period": "93d"}, "'period'"),
        ({"period": "2209h"}, "'period'"),
        ({"start": T0, "end": T0 - timedelta(seconds=1)}, "'end'"),
        ({"start": T0, "end": T0 + timedelta(days=92, seconds=1)}, "'start' to 'end'"),
        ({"start": "yesterday", "end": T0}, "'start'"),
        ({"start": T0, "end": 1_785_000_000}, "'end'"),
        ({"period": "24h", "models": ["openai/gpt-5,gpt-4o"]}, "'models'"),
        ({"period": "24h", "models": [""]}, "'models'"),
        ({"period": "24h", "models": [f"m{i}" for i in range(51)]}, "'models'"),
        ({"period": "24h", "statuses": ["succeeded,failed"]}, "'statuses'"),
        ({"period": "24h", "statuses": ["done"]}, "'statuses'"),
        ({"period": "24h", "max_pages": 0}, "'max_pages'"),
        ({"period": "24h", "client_request_ids": 42}, "'client_request_ids'"),
        ({"period": "24h", "client_request_ids": ["ok", 3]}, "'client_request_ids'"),
    ],
)
def test_a_bad_argument_fails_naming_it_before_any_request(hook, api, kwargs, named):
    route = api.get(LOGS_URL).mock(side_effect=serve([row(0)]))
    with pytest.raises(errors.AimlParameterError, match=named):
        billed_usage(hook, **kwargs)
    assert route.call_count == 0


@pytest.mark.parametrize("limit", [0, 101, True, 50.0])
def test_the_page_size_of_the_query_builder_is_checked(limit):
    with pytest.raises(errors.AimlParameterError, match="'limit'"):
        logs_queries(period="24h", limit=limit)


def test_the_query_builder_gives_each_page_its_offset():
    query = logs_queries(period="7d", statuses=["failed"], limit=20)
    assert query.page(40) == (("period", "7d"), ("status", "failed"), ("limit", "20"), ("offset", "40"))


# --- answers that are not a page, and error statuses ----------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"data": [row(0)]}),
        httpx.Response(200, json=page([{**row(0), "cost": None}])),
        httpx.Response(200, json=page([{k: v for k, v in row(0).items() if k != "inference_id"}])),
        httpx.Response(200, json=page([{**row(0), "created": "last tuesday"}])),
        httpx.Response(200, json=page([], has_more=True)),
        httpx.Response(200, json=[]),
        httpx.Response(200, text="<html>login</html>"),
    ],
)
def test_a_malformed_page_is_a_response_error(hook, api, response):
    route = api.get(LOGS_URL).mock(return_value=response)
    with pytest.raises(errors.AimlResponseError, match="GET /v2/logs"):
        billed_usage(hook, period="24h")
    assert route.call_count == 1


def test_the_page_parser_says_where_the_page_is_wrong():
    with pytest.raises(errors.AimlResponseError, match=r"at data\.0\.cost\.usd"):
        parse_logs_page(page([{**row(0), "cost": {"credits": 5}}]))
    parsed = parse_logs_page(page([row(0), row(1)], has_more=True))
    assert parsed.has_more
    assert [call.request_id for call in parsed.calls] == ["req-0", "req-1"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401, json={"message": "It requires a valid API key."}), errors.AimlAuthenticationError),
        (httpx.Response(403, json={"message": "Management key required."}), errors.AimlPermissionError),
        (httpx.Response(400, json={"message": "window over 92 days"}), errors.AimlBadRequestError),
        (httpx.Response(503, text="Service unavailable"), errors.AimlServerError),
        (httpx.ConnectError("Connection refused"), errors.AimlTransportError),
        (httpx.ReadTimeout("timed out"), errors.AimlTimeoutError),
    ],
)
def test_failures_are_the_providers_errors_and_are_not_retried(hook, api, response, error):
    route = api.get(LOGS_URL)
    if isinstance(response, Exception):
        route.mock(side_effect=response)
    else:
        route.mock(return_value=response)
    with pytest.raises(error) as raised:
        billed_usage(hook, period="24h")
    assert route.call_count == 1
    if isinstance(response, httpx.Response) and response.status_code == 401:
        assert "requires a valid API key" in raised.value.message


def test_a_redirect_is_not_followed(hook, api):
    api.get(LOGS_URL).mock(return_value=httpx.Response(302, headers={"location": "http://plain.invalid/x"}))
    elsewhere = api.get("http://plain.invalid/x").mock(return_value=httpx.Response(200, json=page([row(0)])))
    with pytest.raises(errors.AimlResponseError, match=r"redirects \(HTTP 302\) to http://plain.invalid/x"):
        billed_usage(hook, period="24h")
    assert elsewhere.call_count == 0  # the key was not sent there


# --- the rate limit -------------------------------------------------------------------------------------------


def test_a_429_is_retried_with_growing_waits_then_the_page_is_read(hook, api, retry_waits, capsys):
    limited = httpx.Response(429, json={"message": "Too many requests"})
    route = api.get(LOGS_URL).mock(
        side_effect=[
            limited,
            limited,
            httpx.Response(200, json=page([row(0)], has_more=True)),
            limited,
            httpx.Response(429, headers={"retry-after": "1"}),
            httpx.Response(200, json=page([row(1)])),
        ]
    )

    usage = billed_usage(hook, period="24h")

    assert route.call_count == 6  # page 1: three tries, page 2: three tries
    assert retry_waits == [2.0, 4.0, 2.0, 1.0]  # exponential; the server's Retry-After when it sends one
    assert sent(route)[3][-1] == ("offset", "1")
    assert usage.count == 2
    assert "rate limited (HTTP 429); try 2 of 4" in capsys.readouterr().out


def test_a_429_that_persists_raises_the_rate_limit_error(hook, api, retry_waits):
    route = api.get(LOGS_URL).mock(
        return_value=httpx.Response(429, headers={"retry-after": "600"}, json={"message": "Too many requests"})
    )
    with pytest.raises(errors.AimlRateLimitError, match="still rate limited after 4 tries") as raised:
        billed_usage(hook, period="24h")
    assert route.call_count == 4
    assert retry_waits == [30.0, 30.0, 30.0]  # a long Retry-After is capped
    assert raised.value.status_code == 429
    assert raised.value.retry_after == "600"


def test_the_pacer_keeps_any_window_under_its_limit():
    clock = FakeClock()
    pacer = RequestPacer(limit=3, window=10.0, clock=clock, sleep=clock.sleep)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 4.0
    assert pacer.reserve() == 6.0  # the first of the three leaves the window 10 s after it was sent
    assert pacer.reserve() == 6.0  # booked at the same instant as the one before
    clock.now += 20.0
    assert pacer.wait() == 0.0
    assert clock.slept == []


def test_pacing_waits_between_pages_and_says_so(hook, api, capsys):
    clock = FakeClock()
    pacer = RequestPacer(limit=2, window=60.0, clock=clock, sleep=clock.sleep)
    route = api.get(LOGS_URL).mock(side_effect=serve([row(n) for n in range(250)]))

    usage = billed_usage(hook, period="24h", pacer=pacer)

    assert route.call_count == 3
    assert clock.slept == [60.0]  # the third request waits until the first leaves the window
    assert usage.count == 250
    assert "Pacing GET /v2/logs: waiting 60.0s to stay under 2 requests per 60s" in capsys.readouterr().out


def test_the_default_pacer_is_shared_per_api_root_and_allows_200_a_minute(hook, api):
    route = api.get(LOGS_URL).mock(side_effect=serve([row(0)]))
    billed_usage(hook, period="24h")
    billed_usage(AimlApiHook(), period="24h")
    shared = pacer_for("https://api.test.invalid")
    assert route.call_count == 2
    assert len(shared._sent) == 2  # both calls booked in the same window
    assert (shared.limit, shared.window) == (200, 60.0)
    assert pacer_for("https://api.test.invalid") is shared
    assert pacer_for("https://other.invalid") is not shared


# --- async ----------------------------------------------------------------------------------------------------


async def test_the_async_read_pages_filters_and_retries_like_the_sync_one(hook, api, retry_waits):
    rows = [row(n) for n in range(250)]
    rows[150] = row(150, "run-2:a")
    handler = serve(rows)
    answers = iter([httpx.Response(429, json={"message": "slow down"})])
    route = api.get(LOGS_URL).mock(side_effect=lambda request: next(answers, None) or handler(request))
    clock = FakeClock()
    pacer = RequestPacer(limit=2, window=60.0, clock=clock, async_sleep=clock.async_sleep)

    usage = await abilled_usage(hook, ["run-2:a", "run-2:gone"], start=T0 - timedelta(days=1), end=T0, pacer=pacer)

    assert route.call_count == 4  # a 429, then the three pages
    assert [p[-1] for p in sent(route)] == [("offset", "0"), ("offset", "0"), ("offset", "100"), ("offset", "200")]
    assert retry_waits == [2.0]
    assert clock.slept == [60.0]  # requests 3 and 4 go 60 s after requests 1 and 2
    assert [call.client_request_id for call in usage.calls] == ["run-2:a"]
    assert usage.missing == ["run-2:gone"]
    assert usage.usd == 0.00124
    await hook.aclose()


async def test_the_async_read_checks_its_arguments_and_maps_errors(hook, api):
    route = api.get(LOGS_URL).mock(return_value=httpx.Response(401, json={"message": "It requires a valid API key."}))
    with pytest.raises(errors.AimlParameterError, match="'period'"):
        await abilled_usage(hook, period="forever")
    assert route.call_count == 0
    with pytest.raises(errors.AimlAuthenticationError):
        await abilled_usage(hook, period="24h")
    assert route.call_count == 1
    await hook.aclose()


# --- the key --------------------------------------------------------------------------------------------------


def test_the_key_is_in_no_log_line_or_error(hook, api, capsys, caplog, retry_waits):
    caplog.set_level(logging.DEBUG)
    echo = {"message": f"key {TEST_API_KEY} is blocked"}
    api.get(LOGS_URL).mock(
        side_effect=[
            httpx.Response(403, json=echo),
            *[httpx.Response(429, json=echo)] * 4,
            httpx.Response(200, json=page([row(0, TEST_API_KEY)])),
        ]
    )
    raised: list[Exception] = []
    for _ in range(2):
        with pytest.raises(errors.AimlStatusError) as error:
            billed_usage(hook, period="24h")
        raised.append(error.value)
    usage = billed_usage(hook, ["wanted"], period="24h")

    assert isinstance(raised[0], errors.AimlPermissionError)
    assert isinstance(raised[1], errors.AimlRateLimitError)
    assert "key *** is blocked" in raised[0].message
    for error_raised in raised:
        assert TEST_API_KEY not in str(error_raised)
        assert TEST_API_KEY not in repr(error_raised)
    assert usage.missing == ["wanted"]
    logged: Any = capsys.readouterr()
    assert "GET /v2/logs" in logged.out
    assert TEST_API_KEY not in logged.out + logged.err
    assert TEST_API_KEY not in caplog.text
    assert all(TEST_API_KEY not in record.getMessage() for record in caplog.records)

"""``AimlApiHook.billing()`` and ``key_usage()``: the request sent, the parsing, the errors, and the key kept out.

Over a mocked HTTP layer (respx), then once against the emulator over real HTTP.
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from airflow_provider_aiml import exceptions as errors
from airflow_provider_aiml.hooks.account import AccountBalance, KeyUsage
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.testing import AimlApiEmulator
from tests.airflow_env import TEST_API_KEY

BILLING_URL = "https://api.test.invalid/v2/billing"
USAGE_URL = "https://api.test.invalid/v2/usage"
USAGE = {
    "api_key_prefix": "sk-tes...",
    "start": "2026-12-06T01:00:00.000Z",
    "end": "2026-12-07T01:00:00.000Z",
    "spend": 1.2345,
    "currency": "USD",
    "requests": 17,
}


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def hook() -> AimlApiHook:
    return AimlApiHook()


def test_billing_reads_the_balance_with_the_key_and_nothing_else(hook, api):
    route = api.get(BILLING_URL).mock(
        return_value=httpx.Response(200, json={"current_balance": 42.5, "currency": "USD"})
    )

    balance = hook.billing()

    assert balance == AccountBalance(current_balance=42.5, currency="USD")
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert request.content == b""
    assert route.call_count == 1


def test_key_usage_asks_for_the_period_and_parses_every_field(hook, api):
    route = api.get(USAGE_URL).mock(return_value=httpx.Response(200, json=USAGE))

    usage = hook.key_usage()

    assert usage == KeyUsage(**USAGE)
    assert dict(route.calls.last.request.url.params) == {"period": "24h"}
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    hook.key_usage("7d")
    assert dict(route.calls.last.request.url.params) == {"period": "7d"}


@pytest.mark.parametrize("period", ["24 hours", "0h", "1y", "", "24h&x=1"])
def test_a_malformed_period_fails_before_any_request(hook, api, period):
    route = api.get(USAGE_URL).mock(return_value=httpx.Response(200, json=USAGE))
    with pytest.raises(errors.AimlParameterError, match="'period'"):
        hook.key_usage(period)
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401, json={"message": "It requires a valid API key."}), errors.AimlAuthenticationError),
        (httpx.Response(403, json={"message": "You've run out of credits."}), errors.AimlPermissionError),
        (httpx.Response(503, text="Service unavailable"), errors.AimlServerError),
        (httpx.Response(301, headers={"location": "https://elsewhere.invalid/v2/billing"}), errors.AimlResponseError),
        (httpx.Response(200, json={"balance": 3}), errors.AimlResponseError),
        (httpx.Response(200, text="<html>login</html>"), errors.AimlResponseError),
        (httpx.ConnectError("Connection refused"), errors.AimlTransportError),
        (httpx.ReadTimeout("timed out"), errors.AimlTimeoutError),
    ],
)
@pytest.mark.parametrize(("url", "call"), [(BILLING_URL, "billing"), (USAGE_URL, "key_usage")])
def test_failures_are_the_providers_errors(hook, api, response, error, url, call):
    route = api.get(url)
    if isinstance(response, Exception):
        route.mock(side_effect=response)
    else:
        route.mock(return_value=response)
    with pytest.raises(error) as raised:
        getattr(hook, call)()
    assert isinstance(raised.value, errors.AimlApiError)
    assert route.call_count == 1  # an account read is not retried
    if isinstance(response, httpx.Response) and response.status_code == 401:
        assert "requires a valid API key" in raised.value.message


def test_a_redirect_is_not_followed_and_says_where_it_goes(hook, api):
    api.get(BILLING_URL).mock(return_value=httpx.Response(302, headers={"location": "http://plain.invalid/x"}))
    elsewhere = api.get("http://plain.invalid/x").mock(return_value=httpx.Response(200, json={"current_balance": 1}))
    with pytest.raises(errors.AimlResponseError, match=r"redirects \(HTTP 302\) to http://plain.invalid/x"):
        hook.billing()
    assert elsewhere.call_count == 0  # the key was not sent there


def test_the_key_never_comes_back_in_a_result_or_an_error(hook, api):
    # A proxy that echoes the key in its error body, and one that reports it as the key's "prefix".
    api.get(BILLING_URL).mock(return_value=httpx.Response(403, json={"message": f"key {TEST_API_KEY} is blocked"}))
    api.get(USAGE_URL).mock(return_value=httpx.Response(200, json={**USAGE, "api_key_prefix": TEST_API_KEY}))
    with pytest.raises(errors.AimlPermissionError) as raised:
        hook.billing()
    assert TEST_API_KEY not in str(raised.value)
    assert TEST_API_KEY not in repr(raised.value)
    assert "key *** is blocked" in raised.value.message
    usage = hook.key_usage()
    assert usage.api_key_prefix is None
    assert usage.spend == 1.2345
    assert TEST_API_KEY not in repr(usage)
    assert TEST_API_KEY not in json.dumps(usage.model_dump())


def test_billing_and_usage_against_the_emulator(monkeypatch):
    key = "sk-emulated-account-key"
    with AimlApiEmulator(api_keys={key}, balance_usd=7.25) as emulator:
        conn = {"conn_type": "aimlapi", "password": key, "host": emulator.base_url}
        monkeypatch.setenv("AIRFLOW_CONN_AIML_ACCOUNT", json.dumps(conn))
        hook = AimlApiHook(aiml_conn_id="aiml_account")
        hook.chat_completion([{"role": "user", "content": "Hello there."}])

        assert hook.billing() == AccountBalance(current_balance=7.25, currency="USD")
        usage = hook.key_usage()
        assert usage.spend == pytest.approx(emulator.credits_used / 2_000_000)
        assert usage.requests == 1
        assert usage.api_key_prefix == key[:6] + "..."
        assert usage.start is not None
        assert usage.end is not None
        assert usage.start < usage.end
        monkeypatch.setenv("AIRFLOW_CONN_AIML_ACCOUNT", json.dumps({**conn, "password": "sk-not-this-one"}))
        with pytest.raises(errors.AimlAuthenticationError):
            AimlApiHook(aiml_conn_id="aiml_account").billing()
        hook.close()

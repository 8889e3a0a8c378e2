"""The hook's defences: bad keys and URLs, secrets in error paths, finished streams, the connection test."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlConfigurationError,
    AimlNotFoundError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlServerError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import StreamDelta
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
BILLING_URL = "https://api.test.invalid/v2/billing"
MESSAGES = [{"role": "user", "content": "Hi"}]


def hook_for(monkeypatch: pytest.MonkeyPatch, **conn: object) -> AimlApiHook:
    monkeypatch.setenv("AIRFLOW_CONN_AIML_SAFETY", json.dumps({"conn_type": "aimlapi", **conn}))
    return AimlApiHook(aiml_conn_id="aiml_safety")


@pytest.mark.parametrize("key", ["sk-abc\nxyz-secret", "sk-abc xyz-secret", "sk-abc\u200bxyz-secret"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(monkeypatch, key):
    hook = hook_for(monkeypatch, password=key, host=TEST_BASE_URL)
    with respx.mock(assert_all_called=False) as api:
        route = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json={}))
        with pytest.raises(AimlConfigurationError, match="cannot be sent in an HTTP header") as raised:
            hook.chat_completion(MESSAGES)
    assert route.call_count == 0
    assert "xyz-secret" not in str(raised.value)
    ok, message = hook_for(monkeypatch, password=key, host=TEST_BASE_URL).test_connection()
    assert not ok
    assert "xyz-secret" not in message


@pytest.mark.parametrize(
    "host",
    [
        "http://bob:pw-secret-1@api.test.invalid/v1",
        "https://:pw-secret-1@api.test.invalid/v1",
        "bob:pw-secret-1@127.0.0.1:8080/v1",  # URI form that lost its scheme
        "http://pw-secret-1@api.test.invalid/v1",
    ],
)
def test_credentials_in_the_base_url_are_refused_and_never_echoed(monkeypatch, host, capsys):
    hook = hook_for(monkeypatch, password="sk-good-key", host=host)
    with respx.mock(assert_all_called=False) as api:
        route = api.route().mock(return_value=httpx.Response(200, json={}))
        with pytest.raises(AimlConfigurationError, match=r"'aiml_safety'.*user name or password") as raised:
            hook.chat_completion(MESSAGES)
        ok, message = hook_for(monkeypatch, password="sk-good-key", host=host).test_connection()
    assert route.call_count == 0  # no Basic-auth request went out
    assert not ok
    assert "user name or password" in message
    logged = capsys.readouterr()
    for text in (str(raised.value), repr(raised.value), message, logged.out, logged.err):
        assert "pw-secret-1" not in text


@pytest.mark.parametrize("host", ["ftp://api.test.invalid/v1", "https://api.test.invalid:abc/v1", "https://:443/v1"])
def test_a_base_url_that_is_not_http_is_a_configuration_error(monkeypatch, host):
    hook = hook_for(monkeypatch, password="sk-good-key", host=host)
    with pytest.raises(AimlConfigurationError, match="is not an http\\(s\\) URL with a host"):
        hook.settings  # noqa: B018
    ok, message = hook.test_connection()
    assert not ok
    assert "Base URL" in message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost:8080/v1", "http://localhost:8080/v1"),
        ("127.0.0.1/v1", "http://127.0.0.1/v1"),
        ("localhost.example.com/v1", "https://localhost.example.com/v1"),
        ("127.foo.com/v1", "https://127.foo.com/v1"),
    ],
)
def test_only_real_loopback_hosts_get_plain_http(monkeypatch, host, expected):
    assert hook_for(monkeypatch, password="sk-good-key", host=host).settings.base_url == expected


def test_an_error_about_the_request_never_quotes_it(monkeypatch):
    hook = AimlApiHook()
    leaky = httpx.LocalProtocolError(f"Illegal header value b'Bearer {TEST_API_KEY}'")
    with respx.mock:
        respx.post(CHAT_URL).mock(side_effect=leaky)
        with pytest.raises(AimlTransportError) as raised:
            hook.chat_completion(MESSAGES)
    assert TEST_API_KEY not in str(raised.value)
    assert "LocalProtocolError" in str(raised.value)


def test_an_error_body_that_quotes_the_key_is_scrubbed():
    hook = AimlApiHook()
    with respx.mock:
        respx.post(CHAT_URL).mock(
            return_value=httpx.Response(401, json={"message": f"Key {TEST_API_KEY} is not valid"})
        )
        with pytest.raises(AimlAuthenticationError) as raised:
            hook.chat_completion(MESSAGES)
    assert str(raised.value).startswith("AI/ML API error 401 Unauthorized: Key *** is not valid")
    assert TEST_API_KEY not in repr(raised.value)


def test_the_key_is_registered_with_the_masker_by_the_hook(monkeypatch):
    import airflow.sdk.log
    from airflow.sdk import Connection

    masked: list[object] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    conn = Connection(conn_id="from_a_backend", conn_type="aimlapi", password=TEST_API_KEY)  # not fetched by Airflow
    AimlApiHook(aiml_conn_id="from_a_backend")._load_settings(conn)
    assert masked == [TEST_API_KEY]


@pytest.mark.parametrize(
    "error_type",
    [
        AimlParameterError,
        AimlConfigurationError,
        AimlBadRequestError,
        AimlAuthenticationError,
        AimlPermissionError,
        AimlNotFoundError,
    ],
)
def test_errors_that_a_retry_cannot_fix_skip_airflow_task_retries(error_type):
    assert issubclass(error_type, AirflowFailException)


@pytest.mark.parametrize("error_type", [AimlRateLimitError, AimlServerError, AimlTransportError])
def test_transient_errors_keep_airflow_task_retries(error_type):
    assert not issubclass(error_type, AirflowFailException)


def test_a_client_request_id_is_cleaned_to_the_api_alphabet():
    with respx.mock:
        route = respx.post(CHAT_URL).mock(
            return_value=httpx.Response(200, json={"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]})
        )
        result = AimlApiHook().chat_completion(MESSAGES, client_request_id="my run #1 (nightly)")
    assert route.calls.last.request.headers["x-client-request-id"] == "my_run_1_nightly"
    assert result.client_request_id == "my_run_1_nightly"


class _BreaksAfter(httpx.SyncByteStream):
    """A response body that sends some events and then loses the connection."""

    def __init__(self, events: list[dict]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        for event in self._events:
            yield f"data: {json.dumps(event)}\n\n".encode()
        raise httpx.ReadError("connection reset by peer")


def _chunk(content: str = "", finish: str | None = None) -> dict:
    return {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


def test_a_stream_that_breaks_after_its_finish_reason_is_kept_not_paid_again():
    body = _BreaksAfter([_chunk("Full answer."), _chunk("", "stop")])
    with respx.mock:
        route = respx.post(CHAT_URL).mock(
            return_value=httpx.Response(200, stream=body, headers={"content-type": "text/event-stream"})
        )
        result = list(AimlApiHook().stream_chat_completion(MESSAGES))[-1]
    assert route.call_count == 1
    assert result.content == "Full answer."
    assert result.finish_reason == "stop"


def test_a_stream_that_breaks_before_its_finish_reason_is_retried(retry_waits):
    with respx.mock:
        route = respx.post(CHAT_URL).mock(
            side_effect=[
                httpx.Response(
                    200, stream=_BreaksAfter([_chunk("Half")]), headers={"content-type": "text/event-stream"}
                ),
                httpx.Response(
                    200,
                    content=b"".join(
                        f"data: {json.dumps(e)}\n\n".encode() for e in [_chunk("Whole"), _chunk("", "stop")]
                    ),
                    headers={"content-type": "text/event-stream"},
                ),
            ]
        )
        result = list(AimlApiHook().stream_chat_completion(MESSAGES))[-1]
    assert route.call_count == 2
    assert result.content == "Whole"


def test_think_tags_in_a_stream_are_shown_as_reasoning_while_they_arrive():
    pieces = ["<thi", "nk>Let me ", "think.</thi", "nk>\n\nThe ", "answer."]
    events = [_chunk(piece) for piece in pieces] + [_chunk("", "stop")]
    with respx.mock:
        respx.post(CHAT_URL).mock(
            return_value=httpx.Response(
                200,
                content=b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events),
                headers={"content-type": "text/event-stream"},
            )
        )
        items = list(AimlApiHook().stream_chat_completion(MESSAGES))
    deltas = [item for item in items if isinstance(item, StreamDelta)]
    assert "".join(d.reasoning for d in deltas) == "Let me think."
    assert "".join(d.content for d in deltas) == "The answer."
    assert not any("<" in d.content or "<" in d.reasoning for d in deltas)
    assert (items[-1].reasoning, items[-1].content) == ("Let me think.", "The answer.")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(301, headers={"location": "https://api.aimlapi.com/v2/billing"}), "redirects (HTTP 301)"),
        (httpx.Response(200, text="<html><title>Welcome</title></html>"), "not like the AI/ML API"),
        (httpx.Response(200, json={"unexpected": True}), "not like the AI/ML API"),
    ],
)
def test_the_connection_test_only_says_yes_to_a_real_balance(response, expected):
    with respx.mock:
        respx.get(BILLING_URL).mock(return_value=response)
        ok, message = AimlApiHook().test_connection()
    assert not ok
    assert expected in message


def test_list_models_network_errors_are_provider_errors():
    with respx.mock:
        respx.get(f"{TEST_BASE_URL}/models").mock(side_effect=httpx.ConnectError("Connection refused"))
        with pytest.raises(AimlTransportError, match="Connection refused"):
            AimlApiHook().list_models()

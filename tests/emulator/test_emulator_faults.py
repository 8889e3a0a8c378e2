"""Injected faults: status codes and body styles, delays, resets, broken streams, random rates."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
Sse = Callable[[Iterable[str]], list[Any]]


def test_status_fault_with_retry_after_and_legacy_body(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.status(429, retry_after=1))
    response = client.post("/chat/completions", json=body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/json")
    assert "x-inference-id" in response.headers
    error = response.json()
    assert error["message"] == "Too Many Requests"
    assert error["statusCode"] == "429"
    assert error["path"] == "/v1/chat/completions"
    assert set(error) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert client.post("/chat/completions", json=body()).status_code == 200


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (400, "Body validation error!"),
        (403, "You've run out of credits. Please top up your balance"),
        (500, "Internal server error"),
        (502, "Bad Gateway"),
        (503, "Service unavailable"),
        (504, "Generation timeout"),
    ],
)
def test_status_fault_default_messages(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, code: int, message: str
) -> None:
    emulator.add_fault(Fault.status(code))
    response = client.post("/chat/completions", json=body())
    assert response.status_code == code
    assert response.json()["message"].startswith(message)
    assert "retry-after" not in response.headers


def test_status_fault_body_styles(emulator: AimlApiEmulator, client: httpx.Client, body: Body) -> None:
    emulator.add_fault(Fault.status(503, body="problem", message="Service down for maintenance"))
    emulator.add_fault(Fault.status(502, body="html", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))
    emulator.add_fault(Fault.status(500, body="empty", retry_after=0.5))

    problem = client.post("/chat/completions", json=body())
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["status"] == 503
    assert problem.json()["message"] == "Service down for maintenance"
    assert problem.json()["error"]["name"] == "ServiceUnavailableException"

    html = client.post("/chat/completions", json=body())
    assert html.status_code == 502
    assert html.headers["content-type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in html.text
    assert html.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"

    empty = client.post("/chat/completions", json=body())
    assert empty.status_code == 500
    assert empty.content == b""
    assert empty.headers["content-length"] == "0"
    assert empty.headers["retry-after"] == "0.5"


def test_status_fault_applies_to_streaming_requests(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.status(429))
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        assert response.status_code == 429
        assert json.loads(response.read())["statusCode"] == "429"


def test_queued_faults_apply_in_order_for_their_count(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.status(429), times=2)
    emulator.add_fault(Fault.status(503))
    assert emulator.pending_faults == 3
    client.get("/models")  # not a chat request: consumes nothing
    statuses = [client.post("/chat/completions", json=body()).status_code for _ in range(5)]
    assert statuses == [429, 429, 503, 200, 200]
    assert emulator.pending_faults == 0
    assert [r.status for r in emulator.chat_requests] == statuses


def test_delay_trips_a_client_read_timeout(
    emulator: AimlApiEmulator, client_for: ClientFor, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.delay(0.6))
    with pytest.raises(httpx.ReadTimeout):
        client_for(emulator, timeout=0.15).post("/chat/completions", json=body())

    emulator.add_fault(Fault.delay(0.1))
    started = time.perf_counter()
    assert client.post("/chat/completions", json=body()).status_code == 200
    assert time.perf_counter() - started >= 0.1


def test_reset_drops_the_connection_without_a_response(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.reset())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
        client.post("/chat/completions", json=body())
    assert emulator.chat_requests[-1].status is None
    assert client.post("/chat/completions", json=body()).status_code == 200


def test_cut_stream_raises_remote_protocol_error_while_iterating(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.cut_stream(3))
    received: list[str] = []
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(line for line in response.iter_lines() if line)
    assert len(received) == 3
    assert client.post("/chat/completions", json=body()).status_code == 200


def test_cut_non_streaming_body_raises_remote_protocol_error(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.cut_stream(0))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json=body())


def test_end_stream_early_ends_cleanly_without_finish_reason(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse
) -> None:
    emulator.add_fault(Fault.end_stream_early(4))
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        events = sse(response.iter_lines())
    assert len(events) == 4
    assert all(event["choices"][0]["finish_reason"] is None for event in events)
    assert all(event["usage"] is None for event in events)
    assert client.post("/chat/completions", json=body()).status_code == 200


def test_malformed_json_is_a_truncated_200(emulator: AimlApiEmulator, client: httpx.Client, body: Body) -> None:
    emulator.add_fault(Fault.malformed_json())
    response = client.post("/chat/completions", json=body())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert response.text.startswith('{"id":"chatcmpl-')


def test_malformed_json_in_a_stream_is_an_unparseable_event(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body
) -> None:
    emulator.add_fault(Fault.malformed_json())
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == 2
    json.loads(lines[0][len("data: ") :])
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[1][len("data: ") :])


def test_slow_stream_delays_each_chunk(emulator: AimlApiEmulator, client: httpx.Client, body: Body, sse: Sse) -> None:
    emulator.add_fault(Fault.slow_stream(0.02))
    started = time.perf_counter()
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        events = sse(response.iter_lines())
    assert time.perf_counter() - started >= 0.02 * (len(events) - 1) * 0.9
    assert events[-1]["choices"] == []

    emulator.add_fault(Fault.slow_stream(0.02))
    started = time.perf_counter()
    assert client.post("/chat/completions", json=body()).json()["object"] == "chat.completion"
    assert time.perf_counter() - started >= 0.02 * 7 * 0.9


def test_fault_rates_are_reproducible_with_a_seed(client_for: ClientFor, body: Body) -> None:
    rates = {Fault.status(500): 0.3, Fault.status(429, retry_after=1): 0.2}

    def run(seed: int) -> list[int]:
        with AimlApiEmulator(fault_rates=rates, seed=seed) as emu:
            http = client_for(emu, key="k")
            return [http.post("/chat/completions", json=body()).status_code for _ in range(30)]

    first, second = run(7), run(7)
    assert first == second
    assert {200, 429, 500} == set(first)


def test_queued_faults_take_precedence_over_fault_rates(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(fault_rates={Fault.status(503): 1.0}) as emu:
        http = client_for(emu, key="k")
        emu.add_fault(Fault.status(418))
        assert [http.post("/chat/completions", json=body()).status_code for _ in range(2)] == [418, 503]
        emu.set_fault_rates(None)
        assert http.post("/chat/completions", json=body()).status_code == 200


def test_invalid_faults_and_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="400-599"):
        Fault.status(200)
    with pytest.raises(ValueError, match="seconds"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="add up"):
        AimlApiEmulator(fault_rates={Fault.status(500): 0.7, Fault.reset(): 0.5})
    with pytest.raises(ValueError, match="times"):
        AimlApiEmulator().add_fault(Fault.reset(), times=0)
    assert Fault.from_dict(Fault.cut_stream(2).to_dict()) == Fault.cut_stream(2)
    assert Fault.from_dict({"kind": "slow_stream", "chunk_delay": 0.5}) == Fault.slow_stream(0.5)

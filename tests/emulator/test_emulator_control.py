"""HTTP control endpoints, reset, concurrency accounting and a prompt stop()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]


@pytest.fixture
def control(emulator: AimlApiEmulator, client_for: ClientFor) -> Callable[..., httpx.Response]:
    """POST/GET a control endpoint without any auth header."""
    http = client_for(emulator, key=None)

    def call(method: str, name: str, payload: dict[str, Any] | None = None) -> httpx.Response:
        return http.request(method, f"{emulator.url}/_emulator/{name}", json=payload)

    return call


def test_fault_over_http_applies_for_times(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    response = control("POST", "faults", {"kind": "status", "code": 429, "retry_after": 1, "times": 2})
    assert response.status_code == 200
    assert response.json()["pending_faults"] == 2
    first, second, third = (client.post("/chat/completions", json=body()) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("fault", "stream", "error"),
    [
        ({"kind": "reset"}, False, httpx.TransportError),
        ({"kind": "cut_stream", "after_chunks": 2}, True, httpx.RemoteProtocolError),
        ({"kind": "delay", "seconds": 0.5}, False, httpx.ReadTimeout),
    ],
)
def test_transport_faults_over_http(
    emulator: AimlApiEmulator,
    client_for: ClientFor,
    body: Body,
    control: Callable[..., httpx.Response],
    fault: dict[str, Any],
    stream: bool,
    error: type[Exception],
) -> None:
    assert control("POST", "faults", fault).status_code == 200
    http = client_for(emulator, timeout=0.2)
    with pytest.raises(error), http.stream("POST", "/chat/completions", json=body(stream=stream)) as response:
        response.read()


def test_stream_shaping_faults_over_http(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    control("POST", "faults", {"kind": "end_stream_early", "after_chunks": 2})
    control("POST", "faults", {"kind": "malformed_json"})
    control("POST", "faults", {"kind": "slow_stream", "chunk_delay": 0.001})
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        assert len([line for line in response.iter_lines() if line]) == 2
    assert client.post("/chat/completions", json=body()).text.count("{") >= 1
    assert client.post("/chat/completions", json=body()).json()["object"] == "chat.completion"
    assert emulator.pending_faults == 0


def test_bad_control_requests_are_400(control: Callable[..., httpx.Response]) -> None:
    assert control("POST", "faults", {"kind": "explode"}).status_code == 400
    assert control("POST", "faults", {"kind": "status", "code": 200}).status_code == 400
    assert control("POST", "faults", {"kind": "status", "code": 500, "times": 0}).status_code == 400
    assert control("POST", "reply", {"colour": "red"}).status_code == 400
    assert control("POST", "config", {"latency": -1}).status_code == 400
    assert control("GET", "nope").status_code == 404


def test_requests_log_over_http_hides_the_key(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "cid-1"})
    log = control("GET", "requests").json()["requests"]
    assert len(log) == 1  # control calls are not logged
    (entry,) = log
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1/chat/completions"
    assert entry["status"] == 200
    assert entry["client_request_id"] == "cid-1"
    assert entry["json"] == body()
    assert entry["headers"]["authorization"] == "[redacted]"
    assert "sk-good" not in str(log)
    assert emulator.chat_requests[0].client_request_id == "cid-1"


def test_the_compact_request_log_has_ids_times_and_statuses_only(
    client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "cid-1"})
    client.post("/chat/completions", json={"model": 1}, headers={"X-Client-Request-Id": "cid-2"})
    log = control("GET", "request_log").json()["requests"]
    assert [(e["client_request_id"], e["status"], e["route"]) for e in log] == [
        ("cid-1", 200, "/v1/chat/completions"),
        ("cid-2", 400, "/v1/chat/completions"),
    ]
    assert 0 < log[0]["received_at"] <= log[1]["received_at"]  # the emulator's monotonic clock
    assert set(log[0]) == {"method", "route", "client_request_id", "received_at", "status"}


def test_reply_config_stats_and_reset_over_http(
    emulator: AimlApiEmulator, client: httpx.Client, body: Body, control: Callable[..., httpx.Response]
) -> None:
    control("POST", "reply", {"content": "fixed answer", "reasoning": "fixed thinking"})
    message = client.post("/chat/completions", json=body()).json()["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("fixed answer", "fixed thinking")

    assert control("POST", "config", {"meta_usage": "credits_only", "latency": 0.05}).json()["latency"] == 0.05
    started = time.perf_counter()
    data = client.post("/chat/completions", json=body()).json()
    assert time.perf_counter() - started >= 0.05
    assert data["meta"]["usage"].keys() == {"credits_used"}

    stats = control("GET", "stats").json()
    assert stats["chat_requests"] == 2
    assert stats["billed_requests"] == 2
    assert stats["max_in_flight"] == 1

    assert control("POST", "reset").status_code == 200
    assert emulator.requests == []
    assert control("GET", "stats").json()["chat_requests"] == 0
    assert (
        client.post("/chat/completions", json=body()).json()["choices"][0]["message"]["content"].startswith("Summary:")
    )
    control("POST", "reply", {})
    assert emulator.settings.latency == 0.05  # reset keeps the configuration


def test_reset_clears_faults_log_and_counters(emulator: AimlApiEmulator, client: httpx.Client, body: Body) -> None:
    emulator.add_fault(Fault.status(500), times=3)
    emulator.set_reply(content="x")
    client.post("/chat/completions", json=body())
    emulator.reset()
    assert emulator.requests == []
    assert emulator.pending_faults == 0
    assert emulator.max_in_flight == 0
    assert emulator.credits_used == 0
    response = client.post("/chat/completions", json=body())
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] != "x"


def test_max_in_flight_counts_concurrent_chat_requests(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(latency=0.3) as emu:
        http = client_for(emu, key="k")
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: http.post("/chat/completions", json=body()).status_code, range(8)))
        assert statuses == [200] * 8
        assert emu.max_in_flight == 8
        assert emu.in_flight == 0


def test_stop_is_prompt_with_sleeping_requests(client_for: ClientFor, body: Body) -> None:
    emu = AimlApiEmulator(latency=5.0).start()
    port = emu.port
    emu.add_fault(Fault.delay(5.0))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client_for(emu, key="k", timeout=10).post("/chat/completions", json=body())
        except httpx.HTTPError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while emu.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.in_flight == 2

    started = time.perf_counter()
    emu.stop()
    assert time.perf_counter() - started < 1.0
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert len(errors) == 2
    emu.stop()  # a second stop is harmless
    assert not emu.running
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", trust_env=False)


def test_base_url_and_restart(client_for: ClientFor) -> None:
    emu = AimlApiEmulator()
    with emu:
        assert emu.base_url == f"http://127.0.0.1:{emu.port}/v1"
        assert repr(emu) == f"AimlApiEmulator({emu.base_url})"
        assert client_for(emu, key="k").get("/models").status_code == 200
    assert repr(emu) == "AimlApiEmulator(stopped)"
    with emu:
        assert client_for(emu, key="k").get("/models").status_code == 200

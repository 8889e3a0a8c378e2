"""The emulator answers as the API does where it refuses or where a family differs: unknown models (404), requests
over the context length (400), ``stream_options`` checked, Anthropic's ids, finish reasons and stream shape, and
cost in a stream only when asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
Sse = Callable[[Iterable[str]], list[Any]]
CLAUDE = "anthropic/claude-sonnet-4.5"


def _stream(client: httpx.Client, payload: dict[str, Any], sse: Sse) -> list[Any]:
    with client.stream("POST", "/chat/completions", json={**payload, "stream": True}) as response:
        assert response.status_code == 200
        return sse(response.iter_lines())


def test_an_unknown_model_gets_the_apis_404(client: httpx.Client, body: Body, emulator: AimlApiEmulator) -> None:
    response = client.post("/chat/completions", json=body(model="vendor/no-such-model"))

    assert response.status_code == 404
    assert (
        response.json()["message"]
        == "Model vendor/no-such-model not found. The available models are listed at GET /v1/models."
    )
    assert response.json()["statusCode"] in (404, "404")
    for known in ("alibaba/qwen3-vl-32b-thinking", "qwen3-vl-32b-thinking", "gpt-4o", CLAUDE):  # ids and aliases
        assert client.post("/chat/completions", json=body(model=known)).status_code == 200


def test_unknown_models_are_served_when_the_setting_says_so(client_for: ClientFor, body: Body) -> None:
    with AimlApiEmulator(serve_unknown_models=True) as emu:
        assert client_for(emu).post("/chat/completions", json=body(model="vendor/x")).status_code == 200


def test_a_request_over_the_context_length_gets_a_400(client: httpx.Client, body: Body) -> None:
    # gpt-4o: 128,000 tokens. The emulator counts a token per 4 characters.
    fits = client.post("/chat/completions", json=body(text="abcd" * 100_000, model="gpt-4o", max_tokens=27_000))
    over = client.post("/chat/completions", json=body(text="abcd" * 100_000, model="gpt-4o", max_tokens=28_001))

    assert fits.status_code == 200
    assert over.status_code == 400
    message = over.json()["message"]
    assert message.startswith("Body validation error! This model's maximum context length is 128000 tokens")
    assert "asks for up to 28001 completion tokens" in message


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        ("yes", 'Expected object, received string at "stream_options"'),
        ({}, 'Expected boolean, received undefined at "stream_options.include_usage"'),
        ({"include_usage": "true"}, 'Expected boolean, received string at "stream_options.include_usage"'),
        ({"include_usage": True, "chunk": 1}, 'at "stream_options.chunk"'),
    ],
)
def test_stream_options_are_checked(client: httpx.Client, body: Body, options: Any, detail: str) -> None:
    response = client.post("/chat/completions", json=body(stream=True, stream_options=options))

    assert response.status_code == 400
    assert detail in response.json()["message"]


def test_anthropic_answers_in_its_own_shape(client: httpx.Client, body: Body) -> None:
    answer = client.post("/chat/completions", json=body(model=CLAUDE)).json()
    qwen = client.post("/chat/completions", json=body()).json()

    assert answer["id"].startswith("msg_")
    assert answer["choices"][0]["finish_reason"] == "end_turn"
    assert set(answer["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert qwen["id"].startswith("chatcmpl-")
    assert qwen["choices"][0]["finish_reason"] == "stop"


def test_anthropic_streams_in_its_own_shape(client: httpx.Client, body: Body, sse: Sse) -> None:
    events = _stream(client, body(model=CLAUDE), sse)
    *content, finish, trailer = events

    assert events[0]["id"].startswith("msg_")
    assert all(event["id"] == "" for event in events[1:])
    for event in content:
        (choice,) = event["choices"]
        assert choice["delta"]["role"] == "assistant"
        assert "finish_reason" not in choice
        assert event["usage"] is None
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["delta"]["role"] == "assistant"
    assert set(finish["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert trailer["choices"] == [{"index": 0, "finish_reason": "stop"}]
    assert trailer["usage"] is None
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in content)
    assert text == client.post("/chat/completions", json=body(model=CLAUDE)).json()["choices"][0]["message"]["content"]


def test_stream_cost_comes_only_when_the_setting_asks(client_for: ClientFor, body: Body, sse: Sse) -> None:
    with AimlApiEmulator() as emu:
        final = _stream(client_for(emu), body(), sse)[-1]
        assert "meta" not in final
        assert final["usage"]["total_tokens"] > 0
    with AimlApiEmulator(stream_cost=True) as emu:
        final = _stream(client_for(emu), body(), sse)[-1]
        assert set(final["meta"]["usage"]) == {"credits_used", "usd_spent"}

"""Fixtures for the emulator tests (independent of any Airflow configuration)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from airflow_provider_aiml.testing.pytest_plugin import aiml_connection, aiml_emulator  # noqa: F401

API_KEY = "sk-good"
MODEL = "alibaba/qwen3-vl-32b-thinking"
_SSL_CONTEXT = ssl.create_default_context()  # built once: the clients only speak plain HTTP to 127.0.0.1


@pytest.fixture
def emulator() -> Iterator[AimlApiEmulator]:
    """An emulator that accepts only ``sk-good``."""
    with AimlApiEmulator(api_keys={API_KEY}) as emu:
        yield emu


def make_client(emu: AimlApiEmulator, *, timeout: float = 5.0, key: str | None = API_KEY) -> httpx.Client:
    """An httpx client for ``emu`` (no proxies from the environment)."""
    headers = {"Authorization": f"Bearer {key}".strip()} if key is not None else {}
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=timeout, trust_env=False, verify=_SSL_CONTEXT)


@pytest.fixture
def client(emulator: AimlApiEmulator) -> Iterator[httpx.Client]:
    """A client authenticated with the accepted key."""
    with make_client(emulator) as http:
        yield http


@pytest.fixture
def client_for() -> Iterator[Callable[..., httpx.Client]]:
    """Factory of clients for any emulator (closed after the test)."""
    clients: list[httpx.Client] = []

    def factory(emu: AimlApiEmulator, **kwargs: Any) -> httpx.Client:
        http = make_client(emu, **kwargs)
        clients.append(http)
        return http

    yield factory
    for http in clients:
        http.close()


@pytest.fixture
def body() -> Callable[..., dict[str, Any]]:
    """Factory of valid chat bodies: ``body(text="...", **extra_keys)``."""

    def factory(text: str = "Hi! What do you think about mankind?", **extra: Any) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}

    return factory


def parse_sse(lines: Iterable[str]) -> list[Any]:
    """Parse SSE lines into the list of ``data:`` payloads (JSON objects, or the raw ``[DONE]``)."""
    events: list[Any] = []
    for line in lines:
        if not line:
            continue
        assert line.startswith("data: "), line
        data = line[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.fixture
def sse() -> Callable[[Iterable[str]], list[Any]]:
    """The SSE line parser."""
    return parse_sse

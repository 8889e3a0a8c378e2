"""``AimlApiEmulator``: start, drive and inspect a local AI/ML API emulator."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from airflow_provider_aiml.testing.catalog_store import CatalogStore
from airflow_provider_aiml.testing.faults import Fault
from airflow_provider_aiml.testing.records import RecordedRequest
from airflow_provider_aiml.testing.replies import ReplyOverride
from airflow_provider_aiml.testing.scripts import ScriptedCall, ScriptedReply, ToolArguments, ToolLoop
from airflow_provider_aiml.testing.server import EmulatorHTTPServer
from airflow_provider_aiml.testing.settings import (
    EmulatorSettings,
    MetaUsage,
    ReasoningStyle,
    normalize_api_keys,
)
from airflow_provider_aiml.testing.state import EmulatorState, normalize_fault_rates
from airflow_provider_aiml.testing.usage_log import UsageRow

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT = 2.0


class AimlApiEmulator:
    """A real HTTP server on 127.0.0.1 that speaks the AI/ML API chat-completions wire format.

    Use it as a context manager (``start()`` on enter, ``stop()`` on exit)::

        with AimlApiEmulator(api_keys={"sk-good"}) as emu:
            httpx.post(f"{emu.base_url}/chat/completions", ...)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        send_done: bool = False,
        reasoning_style: ReasoningStyle = "reasoning_content",
        meta_usage: MetaUsage | None = "credits_and_usd",
        cost_headers: bool = True,
        balance_usd: float = 42.5,
        stream_cost: bool = False,
        serve_unknown_models: bool = False,
        fault_rates: Mapping[Fault, float] | None = None,
        seed: int = 0,
    ) -> None:
        self._host = host
        self._requested_port = port
        self.settings = EmulatorSettings(
            api_keys=normalize_api_keys(api_keys),
            latency=latency,
            chunk_delay=chunk_delay,
            send_done=send_done,
            reasoning_style=reasoning_style,
            meta_usage=meta_usage,
            cost_headers=cost_headers,
            balance_usd=balance_usd,
            stream_cost=stream_cost,
            serve_unknown_models=serve_unknown_models,
        )
        self._state = EmulatorState(normalize_fault_rates(fault_rates), seed)
        self._lifecycle = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> AimlApiEmulator:
        """Bind the socket and serve in a daemon thread; returns ``self``. No-op when running."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._stop_event = threading.Event()
            server = EmulatorHTTPServer(
                (self._host, self._requested_port), self.settings, self._state, self._stop_event
            )
            thread = threading.Thread(
                target=server.serve_until_stopped,
                name=f"aimlapi-emulator-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            logger.debug("AI/ML API emulator listening on %s", self.base_url)
            return self

    def stop(self) -> None:
        """Stop promptly: wake sleeping handlers, stop accepting, close all sockets. Idempotent."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._stop_event.set()
            server.wake()
            thread.join(_JOIN_TIMEOUT)
            server.server_close()
            server.close_connections()
            self._server = self._thread = None
            logger.debug("AI/ML API emulator stopped")

    def __enter__(self) -> AimlApiEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    @property
    def host(self) -> str:
        """The bound host."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when ``port=0`` was asked)."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return server.server_port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------------------ driving

    def add_fault(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` chat or embeddings requests (after earlier queued faults)."""
        self._state.add_fault(fault, times)

    def set_fault_rates(self, fault_rates: Mapping[Fault, float] | None, *, seed: int | None = None) -> None:
        """Replace the random faults applied when no queued fault is pending (``None`` disables them)."""
        self._state.set_fault_rates(normalize_fault_rates(fault_rates), seed)

    def set_reply(
        self,
        content: str | None = None,
        reasoning: str | None = None,
        *,
        finish_reason: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Override the generated reply; all ``None`` restores generated replies.

        ``tool_calls`` items look like ``{"name": "f", "arguments": {...} | "json", "id"?: "call_1"}``.
        """
        self._state.set_reply_override(ReplyOverride.build(content, reasoning, finish_reason, tool_calls))

    def script(self, *replies: ScriptedReply) -> None:
        """Queue scripted replies, used one per answered chat request (after those already queued).

        Each is used up by an answer delivered whole; when the queue is empty, replies come from the tool loop,
        ``set_reply`` or generation again. See :class:`ScriptedReply`.
        """
        self._state.add_script(replies)

    def loop_tool_calls(self, name: str, arguments: ToolArguments | None = None, *, raw: bool = False) -> None:
        """Never-ending tool loop: once the script is used up, every request that offers the tool ``name`` (and
        whose ``tool_choice`` allows it) gets a call to it, until :meth:`stop_loop`, :meth:`clear_script` or
        :meth:`reset`. ``arguments`` as for :meth:`ScriptedReply.tool_calls`."""
        call = ScriptedCall.build(name, arguments, raw=raw)
        self._state.set_loop(ToolLoop(name=call.name, arguments=call.arguments))

    def stop_loop(self) -> None:
        """Stop the tool loop (the queued script stays)."""
        self._state.set_loop(None)

    def clear_script(self) -> None:
        """Drop the queued scripted replies and stop the tool loop."""
        self._state.clear_script()

    @property
    def scripted_replies_left(self) -> int:
        """Queued scripted replies not used yet."""
        return self._state.scripted_replies_left

    def reset(self) -> None:
        """Clear queued faults, the request log, counters and usage rows, the reply override, the script and the
        tool loop; restore the built-in catalog."""
        self._state.reset()

    @property
    def catalog(self) -> CatalogStore:
        """The models served: ``emu.catalog.put([...])``, ``emu.catalog.remove([...], deprecate=True)``."""
        return self._state.catalog

    def usage_rows(self, api_key: str) -> list[UsageRow]:
        """The rows ``GET /v2/logs`` shows a key, oldest first."""
        return self._state.usage_log.rows(api_key)

    # ------------------------------------------------------------------------------ inspecting

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received (control endpoints excluded)."""
        return self._state.requests()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Snapshot of the ``POST /v1/chat/completions`` requests."""
        return [request for request in self._state.requests() if request.is_chat]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """Snapshot of the ``POST /v1/embeddings`` requests."""
        return [request for request in self._state.requests() if request.is_embeddings]

    @property
    def max_in_flight(self) -> int:
        """Highest number of chat requests handled concurrently."""
        return self._state.max_in_flight

    @property
    def in_flight(self) -> int:
        """Chat requests being handled right now."""
        return self._state.in_flight

    @property
    def connections_opened(self) -> int:
        """Client connections accepted (a keep-alive client reuses one)."""
        return self._state.connections_opened

    @property
    def pending_faults(self) -> int:
        """Queued fault applications not used yet."""
        return self._state.pending_faults

    @property
    def credits_used(self) -> int:
        """Credits billed for delivered completions."""
        return self._state.credits_used

    @property
    def usd_spent(self) -> float:
        """USD billed for delivered completions."""
        return self._state.usd_spent

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"AimlApiEmulator({where})"

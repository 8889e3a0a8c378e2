"""The emulator CLI, plus a wall-clock timestamp of every SSE chunk it writes (streaming latency benchmark).

``python -m benchmarks._stamped_emulator --port 0`` serves the normal emulator in this process. Each handler's
output stream is wrapped: right before an SSE event goes to the socket, ``time.time()`` (CLOCK_REALTIME, the
same clock in every process of the machine) is stored with the event. ``GET /_bench/stamps`` returns the stored
``[[time, event text], ...]`` and forgets them. Only this benchmark process is patched; the emulator's code is
untouched.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from airflow_provider_aiml.testing import cli
from airflow_provider_aiml.testing.server import EmulatorRequestHandler

STAMPS_ROUTE = "/_bench/stamps"

_stamps: list[tuple[float, bytes]] = []
_lock = threading.Lock()


class _StampingWriter:
    """Wraps a handler's ``wfile``: stamps SSE events (``<size>\\r\\ndata: ...``) before writing them."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes) -> Any:
        if b"\r\ndata: " in data[:16]:
            stamp = time.time()
            with _lock:
                _stamps.append((stamp, data))
        return self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _event_text(framed: bytes) -> str:
    """The ``data:`` payload of one chunk-encoded SSE event."""
    return framed.split(b"\r\n", 1)[1].removeprefix(b"data: ").rstrip(b"\r\n").decode()


def install() -> None:
    """Patch the handler class of this process: stamp SSE writes, serve ``GET /_bench/stamps``."""
    original_setup = EmulatorRequestHandler.setup
    original_route = EmulatorRequestHandler._route

    def setup(self: EmulatorRequestHandler) -> None:
        original_setup(self)
        self.wfile = _StampingWriter(self.wfile)  # type: ignore[assignment]

    def route(self: EmulatorRequestHandler, route: str, body: bytes) -> None:
        if self.command == "GET" and route == STAMPS_ROUTE:
            with _lock:
                taken = list(_stamps)
                _stamps.clear()
            self._send_json(200, {"stamps": [[stamp, _event_text(data)] for stamp, data in taken]})
            return
        original_route(self, route, body)

    EmulatorRequestHandler.setup = setup  # type: ignore[method-assign]
    EmulatorRequestHandler._route = route  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    raise SystemExit(cli.main())

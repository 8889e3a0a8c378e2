"""Writes a streamed answer to the task log while it arrives: by line, or every few seconds, never per token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aiml.models import StreamDelta

FLUSH_INTERVAL_S = 2.0
MAX_BUFFER_CHARS = 400


class StreamLogWriter:
    """Buffers the reasoning and the answer separately and logs them in readable pieces."""

    def __init__(
        self,
        log: Any,
        *,
        interval: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._section = ""
        self._buffer = ""
        self._last_flush = clock()
        self._attempt = 1

    def write(self, delta: StreamDelta) -> None:
        """Take one delta of the stream."""
        if delta.attempt != self._attempt:
            self.flush()
            self._attempt = delta.attempt
            self._info("Stream restarted from the beginning (try %d)", delta.attempt)
        if delta.reasoning:
            self._add("reasoning", delta.reasoning)
        if delta.content:
            self._add("answer", delta.content)
        if self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Log whatever is buffered."""
        if self._buffer.strip():
            for line in self._buffer.rstrip("\n").split("\n"):
                self._info("[%s] %s", self._section, line)
        self._buffer = ""
        self._last_flush = self._clock()

    def _add(self, section: str, text: str) -> None:
        if section != self._section:
            self.flush()
            self._section = section
        self._buffer += text
        if "\n" in self._buffer:
            complete, _, rest = self._buffer.rpartition("\n")
            self._buffer = complete
            self.flush()
            self._buffer = rest
        elif len(self._buffer) >= MAX_BUFFER_CHARS:
            self.flush()

    def _info(self, message: str, *args: object) -> None:
        self._log.info(message, *args)

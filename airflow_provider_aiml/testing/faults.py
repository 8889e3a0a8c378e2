"""Fault descriptions the emulator can inject into chat-completion requests."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

FaultKind = Literal[
    "status",
    "delay",
    "reset",
    "cut_stream",
    "end_stream_early",
    "malformed_json",
    "slow_stream",
]
ErrorBodyStyle = Literal["legacy", "problem", "html", "empty"]

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ERROR_BODY_STYLES: tuple[str, ...] = get_args(ErrorBodyStyle)


@dataclass(frozen=True)
class Fault:
    """One injectable failure. Build it with the class methods, e.g. ``Fault.status(429)``.

    ``seconds`` is the delay of ``delay`` and the chunk delay of ``slow_stream``;
    ``after_chunks`` is the number of SSE events sent before ``cut_stream``/``end_stream_early``.
    """

    kind: FaultKind
    code: int | None = None
    retry_after: float | str | None = None
    body: ErrorBodyStyle = "legacy"
    message: str | None = None
    seconds: float = 0.0
    after_chunks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.body not in ERROR_BODY_STYLES:
            raise ValueError(f"unknown error body style {self.body!r}; expected one of {ERROR_BODY_STYLES}")
        if self.kind == "status" and (
            isinstance(self.code, bool) or not isinstance(self.code, int) or not 400 <= self.code <= 599
        ):
            raise ValueError(f"a status fault needs an HTTP error code 400-599, got {self.code!r}")
        if not math.isfinite(self.seconds) or self.seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0, got {self.seconds!r}")
        if self.after_chunks < 0:
            raise ValueError(f"after_chunks must be >= 0, got {self.after_chunks!r}")

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | str | None = None,
        body: ErrorBodyStyle = "legacy",
        message: str | None = None,
    ) -> Fault:
        """Answer with HTTP ``code`` (an error body in the given style, optional ``Retry-After``)."""
        return cls(kind="status", code=code, retry_after=retry_after, body=body, message=message)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (to trip a client read timeout)."""
        return cls(kind="delay", seconds=float(seconds))

    @classmethod
    def reset(cls) -> Fault:
        """Drop the connection (TCP reset) without sending any response."""
        return cls(kind="reset")

    @classmethod
    def cut_stream(cls, after_chunks: int) -> Fault:
        """Send ``after_chunks`` SSE events, then close the socket mid-body (partial body if not streaming)."""
        return cls(kind="cut_stream", after_chunks=int(after_chunks))

    @classmethod
    def end_stream_early(cls, after_chunks: int) -> Fault:
        """Send ``after_chunks`` SSE events, then end the body cleanly without a finish chunk."""
        return cls(kind="end_stream_early", after_chunks=int(after_chunks))

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer 200 with a truncated JSON body (a truncated SSE event when streaming)."""
        return cls(kind="malformed_json")

    @classmethod
    def slow_stream(cls, chunk_delay: float) -> Fault:
        """Stream with ``chunk_delay`` seconds between events (non-streaming: trickle the body)."""
        return cls(kind="slow_stream", seconds=float(chunk_delay))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description accepted by :meth:`from_dict`."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "status":
            data.update(code=self.code, retry_after=self.retry_after, body=self.body, message=self.message)
        elif self.kind in ("delay", "slow_stream"):
            data["seconds"] = self.seconds
        elif self.kind in ("cut_stream", "end_stream_early"):
            data["after_chunks"] = self.after_chunks
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from a JSON description, e.g. ``{"kind": "status", "code": 429}``.

        ``chunk_delay`` is accepted as an alias of ``seconds`` for ``slow_stream``.
        Raises ``ValueError`` on an invalid description.
        """
        allowed = {"kind", "code", "retry_after", "body", "message", "seconds", "after_chunks", "chunk_delay"}
        unknown = sorted(set(data) - allowed - {"times"})
        if unknown:
            raise ValueError(f"unknown fault keys: {unknown}")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault 'kind' must be one of {FAULT_KINDS}, got {kind!r}")
        seconds = data.get("seconds", data.get("chunk_delay", 0.0))
        retry_after = data.get("retry_after")
        code = data.get("code")
        after_chunks = data.get("after_chunks", 0)
        if not _is_number(seconds):
            raise ValueError("'seconds' must be a number")
        if retry_after is not None and not (_is_number(retry_after) or isinstance(retry_after, str)):
            raise ValueError("'retry_after' must be a number, a string or null")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ValueError("'code' must be an integer")
        if isinstance(after_chunks, bool) or not isinstance(after_chunks, int):
            raise ValueError("'after_chunks' must be an integer")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            raise ValueError("'message' must be a string or null")
        return cls(
            kind=kind,
            code=code,
            retry_after=retry_after,
            body=data.get("body", "legacy"),
            message=message,
            seconds=float(seconds),
            after_chunks=after_chunks,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

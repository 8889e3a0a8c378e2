"""The record the emulator keeps of every request it receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
EMBEDDINGS_PATHS = frozenset({"/v1/embeddings", "/embeddings"})


@dataclass(frozen=True)
class RecordedRequest:
    """One received request. ``status`` is ``None`` until answered, or when no response was sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    client_request_id: str | None
    received_at: float
    status: int | None = None

    @property
    def route(self) -> str:
        """The path without its query string and trailing slash."""
        return self.path.partition("?")[0].rstrip("/") or "/"

    @property
    def is_chat(self) -> bool:
        """True for ``POST /v1/chat/completions`` (or ``/chat/completions``)."""
        return self.method == "POST" and self.route in CHAT_PATHS

    @property
    def is_embeddings(self) -> bool:
        """True for ``POST /v1/embeddings`` (or ``/embeddings``)."""
        return self.method == "POST" and self.route in EMBEDDINGS_PATHS

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The ``role=tool`` messages of a chat request body (empty for other requests)."""
        body = self.json if isinstance(self.json, dict) else {}
        messages = body.get("messages")
        if not isinstance(messages, list):
            return []
        return [m for m in messages if isinstance(m, dict) and m.get("role") == "tool"]

    def redacted_headers(self) -> dict[str, str]:
        """The headers with credential values replaced by ``[redacted]``."""
        return {k: ("[redacted]" if k in SECRET_HEADERS else v) for k, v in self.headers.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view without credential values."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.redacted_headers(),
            "body": self.body.decode("utf-8", errors="replace"),
            "json": self.json,
            "client_request_id": self.client_request_id,
            "received_at": self.received_at,
            "status": self.status,
        }

    def __repr__(self) -> str:
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, status={self.status!r}, "
            f"client_request_id={self.client_request_id!r}, body_bytes={len(self.body)})"
        )

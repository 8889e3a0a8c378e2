"""Whether a chat request fits, decided before it is sent: the size of its body, and the model's context length.

A 5 MB prompt must fail here, naming the numbers, rather than be sent (and perhaps billed). The token count
of a prompt is not known before the model's tokenizer sees it, so the check uses a *lower bound*: text is
counted at :data:`CHARS_PER_TOKEN_AT_MOST` characters per token (real text averages about 4; code and
whitespace runs reach 6-7), and images count nothing. A request this check lets through can still be over the
limit, and the API then refuses it with a 400, which costs nothing; a request it refuses is over for certain.

Nothing here does I/O: the hook looks the context length up in the API's catalog (``GET /model/{id}``), and
only for prompts large enough to matter (:data:`CONTEXT_LOOKUP_FROM_TOKENS`), so everyday calls pay nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.models import DEFAULT_MODEL

CHARS_PER_TOKEN_AT_MOST = 8
CONTEXT_LOOKUP_FROM_TOKENS = 8_192
"""Below this many (lower-bound) tokens every chat model of the API fits; no context length is looked up."""

DEFAULT_MAX_REQUEST_MB = 32.0
"""Body-size cap (MiB) unless the connection's ``max_request_mb`` extra sets another: room for one image at the
20 MiB inline limit (27 MiB once base64-encoded) and its prompt."""

DEFAULT_CONTEXT_LENGTHS: dict[str, int] = {DEFAULT_MODEL: 131_072}
"""Used when the catalog cannot be read. The seed model's figure is its ``info.contextLength`` in the API's model
list (the catalog the emulator serves copies it)."""


def prompt_tokens_at_least(messages: Sequence[Mapping[str, Any]]) -> int:
    """A lower bound of the prompt's tokens: its text (content, text parts, tool-call arguments), images aside."""
    characters = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            characters += sum(len(part["text"]) for part in content if isinstance(part.get("text"), str))
        for call in message.get("tool_calls") or ():
            characters += len(str((call.get("function") or {}).get("arguments") or ""))
    return characters // CHARS_PER_TOKEN_AT_MOST


def tokens_needed(body: Mapping[str, Any]) -> int:
    """Lower-bound prompt tokens plus the completion tokens the request reserves (its ``max_*_tokens``)."""
    reserved = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return prompt_tokens_at_least(body["messages"]) + int(reserved)


def check_body_size(size: int, max_request_mb: float) -> None:
    """Refuse a body over the cap before it is sent."""
    limit = int(max_request_mb * 2**20)
    if size > limit:
        raise AimlParameterError(
            f"The request body is {size / 2**20:.1f} MiB, over the {max_request_mb:g} MiB cap (the connection's "
            "'max_request_mb' extra sets it). Send less text, smaller images, or images by URL."
        )


def check_context_length(model: str, body: Mapping[str, Any], context_length: int | None) -> None:
    """Refuse a request whose lower-bound tokens already pass ``model``'s context length (when it is known)."""
    if context_length is None:
        return
    needed = tokens_needed(body)
    if needed > context_length:
        reserved = needed - prompt_tokens_at_least(body["messages"])
        raise AimlParameterError(
            f"The prompt is at least {needed - reserved:,} tokens"
            + (f" plus {reserved:,} reserved for the answer" if reserved else "")
            + f", over the {context_length:,}-token context length of {model!r}. Shorten it or split the work "
            "(the batch operator takes one record per call)."
        )


def context_length_from(payload: Any) -> int | None:
    """``info.contextLength`` of a ``GET /model/{id}`` answer (``{object: "model", data: {...}}``), if it has one."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    info = data.get("info") if isinstance(data, Mapping) else None
    value = info.get("contextLength") if isinstance(info, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

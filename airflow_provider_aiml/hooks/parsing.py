"""The one place that reads the API's answers: completions, SSE streams, embeddings, usage and cost, error bodies.

Nothing here does I/O. Whatever the bytes are (a model family's variant shape, an HTML error page, a truncated
body, a cut stream), the result is a :class:`ChatCompletionResult` or one of the provider's own exceptions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from airflow_provider_aiml.exceptions import (
    AimlResponseError,
    AimlStatusError,
    AimlStreamIncompleteError,
    status_error_class,
)
from airflow_provider_aiml.models import (
    CREDITS_PER_USD,
    ChatCompletionResult,
    EmbeddingResult,
    StreamDelta,
    ToolCall,
    Usage,
)

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_MAX_ERROR_TEXT = 300


class CallInfo:
    """What the hook knows about a call, attached to whatever comes back from it."""

    __slots__ = ("client_request_id", "headers", "latency_s", "requested_model")

    def __init__(
        self,
        requested_model: str,
        client_request_id: str | None,
        headers: Mapping[str, str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.requested_model = requested_model
        self.client_request_id = client_request_id
        # One pass over the response's headers: each lookup in an httpx ``Headers`` scans them all.
        self.headers: Mapping[str, str] = dict(headers.items()) if headers else {}
        self.latency_s = latency_s


# --- errors -------------------------------------------------------------------------------------------------


def parse_error(
    status_code: int, headers: Mapping[str, str], body: bytes, client_request_id: str | None
) -> AimlStatusError:
    """Turn an error response into the provider's exception, keeping the API's own message.

    The API's error bodies come in several shapes (``{message, statusCode, requestId, ...}``, problem+json
    with ``error.message``, HTML pages from a proxy, or nothing at all); the status always comes from the HTTP
    status line, never from the body.
    """
    message, api_request_id = _error_message(body)
    title = " ".join(filter(None, (f"AI/ML API error {status_code}", _status_phrase(status_code))))
    text = f"{title}: {message}" if message else title
    return status_error_class(status_code)(
        text,
        status_code=status_code,
        client_request_id=client_request_id,
        api_request_id=api_request_id or headers.get("x-request-id"),
        inference_id=headers.get("x-inference-id"),
        retry_after=headers.get("retry-after"),
    )


def _error_message(body: bytes) -> tuple[str, str | None]:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return "", None
    try:
        payload = json.loads(text)
    except ValueError:
        # The documented error example is JSON-like but has no commas between members; read it by key.
        message, request_id = (_loose_member(text, key) for key in ("message", "requestId"))
        return (_clip(message) if message else _plain_text(text)), request_id
    if not isinstance(payload, dict):
        return _plain_text(text), None
    message = _payload_message(payload) or _plain_text(text)
    request_id = payload.get("requestId") or payload.get("request_id")
    usable_id = request_id if isinstance(request_id, str) and request_id not in ("", "...") else None
    return _clip(message), usable_id


def _payload_message(payload: Mapping[str, Any]) -> str:
    """The message of a JSON error body, whichever documented shape it has ("" when it has none)."""
    error = payload.get("error")
    nested = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    candidates = [payload.get("message"), nested, payload.get("detail"), payload.get("title")]
    return next((str(c) for c in candidates if c and str(c) not in ("...",)), "")


def _loose_member(text: str, key: str) -> str | None:
    found = re.search(rf'"{key}"\s*:\s*("(?:[^"\\]|\\.)*")', text)
    if not found:
        return None
    try:
        return str(json.loads(found.group(1)))
    except ValueError:
        return found.group(1)[1:-1]


def _plain_text(text: str) -> str:
    """Reduce an HTML or text error page to one readable line."""
    if "<" in text and ">" in text:
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        heading = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.IGNORECASE | re.DOTALL)
        found = title or heading
        text = f"HTML page: {found.group(1).strip()}" if found else "HTML page without a message"
    return _clip(" ".join(text.split()))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


def _status_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


# --- non-streaming answers ----------------------------------------------------------------------------------


def parse_completion(body: bytes, call: CallInfo) -> ChatCompletionResult:
    """Parse a non-streaming ``chat.completion`` body."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise _response_error(
            f"The API answered with a body that is not JSON: {_plain_text(body.decode(errors='replace'))!r}",
            call,
        ) from None
    if not isinstance(payload, dict):
        raise _response_error(f"The API answered with JSON that is not an object: {type(payload).__name__}", call)
    try:
        return _completion_from_payload(payload, call)
    except AimlResponseError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as error:
        raise _response_error(f"The API's answer has an unexpected shape: {error}", call) from None


def _completion_from_payload(payload: dict[str, Any], call: CallInfo) -> ChatCompletionResult:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        problem = ""
        if "choices" not in payload:  # an error body delivered with status 200
            problem = _clip(_payload_message(payload) or _plain_text(json.dumps(payload)))
        raise _response_error(f"The API's answer has no choices{': ' + problem if problem else ''}", call)
    choice = choices[0]
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        raise _response_error("The API's answer has a choice without a message object", call)
    content = well_formed(_text(message.get("content")))
    reasoning = well_formed(_reasoning_of(message))
    content, reasoning = split_think_block(content, reasoning)
    tool_calls = [ToolCall.model_validate(_tool_call_dict(call_)) for call_ in message.get("tool_calls") or []]
    return ChatCompletionResult(
        id=str(payload.get("id") or ""),
        model=str(payload.get("model") or call.requested_model),
        requested_model=call.requested_model,
        content=content,
        reasoning=reasoning,
        finish_reason=_optional_str(choice.get("finish_reason")),
        tool_calls=tool_calls,
        usage=parse_usage(payload.get("usage"), _meta_usage(payload), call.headers),
        client_request_id=call.client_request_id,
        inference_id=call.headers.get("x-inference-id"),
        request_id=call.headers.get("x-request-id"),
        latency_s=call.latency_s,
        raw=payload,
    )


def _response_error(
    message: str, call: CallInfo, cls: type[AimlResponseError] = AimlResponseError
) -> AimlResponseError:
    return cls(
        message,
        client_request_id=call.client_request_id,
        inference_id=call.headers.get("x-inference-id"),
        api_request_id=call.headers.get("x-request-id"),
    )


def _text(content: Any) -> str:
    """Content is a string, null (tool calls), or a list of parts; return the text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    raise TypeError(f"message content is a {type(content).__name__}")


def well_formed(text: str) -> str:
    """``text`` with any lone surrogate (a broken ``\\ud83d`` escape in the JSON) replaced by ``?``: such text
    cannot be written as UTF-8 nor sent back to the API, so it would fail the call after it was paid for."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _reasoning_of(message: Mapping[str, Any]) -> str:
    """Qwen, DeepSeek, Anthropic, GLM, ... use ``reasoning_content``; OpenRouter-style families ``reasoning``."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if isinstance(details, list):
        return "".join(str(item.get("text") or "") for item in details if isinstance(item, dict))
    return ""


def split_think_block(content: str, reasoning: str) -> tuple[str, str]:
    """Move a leading ``<think>...</think>`` block out of the content when no reasoning field was given."""
    if reasoning or not content.lstrip().startswith(_THINK_OPEN):
        return content, reasoning
    body = content.lstrip()[len(_THINK_OPEN) :]
    thought, closed, answer = body.partition(_THINK_CLOSE)
    if not closed:  # the answer was cut off while the model was still thinking
        return "", thought.strip()
    return answer.lstrip(), thought.strip()


def _tool_call_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"tool call is a {type(value).__name__}")
    function = value.get("function") or {}
    return {
        **value,
        "id": well_formed(str(value.get("id") or "")),
        "function": {
            **function,
            "name": well_formed(str(function.get("name") or "")),
            "arguments": well_formed(_arguments_text(function.get("arguments"))),
        },
    }


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _meta_usage(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    meta = payload.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    return usage if isinstance(usage, dict) else None


# --- usage and cost -----------------------------------------------------------------------------------------


def parse_usage(usage: Any, meta_usage: Mapping[str, Any] | None, headers: Mapping[str, str]) -> Usage:
    """Token counts from ``usage`` and cost from the cost headers or ``meta.usage``, whichever is present.

    ``reasoning_tokens`` and ``cached_tokens`` come from ``completion_tokens_details`` and
    ``prompt_tokens_details``; either may be null or absent (the count is then 0).

    ``meta.usage`` comes as ``{credits_used, usd_spent}``, ``{credits_used}`` or the legacy ``{tokens_used}``
    (whose unit is undocumented, so it yields no cost). One USD is two million credits.
    """
    usage = usage if isinstance(usage, dict) else {}
    prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _count(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _count(usage.get("total_tokens")) or prompt + completion
    details = usage.get("completion_tokens_details")
    reasoning = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else 0
    prompt_details = usage.get("prompt_tokens_details")
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    credits, usd = _cost(meta_usage, headers)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        credits_used=credits,
        usd_spent=usd,
    )


def billed_usd(headers: Mapping[str, str]) -> float | None:
    """The cost the response's headers report, known before its body is read (``None`` when they say none)."""
    return _cost(None, headers)[1]


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"token count {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"token count {value!r} is not a finite number")
    return int(number)


def _cost(meta_usage: Mapping[str, Any] | None, headers: Mapping[str, str]) -> tuple[int | None, float | None]:
    credits = _number(headers.get("x-aimlapi-credits-used"))
    usd = _number(headers.get("x-aimlapi-usd-spent"))
    if credits is None and usd is None and meta_usage:
        credits = _number(meta_usage.get("credits_used"))
        usd = _number(meta_usage.get("usd_spent"))
    if credits is None and usd is not None:
        credits = usd * CREDITS_PER_USD
    if usd is None and credits is not None:
        usd = credits / CREDITS_PER_USD
    return (None if credits is None else round(credits)), usd


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None  # "inf" or "NaN" is no figure: the cost stays unknown


# --- streams ------------------------------------------------------------------------------------------------


class StreamAccumulator:
    """Folds the SSE lines of one streamed answer into deltas and, at the end, one result.

    Tolerates what the documented transcripts show: no ``[DONE]`` line, chunks without ``delta``, ``null``
    content, an empty ``id`` after the first chunk, usage on the finish chunk or on a last ``choices: []``
    chunk, and cost under ``meta.usage`` in any chunk.
    """

    def __init__(self, call: CallInfo, attempt: int = 1) -> None:
        self._call = call
        self._attempt = attempt
        self._data_lines: list[str] = []
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._id = ""
        self._model = ""
        self.finish_reason: str | None = None
        self._usage: Any = None
        self._meta_usage: Mapping[str, Any] | None = None
        self._think_tags: ThinkTagRouter | None = ThinkTagRouter()
        self.chunks = 0
        self.done = False
        """True once ``data: [DONE]`` arrived; the caller stops reading."""

    def feed_line(self, line: str) -> StreamDelta | None:
        """Take one line of the SSE body; return a delta when it completed an event that carries one."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data_lines.append(value[1:] if value.startswith(" ") else value)
        return None

    def finish(self) -> ChatCompletionResult:
        """Call at the end of the body; raises :class:`AimlStreamIncompleteError` for a stream cut short."""
        if self._data_lines and not self.done:
            try:
                self._dispatch()
            except AimlResponseError:
                raise self._incomplete("The stream ended in the middle of an event") from None
        if self.finish_reason is None:
            raise self._incomplete(f"The stream ended after {self.chunks} chunk(s) without a finish reason")
        try:
            return self._result()
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:  # pydantic's errors too
            raise _response_error(f"The stream's answer has an unexpected shape: {error}", self._call) from None

    def _result(self) -> ChatCompletionResult:
        content, reasoning = split_think_block("".join(self._content), "".join(self._reasoning))
        tool_calls = [ToolCall.model_validate(self._tool_calls[i]) for i in sorted(self._tool_calls)]
        raw = self._raw(content, reasoning, tool_calls)
        return ChatCompletionResult(
            id=self._id,
            model=self._model or self._call.requested_model,
            requested_model=self._call.requested_model,
            content=content,
            reasoning=reasoning,
            finish_reason=self.finish_reason,
            tool_calls=tool_calls,
            usage=parse_usage(self._usage, self._meta_usage, self._call.headers),
            client_request_id=self._call.client_request_id,
            inference_id=self._call.headers.get("x-inference-id"),
            request_id=self._call.headers.get("x-request-id"),
            latency_s=self._call.latency_s,
            raw=raw,
        )

    def _incomplete(self, message: str) -> AimlStreamIncompleteError:
        error = _response_error(message, self._call, AimlStreamIncompleteError)
        assert isinstance(error, AimlStreamIncompleteError)
        return error

    def _dispatch(self) -> StreamDelta | None:
        if not self._data_lines:
            return None
        data = "\n".join(self._data_lines)
        self._data_lines = []
        if data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            raise _response_error(f"The stream sent an event that is not JSON: {_clip(data)!r}", self._call) from None
        if not isinstance(chunk, dict):
            raise _response_error(f"The stream sent an event that is not a JSON object: {_clip(data)!r}", self._call)
        try:
            return self._apply(chunk)
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise _response_error(f"The stream sent a chunk with an unexpected shape: {error}", self._call) from None

    def _apply(self, chunk: dict[str, Any]) -> StreamDelta | None:
        self.chunks += 1
        if "error" in chunk and not chunk.get("choices"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise _response_error(f"The API reported an error in the stream: {message}", self._call)
        self._id = self._id or str(chunk.get("id") or "")
        self._model = self._model or str(chunk.get("model") or "")
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        self._meta_usage = _meta_usage(chunk) or self._meta_usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise TypeError("choices is not a list")
        if not choices:
            return None
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = _text(delta.get("content"))
        reasoning = _reasoning_of(delta)
        tool_calls = [self._merge_tool_call(part) for part in delta.get("tool_calls") or []]
        finish_reason = _optional_str(choice.get("finish_reason"))
        if finish_reason is not None:
            self.finish_reason = finish_reason
        self._content.append(content)
        self._reasoning.append(reasoning)
        if reasoning:
            self._think_tags = None  # the family reports reasoning in its own field: content is all answer
        live_reasoning, live_content = reasoning, content
        if self._think_tags is not None and content:
            live_reasoning, live_content = self._think_tags.feed(content)
        if not (live_content or live_reasoning or tool_calls or finish_reason):
            return None
        return StreamDelta(
            content=live_content,
            reasoning=live_reasoning,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            attempt=self._attempt,
        )

    def _merge_tool_call(self, part: Any) -> dict[str, Any]:
        if not isinstance(part, dict):
            raise TypeError("tool call delta is not an object")
        index = int(part.get("index", len(self._tool_calls)))
        current = self._tool_calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        current["id"] = part.get("id") or current["id"]
        current["type"] = part.get("type") or current["type"]
        function = part.get("function") or {}
        current["function"]["name"] = function.get("name") or current["function"]["name"]
        current["function"]["arguments"] += _arguments_text(function.get("arguments"))
        return part

    def _raw(self, content: str, reasoning: str, tool_calls: list[ToolCall]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content, "reasoning_content": reasoning}
        if tool_calls:
            message["tool_calls"] = [call.model_dump() for call in tool_calls]
        raw: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion",
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self._usage,
        }
        if self._meta_usage:
            raw["meta"] = {"usage": dict(self._meta_usage)}
        return raw


class ThinkTagRouter:
    """Splits streamed content that opens with ``<think>...</think>`` into reasoning and answer as it arrives.

    Tags may be cut across chunks, so text that could still be the start of a tag is held back until the next
    chunk decides it. The final result is split again from the whole text (:func:`split_think_block`).
    """

    def __init__(self) -> None:
        self._state = "undecided"
        self._held = ""

    def feed(self, text: str) -> tuple[str, str]:
        """Take a content piece; return the (reasoning, answer) text that can be shown now."""
        self._held += text
        if self._state == "undecided":
            opening = self._held.lstrip()
            if not opening or _THINK_OPEN.startswith(opening):
                return "", ""
            if not opening.startswith(_THINK_OPEN):
                self._state = "answering"
                answer, self._held = self._held, ""
                return "", answer
            self._state = "thinking"
            self._held = opening[len(_THINK_OPEN) :]
        if self._state == "thinking":
            thought, closed, rest = self._held.partition(_THINK_CLOSE)
            if closed:
                self._state = "answering"
                self._held = ""
                return thought, rest.lstrip()
            keep = _partial_suffix(self._held, _THINK_CLOSE)
            shown = self._held[: len(self._held) - keep]
            self._held = self._held[len(self._held) - keep :]
            return shown, ""
        answer, self._held = self._held, ""
        return "", answer


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


# --- embeddings -----------------------------------------------------------------------------------------------


def parse_embeddings(body: bytes, count: int, call: CallInfo) -> EmbeddingResult:
    """Parse an ``/embeddings`` answer into ``count`` vectors in input order.

    The API's items carry the ``index`` of their input; the answer is put in order by it, and a missing,
    repeated or out-of-range index is an :class:`AimlResponseError` rather than a silent shift of vectors.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        raise _response_error(
            f"The API answered with a body that is not JSON: {_plain_text(body.decode(errors='replace'))!r}", call
        ) from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        problem = _clip(_payload_message(payload)) if isinstance(payload, dict) else type(payload).__name__
        raise _response_error(f"The API's embeddings answer has no data list{': ' + problem if problem else ''}", call)
    vectors: list[Any] = [None] * count
    try:
        for position, item in enumerate(data):
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise ValueError(f"item {position} has index {index!r}, outside 0..{count - 1}")
            if vectors[index] is not None:
                raise ValueError(f"index {index} appears twice")
            vector = item["embedding"]
            if not isinstance(vector, list) or not vector:
                raise ValueError(f"the vector of index {index} is not a list of numbers")
            vectors[index] = vector
        missing = [index for index, vector in enumerate(vectors) if vector is None]
        if missing:
            raise ValueError(f"no vector for index {missing[0]} ({len(missing)} of {count} missing)")
        usage = parse_usage(payload.get("usage"), _meta_usage(payload), call.headers)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise _response_error(f"The API's embeddings answer has an unexpected shape: {error}", call) from None
    try:
        return EmbeddingResult(  # validates every value of every vector as a number (strings, booleans refused)
            model=str(payload.get("model") or call.requested_model),
            requested_model=call.requested_model,
            vectors=vectors,
            usage=usage,
            latency_s=call.latency_s,
            client_request_id=call.client_request_id,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _response_error(
            f"The API's embeddings answer has an unexpected shape: {where} is {type(first['input']).__name__}, "
            "not a number",
            call,
        ) from None

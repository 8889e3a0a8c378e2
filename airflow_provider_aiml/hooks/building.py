"""The one place that turns a call into a request: checks every value, then builds body and headers.

Nothing here does I/O. A value the seed model's schema would reject raises :class:`AimlParameterError`
naming the parameter, so the caller fails before anything is sent (and before anything is billed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import ValidationError

from airflow_provider_aiml import __version__
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.hooks.sizing import check_body_size
from airflow_provider_aiml.models import GENERATION_PARAMETERS, RESERVED_BODY_KEYS, GenerationParams
from airflow_provider_aiml.parameters import NUMERIC_PARAMETERS

USER_AGENT = f"airflow-provider-aiml/{__version__}"

CLIENT_REQUEST_ID_MAX = 128
_CLIENT_REQUEST_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9._:-]+")

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_PART_TYPES = {"system": {"text"}, "developer": {"text"}, "user": {"text", "image_url"}}
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_DATA_IMAGE_URI = re.compile(r"^data:image/[\w.+-]+;base64,[A-Za-z0-9+/]+={0,2}$")
# The messages the API's schema closes (no other keys), with the keys they take.
_CLOSED_MESSAGE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "tool": ("role", "content", "tool_call_id", "name"),
}
# Union members and discriminator tags show up in pydantic's error locations; they are not part of the path.
_UNION_MEMBER_LOC = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|[A-Z]\w*|literal\[.*\]|.*=.*)$")


class ChatRequest(NamedTuple):
    """A validated chat-completion request: its body, and that body encoded as it is sent."""

    body: dict[str, Any]
    payload: bytes


def build_chat_body(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    stream: bool,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate a chat-completion call and return its JSON body (see :func:`build_chat_request`)."""
    return build_chat_request(model, messages, params, stream=stream, extra_body=extra_body).body


def build_chat_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    stream: bool,
    extra_body: Mapping[str, Any] | None = None,
    ranges_from_schema: bool = False,
) -> ChatRequest:
    """Validate a chat-completion call and build its body, holding only the keys that are set, and its bytes.

    ``params`` are generation parameters by their API names; ``extra_body`` holds model-specific switches
    (``enable_thinking``, ``reasoning_effort``, ...) merged on top. Known parameters are checked wherever they
    come from; unknown keys are allowed only in ``extra_body``. With ``ranges_from_schema`` the numeric ranges
    are left to the model's own schema (:class:`~airflow_provider_aiml.catalog.profile.ModelProfile`), which
    the caller checks the body against; the seed model's ranges apply otherwise.
    """
    if not isinstance(model, str) or not model.strip():
        raise AimlParameterError(f"model must be a non-empty string, got {model!r}")
    validate_messages(messages)

    unknown = sorted(set(params) - set(GENERATION_PARAMETERS))
    if unknown:
        raise AimlParameterError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))}. Known parameters: "
            f"{', '.join(GENERATION_PARAMETERS)}. Put model-specific switches in extra_body."
        )
    if not isinstance(extra_body, Mapping | None):
        raise AimlParameterError(f"extra_body must be a mapping, got {type(extra_body).__name__}")
    extra = {key: value for key, value in (extra_body or {}).items() if value is not None}
    clashing = sorted(RESERVED_BODY_KEYS & set(extra))
    if clashing:
        raise AimlParameterError(
            f"extra_body may not set {', '.join(map(repr, clashing))}: the operator and hook set them."
        )

    settings = {key: _as_json_list(value) for key, value in params.items() if value is not None}
    doubled = sorted(key for key in extra if key in settings)
    if doubled:
        raise AimlParameterError(
            f"{', '.join(map(repr, doubled))} given both as a parameter and in extra_body: set each only once."
        )
    settings.update({key: _as_json_list(value) for key, value in extra.items() if key in GENERATION_PARAMETERS})
    if settings:
        validate_params(
            {k: v for k, v in settings.items() if k not in NUMERIC_PARAMETERS} if ranges_from_schema else settings
        )

    body: dict[str, Any] = {"model": model, "messages": [_without_nulls(message) for message in messages]}
    body.update(settings)
    body.update({key: value for key, value in extra.items() if key not in GENERATION_PARAMETERS})
    if stream:
        body["stream"] = True
        # Ask for the usage chunk explicitly: it is schema-valid, and without it some upstreams send none.
        body.setdefault("stream_options", {"include_usage": True})
    _check_tool_choice(body)
    return ChatRequest(body, encode_body(body, extra_keys=extra.keys()))


def encode_body(body: Mapping[str, Any], extra_keys: Iterable[str] = ()) -> bytes:
    """The body as sent: compact UTF-8 JSON (no spaces, non-ASCII text as is). Encoding once is also the
    check: what JSON cannot carry (NaN, inf, sets, bytes, dates, lone surrogates, ...) is refused, naming where it
    is, before anything is sent. The culprit is looked for only when there is one."""
    try:
        return _encode(body)
    except (TypeError, ValueError) as error:
        for key, value in body.items():
            try:
                _encode(value)
            except (TypeError, ValueError):
                where = f"extra_body[{key!r}]" if key in extra_keys else "messages" if key == "messages" else repr(key)
                raise AimlParameterError(f"{where} cannot be sent as JSON: {error}") from None
        raise AimlParameterError(f"the request cannot be sent as JSON: {error}") from None


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _check_tool_choice(body: Mapping[str, Any]) -> None:
    """A tool_choice that forces a function must name one of the tools sent with it."""
    choice = body.get("tool_choice")
    if not isinstance(choice, Mapping):
        return
    forced = (choice.get("function") or {}).get("name")
    offered = {str((tool.get("function") or {}).get("name")) for tool in body.get("tools") or []}
    if forced not in offered:
        raise AimlParameterError(
            f"'tool_choice' forces the function {forced!r}, which is not among the tools sent ({sorted(offered)})"
        )


def with_messages(
    body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], *, max_request_mb: float | None = None
) -> dict[str, Any]:
    """A validated body with other messages (checked here, their size too when ``max_request_mb`` is given):
    batch work checks its parameters only once."""
    validate_messages(messages)
    new_messages = [_without_nulls(message) for message in messages]
    encoded = encode_body({"messages": new_messages})  # 10,000 records keep their dicts, not their bytes
    if max_request_mb is not None:
        check_body_size(len(encoded), max_request_mb)
    return {**body, "messages": new_messages}


def _as_json_list(value: Any) -> Any:
    """Tuples (``stop=("a", "b")``) travel as JSON lists; validate them as such."""
    return list(value) if isinstance(value, tuple) else value


def extend_messages(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], checked: int) -> dict[str, Any]:
    """``body`` (built from ``messages[:checked]``) over the longer conversation ``messages``: only the messages
    after ``checked`` are checked, so an agent's conversation is not checked again at every step."""
    sent = body["messages"]
    if checked != len(sent):
        raise ValueError(f"the body holds {len(sent)} messages, not the {checked} said to be checked")
    validate_messages(messages, start=checked)
    return {**body, "messages": [*sent, *(_without_nulls(message) for message in messages[checked:])]}


def _without_nulls(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message without ``null`` keys (``"name": None`` would break the API's schema)."""
    return {key: value for key, value in message.items() if value is not None}


def validate_params(params: Mapping[str, Any]) -> GenerationParams:
    """Check generation parameters against the documented ranges; raise naming the first bad one."""
    try:
        return GenerationParams.model_validate(dict(params))
    except ValidationError as error:
        raise AimlParameterError(_describe_validation_error(error, params)) from None


def _describe_validation_error(error: ValidationError, params: Mapping[str, Any]) -> str:
    by_param: dict[str, list[tuple[str, str, str]]] = {}
    for item in error.errors(include_url=False):
        loc = item["loc"]
        by_param.setdefault(str(loc[0]), []).append((_format_loc(loc), item["type"], item["msg"]))
    lines = []
    for name, problems in by_param.items():
        # A union reports one complaint per member; the ones that are not a plain type mismatch say the most.
        telling = [p for p in problems if p[1] not in _TYPE_MISMATCHES] or problems
        detail = "; or ".join(dict.fromkeys(f"{path}: {msg}" if path != name else msg for path, _, msg in telling))
        lines.append(f"{name!r}: {detail} (got {_short_repr(params.get(name))})")
    return "Invalid request parameter " + "; ".join(lines)


_TYPE_MISMATCHES = frozenset(
    {"string_type", "list_type", "dict_type", "model_type", "model_attributes_type", "is_instance_of"}
)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _UNION_MEMBER_LOC.match(part):
            path += f".{part}" if path else part
    return path


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_messages(messages: Any, *, start: int = 0) -> None:
    """Check the shape of an OpenAI-style message list as the API's schema describes it.

    With ``start``, the messages before it were checked already (a growing conversation): only their tool-call
    ids are read, so each message is checked once."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise AimlParameterError(f"messages must be a list of message objects, got {type(messages).__name__}")
    if not messages:
        raise AimlParameterError("messages must not be empty")
    call_ids: set[str] = set()  # the ids of the tool calls asked for so far, which tool messages answer
    for index, message in enumerate(messages):
        if index < start:
            if message.get("role") == "assistant" and message.get("tool_calls"):
                call_ids.update(call["id"] for call in message["tool_calls"])
            continue
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise AimlParameterError(f"{where} must be an object with 'role' and 'content'")
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise AimlParameterError(f"{where}.role must be one of {sorted(_ROLES)}, got {_short_repr(role)}")
        closed_keys = _CLOSED_MESSAGE_KEYS.get(role)
        if closed_keys is not None:
            extra_keys = sorted(str(k) for k, value in message.items() if value is not None and k not in closed_keys)
            if extra_keys:
                *first, last = closed_keys
                raise AimlParameterError(
                    f"{where} (role {role!r}) takes only {', '.join(first)} and {last}; got {extra_keys}"
                )
        if message.get("name") is not None and not isinstance(message["name"], str):
            raise AimlParameterError(f"{where}.name must be a string, got {_short_repr(message['name'])}")
        content = message.get("content")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise AimlParameterError(f"{where} (role 'tool') needs a non-empty string tool_call_id")
            if not isinstance(content, str):
                raise AimlParameterError(f"{where}.content (role 'tool') must be a string")
            if call_id not in call_ids:
                asked = ", ".join(sorted(call_ids)) or "none"
                raise AimlParameterError(
                    f"{where}.tool_call_id {call_id!r} answers no tool call of an earlier assistant message "
                    f"(the calls asked for: {asked})"
                )
        if role == "assistant" and message.get("tool_calls") is not None:
            _validate_tool_calls(message["tool_calls"], where)
            call_ids.update(call["id"] for call in message["tool_calls"])
        if role == "assistant" and content is None:
            if not message.get("tool_calls"):
                raise AimlParameterError(f"{where} (role 'assistant') needs content or tool_calls")
            continue
        _validate_content(content, role, where)


def _validate_tool_calls(tool_calls: Any, where: str) -> None:
    """An assistant turn's tool calls as the model gave them: ``{id, type, function: {name, arguments}}``."""
    if not isinstance(tool_calls, list) or not tool_calls:
        raise AimlParameterError(f"{where}.tool_calls must be a non-empty list of tool calls")
    for index, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if (
            not isinstance(call, Mapping)
            or not isinstance(call.get("id"), str)
            or call.get("type") != "function"
            or not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise AimlParameterError(
                f"{where}.tool_calls[{index}] must be {{id, type: 'function', function: {{name, arguments}}}} with "
                f"string id, name and arguments (a JSON string), got {_short_repr(call)}"
            )


def _validate_content(content: Any, role: str, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise AimlParameterError(f"{where}.content must be a string or a non-empty list of parts")
    allowed = _PART_TYPES.get(role, {"text"} if role == "tool" else {"text", "refusal"})
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if not isinstance(kind, str) or kind not in allowed:
            raise AimlParameterError(f"{at}.type must be one of {sorted(allowed)} for role {role!r}, got {kind!r}")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise AimlParameterError(f"{at}.text must be a string")
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else None
            if not isinstance(url, str) or not (_HTTP_URL.match(url) or _DATA_IMAGE_URI.match(url)):
                raise AimlParameterError(
                    f"{at}.image_url.url must be an http(s) URL or a data:image/...;base64 URI, "
                    f"got {_short_repr(url, 60)}"
                )
            detail = image.get("detail")
            if detail is not None and detail not in ("low", "high", "auto"):
                raise AimlParameterError(f"{at}.image_url.detail must be 'low', 'high' or 'auto', got {detail!r}")


def client_headers(api_key: str) -> dict[str, str]:
    """Headers the HTTP client sends on every call. The key lives only here and in the client, never in logs."""
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def call_headers(client_request_id: str) -> dict[str, str]:
    """Headers of one call: its body's type (it is sent as encoded bytes) and the id that traces it in the API's
    logs."""
    return {"Content-Type": "application/json", "X-Client-Request-Id": client_request_id}


def client_request_id(*parts: object) -> str:
    """Join identifying parts into an id the API accepts (``^[A-Za-z0-9._:-]{1,128}$``).

    The API silently drops an id that breaks the pattern, so unsafe characters become ``_`` and an id that is
    too long keeps its start and ends with a hash of the whole, staying unique and traceable from the log.
    """
    cleaned = [_CLIENT_REQUEST_ID_BAD_CHARS.sub("_", str(part)).strip("_") or "_" for part in parts if part != ""]
    joined = ":".join(cleaned) or new_client_request_id()
    if len(joined) <= CLIENT_REQUEST_ID_MAX:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:16]
    return f"{joined[: CLIENT_REQUEST_ID_MAX - len(digest) - 1]}.{digest}"


def new_client_request_id() -> str:
    """An id for a call made outside a task (no DAG context to derive one from); already in the API's alphabet."""
    return f"airflow-aiml:{os.urandom(16).hex()}"


# --- embeddings -----------------------------------------------------------------------------------------------

DEFAULT_EMBEDDING_BATCH = 256
"""Texts per ``/embeddings`` request. Large enough that the per-request cost (a round trip, a log line's worth of
bookkeeping) is spread thin: 100,000 short texts are 391 requests. Small enough that one request stays modest
when the texts are long (256 paragraphs of 2,000 characters are about 0.5 MB and 130,000 tokens), so a retried
request re-sends little, and well under the endpoint's 2,048 inputs."""
MAX_EMBEDDING_BATCH = 2048
"""The most inputs one request may carry (the limit of the OpenAI-shaped endpoint the API follows)."""


class EmbeddingRequest(NamedTuple):
    """One checked ``/embeddings`` body: the texts ``first`` to ``first + size`` of the call."""

    model: str
    body: dict[str, Any]
    payload: bytes
    first: int
    size: int


def build_embedding_requests(
    texts: Sequence[str], model: str, dimensions: int | None, batch_size: int
) -> list[EmbeddingRequest]:
    """Check the texts and options and split them into requests; raises naming the first bad value."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise AimlParameterError(f"'texts' must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise AimlParameterError("'texts' is empty: there is nothing to embed")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise AimlParameterError(f"text {index} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise AimlParameterError(f"text {index} is empty or only whitespace: there is nothing to embed")
    if not isinstance(model, str) or not model.strip():
        raise AimlParameterError(f"'model' must be a model id, got {model!r}")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise AimlParameterError(f"'dimensions' must be a whole number >= 1, got {dimensions!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_EMBEDDING_BATCH:
        raise AimlParameterError(
            f"'batch_size' must be a whole number from 1 to {MAX_EMBEDDING_BATCH}, got {batch_size!r}"
        )
    requests = []
    for first in range(0, len(texts), batch_size):
        chunk = list(texts[first : first + batch_size])
        body: dict[str, Any] = {"model": model, "input": chunk}
        if dimensions is not None:
            body["dimensions"] = dimensions
        requests.append(EmbeddingRequest(model, body, encode_body(body), first, len(chunk)))
    return requests

"""Request-body checks for ``POST /v1/chat/completions`` (the seed model's schema, zod-style messages)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_URL_PATTERN = re.compile(r"^(https?://\S+|data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+)$")
ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_CHOICES = ("none", "auto", "required")
IMAGE_DETAILS = ("low", "high", "auto")
MAX_STOP = 4
MAX_TOOLS = 128


def validate_chat_body(body: Any, *, ranges: bool = True) -> list[str]:
    """Return the validation errors of a chat-completions body (empty when valid).

    Each error reads like ``Expected number <= 2, received 3 at "temperature"``. ``ranges=False`` leaves out the
    seed model's numeric ranges, for a model whose own schema gives them (:mod:`.model_checks`).
    """
    return _Checker(ranges=ranges).run(body)


def tool_call_id_errors(body: Any) -> list[str]:
    """Errors for ``role=tool`` messages whose ``tool_call_id`` names no tool call of an earlier assistant message.

    Kept apart from :func:`validate_chat_body` (the schema check): it links messages together. Run it on a body
    that passed the schema check.
    """
    messages = body.get("messages") if isinstance(body, Mapping) else None
    errors: list[str] = []
    seen: set[str] = set()
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "assistant":
            seen.update(
                call["id"]
                for call in message.get("tool_calls") or []
                if isinstance(call, Mapping) and isinstance(call.get("id"), str)
            )
        elif message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if isinstance(call_id, str) and call_id and call_id not in seen:
                errors.append(
                    "Expected the id of a tool call made by an earlier assistant message, "
                    f'received {show_value(call_id)} at "messages[{index}].tool_call_id"'
                )
    return errors


def json_kind(value: Any) -> str:
    """The JSON type name of a decoded value (``number``, ``array``...), as the validation errors say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def show_value(value: Any) -> str:
    """A received value as the errors show it: strings quoted and cut, containers and null by kind."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool) or value is None or isinstance(value, list | Mapping):
        return json_kind(value)
    return repr(value)


def one_of(options: Iterable[Any]) -> str:
    """Allowed values as the errors list them: ``'a' | 'b'``."""
    return " | ".join(repr(option) for option in options)


class _Checker:
    def __init__(self, *, ranges: bool = True) -> None:
        self.errors: list[str] = []
        self.ranges = ranges

    def fail(self, expected: str, received: str, path: str) -> None:
        self.errors.append(f'Expected {expected}, received {received} at "{path}"')

    def run(self, body: Any) -> list[str]:
        if not isinstance(body, Mapping):
            self.fail("object", json_kind(body), "body")
            return self.errors
        model = body.get("model")
        if not isinstance(model, str):
            self.fail("string", "undefined" if "model" not in body else json_kind(model), "model")
        elif not model.strip():
            self.fail("non-empty string", "''", "model")
        self._messages(body)
        if self.ranges:
            self._number(body, "temperature", low=0, high=2)
            self._number(body, "top_p", low=0.01, high=1)
            self._number(body, "max_tokens", low=1)
            self._number(body, "max_completion_tokens", low=1, integer=True)
            self._number(body, "seed", low=1, integer=True)
            self._number(body, "frequency_penalty", low=-2, high=2, nullable=True)
            self._number(body, "presence_penalty", low=-2, high=2, nullable=True)
            self._number(body, "repetition_penalty", nullable=True)
        for key in ("stream", "parallel_tool_calls"):
            if key in body and not isinstance(body[key], bool):
                self.fail("boolean", json_kind(body[key]), key)
        self._stop(body)
        self._stream_options(body)
        self._tools(body)
        self._tool_choice(body)
        self._response_format(body)
        return self.errors

    # -- scalars ------------------------------------------------------------------------------

    def _number(
        self,
        body: Mapping[str, Any],
        key: str,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
        nullable: bool = False,
    ) -> None:
        if key not in body:
            return
        value = body[key]
        if value is None and nullable:
            return
        expected = "integer" if integer else "number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(expected, json_kind(value), key)
            return
        if isinstance(value, float) and not math.isfinite(value):  # a huge JSON integer is finite (and no float)
            self.fail(expected, "non-finite number", key)
            return
        if integer and isinstance(value, float) and not value.is_integer():
            self.fail("integer", "float", key)
        elif low is not None and value < low:
            self.fail(f"{expected} >= {low:g}", show_value(value), key)
        elif high is not None and value > high:
            self.fail(f"{expected} <= {high:g}", show_value(value), key)

    def _string(self, container: Mapping[str, Any], key: str, path: str, *, required: bool) -> bool:
        if key not in container:
            if required:
                self.fail("string", "undefined", path)
            return False
        if not isinstance(container[key], str):
            self.fail("string", json_kind(container[key]), path)
            return False
        return True

    def _stream_options(self, body: Mapping[str, Any]) -> None:
        """``{include_usage: boolean}``: the key is required, and the object takes no other."""
        if body.get("stream_options") is None:
            return
        options = body["stream_options"]
        if not self._object(options, "stream_options"):
            return
        if "include_usage" not in options:
            self.fail("boolean", "undefined", "stream_options.include_usage")
        elif not isinstance(options["include_usage"], bool):
            self.fail("boolean", json_kind(options["include_usage"]), "stream_options.include_usage")
        for key in sorted(set(options) - {"include_usage"}):
            self.fail("never", json_kind(options[key]), f"stream_options.{key}")

    def _object(self, value: Any, path: str) -> TypeGuard[Mapping[str, Any]]:
        if not isinstance(value, Mapping):
            self.fail("object", json_kind(value), path)
            return False
        return True

    # -- messages -----------------------------------------------------------------------------

    def _messages(self, body: Mapping[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            self.fail("array", "undefined" if "messages" not in body else json_kind(messages), "messages")
            return
        if not messages:
            self.fail("array with at least 1 item", "0 items", "messages")
            return
        for index, message in enumerate(messages):
            self._message(message, f"messages[{index}]")

    def _message(self, message: Any, path: str) -> None:
        if not self._object(message, path):
            return
        role = message.get("role")
        if role not in ROLES:
            self.fail(one_of(ROLES), "undefined" if "role" not in message else show_value(role), f"{path}.role")
            return
        if "name" in message and not (role == "tool" and message["name"] is None):
            self._string(message, "name", f"{path}.name", required=False)
        content_path = f"{path}.content"
        if role in ("system", "developer"):
            self._content(message, content_path, parts=("text",), required=True)
        elif role == "user":
            self._content(message, content_path, parts=("text", "image_url"), required=True)
        elif role == "tool":
            self._content(message, content_path, parts=("text",), required=True)
            if (
                self._string(message, "tool_call_id", f"{path}.tool_call_id", required=True)
                and not (message["tool_call_id"])
            ):
                self.fail("non-empty string", "''", f"{path}.tool_call_id")
        else:
            has_calls = self._assistant_tool_calls(message, path)
            if has_calls and message.get("content") is None:
                return
            self._content(message, content_path, parts=("text", "refusal"), required=True)

    def _assistant_tool_calls(self, message: Mapping[str, Any], path: str) -> bool:
        if "tool_calls" not in message or message["tool_calls"] is None:
            return False
        calls = message["tool_calls"]
        if not isinstance(calls, list):
            self.fail("array", json_kind(calls), f"{path}.tool_calls")
            return False
        for index, call in enumerate(calls):
            call_path = f"{path}.tool_calls[{index}]"
            if not self._object(call, call_path):
                continue
            self._string(call, "id", f"{call_path}.id", required=True)
            if call.get("type") != "function":
                self.fail("'function'", show_value(call.get("type")), f"{call_path}.type")
            function = call.get("function")
            if self._object(function, f"{call_path}.function"):
                self._string(function, "name", f"{call_path}.function.name", required=True)
                self._string(function, "arguments", f"{call_path}.function.arguments", required=True)
        return bool(calls)

    def _content(self, message: Mapping[str, Any], path: str, *, parts: tuple[str, ...], required: bool) -> None:
        if "content" not in message:
            if required:
                self.fail("string | array", "undefined", path)
            return
        content = message["content"]
        if isinstance(content, str):
            return
        if not isinstance(content, list):
            self.fail("string | array", json_kind(content), path)
            return
        for index, part in enumerate(content):
            self._part(part, f"{path}[{index}]", parts)

    def _part(self, part: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not self._object(part, path):
            return
        kind = part.get("type")
        if kind not in allowed:
            self.fail(one_of(allowed), show_value(kind) if "type" in part else "undefined", f"{path}.type")
            return
        if kind in ("text", "refusal"):
            self._string(part, kind, f"{path}.{kind}", required=True)
            return
        image = part.get("image_url")
        if not self._object(image, f"{path}.image_url"):
            return
        if self._string(image, "url", f"{path}.image_url.url", required=True) and not IMAGE_URL_PATTERN.match(
            image["url"]
        ):
            self.fail("http(s) URL or data:image/...;base64 URI", show_value(image["url"]), f"{path}.image_url.url")
        if "detail" in image and image["detail"] not in IMAGE_DETAILS:
            self.fail(one_of(IMAGE_DETAILS), show_value(image["detail"]), f"{path}.image_url.detail")

    # -- options ------------------------------------------------------------------------------

    def _stop(self, body: Mapping[str, Any]) -> None:
        if "stop" not in body or body["stop"] is None or isinstance(body["stop"], str):
            return
        stop = body["stop"]
        if not isinstance(stop, list):
            self.fail("string | array | null", json_kind(stop), "stop")
            return
        if len(stop) > MAX_STOP:
            self.fail(f"array with at most {MAX_STOP} items", f"{len(stop)} items", "stop")
        for index, item in enumerate(stop):
            if not isinstance(item, str):
                self.fail("string", json_kind(item), f"stop[{index}]")

    def _tools(self, body: Mapping[str, Any]) -> None:
        if "tools" not in body:
            return
        tools = body["tools"]
        if not isinstance(tools, list):
            self.fail("array", json_kind(tools), "tools")
            return
        if len(tools) > MAX_TOOLS:
            self.fail(f"array with at most {MAX_TOOLS} items", f"{len(tools)} items", "tools")
        for index, tool in enumerate(tools):
            path = f"tools[{index}]"
            if not self._object(tool, path):
                continue
            if tool.get("type") != "function":
                self.fail("'function'", show_value(tool.get("type")) if "type" in tool else "undefined", f"{path}.type")
            function = tool.get("function")
            if not self._object(function, f"{path}.function"):
                continue
            self._name(function, f"{path}.function.name")
            if "description" in function:
                self._string(function, "description", f"{path}.function.description", required=False)
            if "parameters" not in function:
                self.fail("object", "undefined", f"{path}.function.parameters")
            else:
                self._object(function["parameters"], f"{path}.function.parameters")
            strict = function.get("strict")
            if strict is not None and not isinstance(strict, bool):
                self.fail("boolean | null", json_kind(strict), f"{path}.function.strict")

    def _name(self, container: Mapping[str, Any], path: str) -> None:
        if self._string(container, "name", path, required=True) and not NAME_PATTERN.match(container["name"]):
            self.fail(f"string matching /{NAME_PATTERN.pattern}/", show_value(container["name"]), path)

    def _tool_choice(self, body: Mapping[str, Any]) -> None:
        if "tool_choice" not in body:
            return
        choice = body["tool_choice"]
        if isinstance(choice, str):
            if choice not in TOOL_CHOICES:
                self.fail(one_of(TOOL_CHOICES), show_value(choice), "tool_choice")
            return
        if not isinstance(choice, Mapping):
            self.fail("string | object", json_kind(choice), "tool_choice")
            return
        if choice.get("type") != "function":
            self.fail("'function'", show_value(choice.get("type")), "tool_choice.type")
        function = choice.get("function")
        if not self._object(function, "tool_choice.function"):
            return
        if not self._string(function, "name", "tool_choice.function.name", required=True):
            return
        names = [
            t["function"].get("name")
            for t in body.get("tools") or []
            if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
        ]
        if function["name"] not in names:
            self.fail("the name of a function in tools", show_value(function["name"]), "tool_choice.function.name")

    def _response_format(self, body: Mapping[str, Any]) -> None:
        if "response_format" not in body:
            return
        fmt = body["response_format"]
        if not self._object(fmt, "response_format"):
            return
        kinds = ("text", "json_object", "json_schema")
        kind = fmt.get("type")
        if kind not in kinds:
            self.fail(one_of(kinds), show_value(kind) if "type" in fmt else "undefined", "response_format.type")
            return
        if kind != "json_schema":
            return
        spec = fmt.get("json_schema")
        if not self._object(spec, "response_format.json_schema"):
            return
        self._name(spec, "response_format.json_schema.name")
        if "schema" in spec:
            self._object(spec["schema"], "response_format.json_schema.schema")
        strict = spec.get("strict")
        if strict is not None and not isinstance(strict, bool):
            self.fail("boolean | null", json_kind(strict), "response_format.json_schema.strict")
        if "description" in spec:
            self._string(spec, "description", "response_format.json_schema.description", required=False)

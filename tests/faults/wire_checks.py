"""Independent checks of a request body against the documented ranges (/work/shared/docs/aimlapi-api.md §2).

Written from the API page, not from the provider's models, to cross-check what the provider lets through. The
emulator's own validator (``airflow_provider_aiml.testing.validation``) is the second, separate check.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.validation import validate_chat_body

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# "stream_options: {include_usage: boolean} (key required inside the object)"; the tool and function objects and
# both levels of a json_schema format have additionalProperties: false; system and tool messages take no extra keys.
_TOOL_KEYS = {"type", "function"}
_FUNCTION_KEYS = {"name", "description", "parameters", "strict"}
_FORMAT_KEYS = {"type", "json_schema"}
_SCHEMA_SPEC_KEYS = {"name", "schema", "strict", "description"}
_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def strict_json(raw: bytes) -> Any:
    """Decode a body as standard JSON: ``NaN``/``Infinity`` are not JSON and fail here."""

    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(raw, parse_constant=reject)


def wire_errors(body: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a body: the emulator's validator, then the documented rules it does not cover."""
    return validate_chat_body(body) + doc_errors(body)


def doc_errors(body: Mapping[str, Any]) -> list[str]:
    """The documented rules the emulator's validator does not check."""
    errors: list[str] = []
    for index, message in enumerate(body.get("messages") or []):
        if not isinstance(message, Mapping):
            continue
        allowed = _MESSAGE_KEYS.get(message.get("role"))  # type: ignore[arg-type]
        if allowed is not None and set(message) - allowed:
            errors.append(f"messages[{index}] has keys the schema does not allow: {sorted(set(message) - allowed)}")
    options = body.get("stream_options")
    if "stream_options" in body and not (
        isinstance(options, Mapping)
        and set(options) == {"include_usage"}
        and isinstance(options["include_usage"], bool)
    ):
        errors.append("stream_options must be {include_usage: boolean}")
    if "prediction" in body:
        errors += _prediction(body["prediction"])
    for index, tool in enumerate(body.get("tools") or [] if isinstance(body.get("tools"), list) else []):
        if isinstance(tool, Mapping):
            if set(tool) - _TOOL_KEYS:
                errors.append(f"tools[{index}] has extra keys")
            function = tool.get("function")
            if isinstance(function, Mapping) and set(function) - _FUNCTION_KEYS:
                errors.append(f"tools[{index}].function has extra keys")
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if set(fmt) - _FORMAT_KEYS:
            errors.append("response_format has extra keys")
        spec = fmt.get("json_schema")
        if fmt.get("type") == "json_schema" and isinstance(spec, Mapping) and set(spec) - _SCHEMA_SPEC_KEYS:
            errors.append("response_format.json_schema has extra keys")
    for key in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stream", "tool_choice"):
        if key in body and body[key] is None:
            errors.append(f"{key} is not nullable")
    for key, value in body.items():
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{key} is not a finite number")
    return errors


def _prediction(value: Any) -> list[str]:
    if not isinstance(value, Mapping) or value.get("type") != "content" or set(value) != {"type", "content"}:
        return ["prediction must be {type: 'content', content}"]
    content = value["content"]
    if isinstance(content, str):
        return []
    if isinstance(content, list) and all(
        isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return []
    return ["prediction.content must be a string or a list of text parts"]


def culprits(errors: list[str]) -> set[str]:
    """The top-level body keys the errors are about (``messages`` for anything inside the messages)."""
    names = set()
    for error in errors:
        found = re.search(r'at "([A-Za-z_]+)', error) or re.match(r"([A-Za-z_]+)", error)
        if found:
            names.add(found.group(1))
    return names

"""Per-model checks of a chat-completions body, beyond the shared ones of :mod:`.validation`.

:func:`model_errors` checks the top-level parameters a model's schema takes (types, ranges, enums, ``nullable``,
nested objects), refuses inputs and features it lacks (images, files, tools, ``json_schema`` output, roles) and
the Claude rule ``thinking.budget_tokens < max_tokens``. Keys the model's schema does not list are ignored, as the
API ignores them (several Qwen pages send ``enable_thinking`` though their schemas lack it); refusing a reasoning
switch the model has no control for is the provider's job, before sending. Errors read like those of
:func:`.validation.validate_chat_body`: ``Expected number <= 1, received 1.5 at "temperature"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.model_specs import ModelSpec
from airflow_provider_aiml.testing.validation import json_kind, one_of, show_value

SHARED_KEYS = frozenset({"model", "messages", "stream", "stream_options"})
"""Top-level keys left to :func:`.validation.validate_chat_body` alone."""
SHALLOW_KEYS = frozenset({"tools", "tool_choice", "response_format"})
"""Keys whose shape :func:`.validation.validate_chat_body` checks; only the model's capabilities are checked here."""


def model_errors(spec: ModelSpec, body: Mapping[str, Any]) -> list[str]:
    """The errors of a chat-completions ``body`` for the model of ``spec`` (empty when it takes the body)."""
    errors = _message_errors(spec, body.get("messages"))
    for key, value in body.items():
        if key in SHARED_KEYS:
            continue
        if key not in spec.properties:
            if key == "tools" and value:
                errors.append(f"Model {spec.model_id} does not support tools")
            elif key == "response_format" and _is_json_schema(value):
                errors.append(f"Model {spec.model_id} does not support structured output (json_schema)")
            continue
        if key == "response_format" and _is_json_schema(value) and not spec.structured_output:
            errors.append(f"Model {spec.model_id} does not support structured output (json_schema)")
        if key not in SHALLOW_KEYS:
            errors.extend(schema_errors(spec.properties[key], value, key))
    errors.extend(_budget_errors(spec, body))
    if spec.thinks_only_streamed and body.get("enable_thinking") is True and body.get("stream") is not True:
        errors.append("enable_thinking must be set to false for non-streaming calls")
    return errors


def schema_errors(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """The errors of ``value`` against one property schema of :mod:`.schema_parts` (``path`` names it)."""
    members = schema.get("oneOf") or schema.get("anyOf")
    if members:
        return _alternative_errors(members, value, path)
    if value is None:
        return [] if schema.get("nullable") or "type" not in schema else [_fail(_expected(schema), "null", path)]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return _number_errors(schema, value, path)
    if kind is not None and not _has_kind(kind, value):
        return [_fail(kind, json_kind(value), path)]
    if "enum" in schema and value not in schema["enum"]:
        return [_fail(one_of(schema["enum"]), show_value(value), path)]
    if kind == "object":
        return _object_errors(schema, value, path)
    if kind == "array" and "items" in schema:
        return [error for i, item in enumerate(value) for error in schema_errors(schema["items"], item, f"{path}[{i}]")]
    return []


def _alternative_errors(members: list[Mapping[str, Any]], value: Any, path: str) -> list[str]:
    """Valid when a member is; else the errors of the first member of the value's JSON type, or one error."""
    outcomes = [schema_errors(member, value, path) for member in members]
    if any(not errors for errors in outcomes):
        return []
    for member, errors in zip(members, outcomes, strict=True):
        if "type" in member and _has_kind(member["type"], value):
            return errors
    return [_fail(" | ".join(_expected(member) for member in members), json_kind(value), path)]


def _number_errors(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    expected = schema["type"]
    if not _has_kind(expected, value):
        return [_fail(expected, json_kind(value), path)]
    if isinstance(value, float) and not math.isfinite(value):  # (a huge JSON integer is finite: no float() of it)
        return [_fail(expected, "non-finite number", path)]
    if expected == "integer" and isinstance(value, float) and not value.is_integer():
        return [_fail("integer", "float", path)]
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and value < low:
        return [_fail(f"{expected} >= {low:g}", show_value(value), path)]
    if high is not None and value > high:
        return [_fail(f"{expected} <= {high:g}", show_value(value), path)]
    return []


def _object_errors(schema: Mapping[str, Any], value: Mapping[str, Any], path: str) -> list[str]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    errors = [
        _fail(_expected(properties.get(key, {})), "undefined", f"{path}.{key}")
        for key in schema.get("required", [])
        if key not in value
    ]
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            errors.extend(schema_errors(properties[key], item, f"{path}.{key}"))
        elif extra is False:
            errors.append(_fail("never", json_kind(item), f"{path}.{key}"))
        elif isinstance(extra, Mapping):
            errors.extend(schema_errors(extra, item, f"{path}.{key}"))
    return errors


def _message_errors(spec: ModelSpec, messages: Any) -> list[str]:
    """Roles the model does not take, and image or file parts it cannot read."""
    errors: list[str] = []
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, Mapping):
            continue
        if "role" in message and message["role"] not in spec.roles:
            errors.append(_fail(one_of(spec.roles), show_value(message["role"]), f"messages[{i}].role"))
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else []):
            kind = part.get("type") if isinstance(part, Mapping) else None
            where = f'(at "messages[{i}].content[{j}]")'
            if kind == "image_url" and not spec.vision:
                errors.append(f"Model {spec.model_id} does not support image input {where}")
            elif kind == "file" and not spec.file_input:
                errors.append(f"Model {spec.model_id} does not support file input {where}")
    return errors


def _budget_errors(spec: ModelSpec, body: Mapping[str, Any]) -> list[str]:
    """``thinking.budget_tokens`` must stay below ``max_tokens`` (the Claude schema's description says so)."""
    if "budget_tokens" not in spec.properties.get("thinking", {}).get("properties", {}):
        return []
    thinking, max_tokens = body.get("thinking"), body.get("max_tokens")
    budget: Any = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    if not (_has_kind("number", budget) and _has_kind("number", max_tokens)) or budget < max_tokens:
        return []
    return [_fail(f"number < {show_value(max_tokens)} (max_tokens)", show_value(budget), "thinking.budget_tokens")]


def _is_json_schema(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "json_schema"


def _has_kind(kind: str, value: Any) -> bool:
    """Whether ``value`` has the JSON type ``kind`` (an integral float counts as an ``integer`` here)."""
    if kind == "integer":
        return json_kind(value) == "number"
    return json_kind(value) == kind


def _expected(schema: Mapping[str, Any]) -> str:
    """What a schema takes, as the ``Expected ...`` of an error says it."""
    if "enum" in schema:
        return one_of(schema["enum"])
    members = schema.get("oneOf") or schema.get("anyOf")
    if members:
        return " | ".join(_expected(member) for member in members)
    if "type" in schema:
        return str(schema["type"])
    return "null" if schema.get("nullable") else "any"


def _fail(expected: str, received: str, path: str) -> str:
    return f'Expected {expected}, received {received} at "{path}"'

"""JSON-Schema fragments shared by the per-model chat request schemas (shaped as in the API's OpenAPI files).

Each function returns a fresh dict, so a caller may change what it gets.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    nullable: bool = False,
    default: Any = None,
    integer: bool = False,
) -> Schema:
    """A ``number`` (or ``integer``) property with the given keywords."""
    schema: Schema = {"type": "integer" if integer else "number"}
    if nullable:
        schema["nullable"] = True
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if default is not None:
        schema["default"] = default
    return schema


def boolean(*, nullable: bool = False, default: bool | None = None) -> Schema:
    """A ``boolean`` property."""
    schema: Schema = {"type": "boolean"}
    if nullable:
        schema["nullable"] = True
    if default is not None:
        schema["default"] = default
    return schema


def choice(*values: str, default: str | None = None) -> Schema:
    """A ``string`` property limited to ``values``."""
    schema: Schema = {"type": "string", "enum": list(values)}
    if default is not None:
        schema["default"] = default
    return schema


def text_part() -> Schema:
    """``{type: "text", text}``."""
    return {
        "type": "object",
        "properties": {"type": choice("text"), "text": {"type": "string"}},
        "required": ["type", "text"],
    }


def image_url_part() -> Schema:
    """``{type: "image_url", image_url: {url, detail?}}`` (vision models only)."""
    image = {
        "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"}, "detail": choice("low", "high", "auto")},
        "required": ["url"],
    }
    return {
        "type": "object",
        "properties": {"type": choice("image_url"), "image_url": image},
        "required": ["type", "image_url"],
    }


def file_part() -> Schema:
    """``{type: "file", file: {file_data?, filename?}}`` (models with file input)."""
    file = {"type": "object", "properties": {"file_data": {"type": "string"}, "filename": {"type": "string"}}}
    return {"type": "object", "properties": {"type": choice("file"), "file": file}, "required": ["type", "file"]}


def _text_content() -> Schema:
    return {"anyOf": [{"type": "string"}, {"type": "array", "items": text_part()}]}


def _message(role: str, vision: bool, file_input: bool) -> Schema:
    name = {"type": "string"}
    if role == "user":
        parts = [text_part()] + ([image_url_part()] if vision else []) + ([file_part()] if file_input else [])
        content = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": parts}}]}
        return {
            "type": "object",
            "properties": {"role": choice("user"), "content": content, "name": name},
            "required": ["role", "content"],
        }
    if role in ("system", "developer"):
        return {
            "type": "object",
            "properties": {"role": choice(role), "content": _text_content(), "name": name},
            "required": ["role", "content"],
            "additionalProperties": False,
        }
    if role == "tool":
        return {
            "type": "object",
            "properties": {
                "role": choice("tool"),
                "content": {"type": "string"},
                "tool_call_id": {"type": "string"},
                "name": {"type": "string", "nullable": True},
            },
            "required": ["role", "content", "tool_call_id"],
            "additionalProperties": False,
        }
    return _assistant_message()


def _assistant_message() -> Schema:
    refusal = {
        "type": "object",
        "properties": {"refusal": {"type": "string"}, "type": choice("refusal")},
        "required": ["refusal", "type"],
    }
    call = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": choice("function"),
            "function": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
                "required": ["name", "arguments"],
            },
        },
        "required": ["id", "type", "function"],
    }
    content = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": [text_part(), refusal]}}]}
    return {
        "type": "object",
        "properties": {
            "role": choice("assistant"),
            "content": content,
            "name": {"type": "string"},
            "tool_calls": {"type": "array", "items": call},
            "refusal": {"type": "string", "nullable": True},
        },
        "required": ["role"],
    }


def messages(roles: tuple[str, ...], *, vision: bool, file_input: bool) -> Schema:
    """The ``messages`` array: one ``oneOf`` alternative per role; user parts per the model's inputs."""
    return {"type": "array", "items": {"oneOf": [_message(role, vision, file_input) for role in roles]}}


def stream_options() -> Schema:
    """``{include_usage: boolean}`` with the key required."""
    return {"type": "object", "properties": {"include_usage": boolean()}, "required": ["include_usage"]}


def tools() -> Schema:
    """Function tools (``parameters`` required, ``additionalProperties: false`` on both levels)."""
    function = {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "name": {"type": "string"},
            "parameters": {"type": "object", "additionalProperties": {"nullable": True}},
            "strict": boolean(nullable=True),
        },
        "required": ["name", "parameters"],
        "additionalProperties": False,
    }
    tool = {
        "type": "object",
        "properties": {"type": choice("function"), "function": function},
        "required": ["type", "function"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": tool}


def tool_choice() -> Schema:
    """``"none" | "auto" | "required"`` or ``{type: "function", function: {name}}``."""
    forced = {
        "type": "object",
        "properties": {
            "type": choice("function"),
            "function": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        },
        "required": ["type", "function"],
    }
    return {"anyOf": [choice("none", "auto", "required"), forced]}


def stop() -> Schema:
    """A string, a list of strings, or null."""
    return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"nullable": True}]}


def prediction() -> Schema:
    """A Predicted Output: ``{type: "content", content: string | [text parts]}``."""
    content = {"anyOf": [{"type": "string"}, {"type": "array", "items": text_part()}]}
    return {
        "type": "object",
        "properties": {"type": choice("content"), "content": content},
        "required": ["type", "content"],
    }


def response_format() -> Schema:
    """``text``, ``json_object`` or ``json_schema`` (a named schema)."""
    spec = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "schema": {"type": "object", "additionalProperties": {"nullable": True}},
            "strict": boolean(nullable=True),
            "description": {"type": "string"},
        },
        "required": ["name"],
        "additionalProperties": False,
    }

    def variant(kind: str, **extra: Schema) -> Schema:
        return {
            "type": "object",
            "properties": {"type": choice(kind), **extra},
            "required": ["type", *extra],
            "additionalProperties": False,
        }

    return {"oneOf": [variant("text"), variant("json_object"), variant("json_schema", json_schema=spec)]}


def logit_bias() -> Schema:
    """Token id -> bias in [-100, 100], or null."""
    return {"type": "object", "nullable": True, "additionalProperties": number(minimum=-100, maximum=100)}


def string_list() -> Schema:
    """An array of strings."""
    return {"type": "array", "items": {"type": "string"}}

"""A model's own request schema (the OpenAPI document the catalog links), read into parameter rules.

Only what the provider checks is kept: for each top-level body key its JSON types, numeric range, allowed
values and nullability (and the same, one level down, for object parameters such as ``reasoning`` or
``thinking``), and whether user messages may carry images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aiml.parameters import NumericRange

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
TOKEN_COUNTS = frozenset({"max_tokens", "max_completion_tokens", "max_output_tokens", "thinking_budget"})
"""Parameters that count tokens: whole numbers whatever type the schema gives (some type them ``number``)."""
_JSON_TYPES = {"integer", "number", "boolean", "string", "object", "array", "null"}


@dataclass(frozen=True)
class ParameterRule:
    """What one body key (or one key of an object parameter) accepts."""

    name: str
    types: frozenset[str] = frozenset()
    """JSON types; empty when the schema does not say (then any value passes)."""
    range: NumericRange | None = None
    enum: tuple[Any, ...] | None = None
    nullable: bool = False
    fields: Mapping[str, ParameterRule] = field(default_factory=dict)
    enum_types: frozenset[str] = frozenset()
    """The JSON types ``enum`` binds (empty: every type). Of ``"none" | "auto" | {"type": "function", ...}`` the
    enum binds the strings only."""

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, in words, or ``None`` when the rule takes it."""
        if value is None:
            return None if self.nullable or not self.types or "null" in self.types else "must not be null"
        kind = _json_type(value)
        if self.enum is not None and _binds(self.enum_types, kind) and value not in self.enum:
            return f"must be one of {', '.join(map(repr, self.enum))}"
        if self.types and kind not in self.types and not (kind == "integer" and "number" in self.types):
            return f"must be {' or '.join(sorted(self.types))}"
        if self.range is not None and kind in ("integer", "number") and not self.range.accepts(value):
            return f"must be {self.range.describe()}"
        if kind == "object" and self.fields:
            for key, inner in value.items():
                rule = self.fields.get(key)
                found = rule.problem(inner) if rule is not None else None
                if found:
                    return f"[{key!r}] {found}"
        return None

    def describe(self) -> str:
        """The rule in a few words, for the parameters page and errors: ``number, from 0 to 1``."""
        if self.enum is not None:
            return " | ".join(map(repr, self.enum))
        kinds = " or ".join(sorted(self.types - {"null"})) or "any"
        if self.range is None:
            return kinds
        bounds = self.range.describe().removeprefix("a whole number").removeprefix("a number").strip()
        return f"{kinds}, {bounds}" if bounds else kinds


@dataclass(frozen=True)
class RequestSchema:
    """The parameters a model takes, read from its OpenAPI document."""

    parameters: Mapping[str, ParameterRule]
    vision: bool | None
    """Whether a user message may carry ``image_url`` parts; ``None`` when the schema does not say."""

    @classmethod
    def from_openapi(cls, document: Any) -> RequestSchema | None:
        """Read the chat-completions request schema of an OpenAPI document; ``None`` if it has none."""
        body = _chat_body_schema(document)
        if body is None:
            return None
        properties = body.get("properties")
        if not isinstance(properties, Mapping):
            return None
        parameters = {name: _rule(name, spec) for name, spec in properties.items() if isinstance(spec, Mapping)}
        return cls(parameters, _takes_images(properties.get("messages")))


def _chat_body_schema(document: Any) -> Mapping[str, Any] | None:
    paths = document.get("paths") if isinstance(document, Mapping) else None
    if not isinstance(paths, Mapping):
        return None
    for path in CHAT_PATHS:
        schema = _dig(paths, path, "post", "requestBody", "content", "application/json", "schema")
        if isinstance(schema, Mapping):
            return schema
    return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _members(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The schema and the members of its ``anyOf``/``oneOf``, nested ones included (the newest Anthropic files
    nest a ``oneOf`` in an ``anyOf``), the ones that are objects."""
    members = [spec]
    for key in ("anyOf", "oneOf"):
        for member in spec.get(key) or ():
            if isinstance(member, Mapping):
                members += _members(member)
    return members


def _rule(name: str, spec: Mapping[str, Any]) -> ParameterRule:
    types: set[str] = set()
    enum: list[Any] | None = None
    bounds: NumericRange | None = None
    nullable = bool(spec.get("nullable"))
    field_specs: dict[str, list[Mapping[str, Any]]] = {}
    enum_types: set[str] = set()
    free_types: set[str] = set()  # types some member takes without an enum: the enum does not bind them
    for member in _members(spec):
        kind = member.get("type")
        kinds = [one for one in (kind if isinstance(kind, list) else [kind]) if one in _JSON_TYPES]
        types.update(kinds)
        nullable = nullable or bool(member.get("nullable"))
        if isinstance(member.get("enum"), list):
            enum = [*(enum or []), *member["enum"]]
            enum_types.update(kinds or (_json_type(value) for value in member["enum"]))
        elif not any(isinstance(member.get(key), list) for key in ("anyOf", "oneOf")):  # a leaf, not a wrapper
            free_types.update(kinds)
        if bounds is None and any(one in ("integer", "number") for one in kinds):
            bounds = _range(name, member)
        if isinstance(member.get("properties"), Mapping):
            for key, inner in member["properties"].items():
                if isinstance(inner, Mapping):
                    field_specs.setdefault(key, []).append(inner)
    # a key several members describe (``response_format``'s ``type``: text | json_object | json_schema) takes
    # what any of them takes
    fields = {key: _rule(key, specs[0] if len(specs) == 1 else {"anyOf": specs}) for key, specs in field_specs.items()}
    enum_types -= free_types
    if enum is not None and not enum_types:
        enum = None
    if "null" in types:
        nullable = True
    if name in TOKEN_COUNTS and "number" in types:
        types = (types - {"number"}) | {"integer"}
        if bounds is not None:
            bounds = NumericRange(int, ge=bounds.ge, le=bounds.le, gt=bounds.gt)
    only_enum = enum is not None and all(not isinstance(v, dict | list) for v in enum)
    return ParameterRule(
        name,
        frozenset(types),
        bounds,
        tuple(dict.fromkeys(enum)) if only_enum and enum is not None else None,
        nullable,
        fields,
        frozenset(enum_types),
    )


def _range(name: str, member: Mapping[str, Any]) -> NumericRange | None:
    kind = member.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    whole = ("integer" in kinds and "number" not in kinds) or name in TOKEN_COUNTS
    low, high = _number(member.get("minimum")), _number(member.get("maximum"))
    exclusive = member.get("exclusiveMinimum")
    gt = None
    if exclusive is True and low is not None:  # OpenAPI 3.0: a flag on ``minimum``
        low, gt = None, low
    elif _number(exclusive) is not None:  # 3.1: the bound itself
        gt = _number(exclusive)
    if low is None and high is None and gt is None:
        return NumericRange(int) if whole else None
    return NumericRange(int if whole else float, ge=low, le=high, gt=gt)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def _takes_images(messages: Any) -> bool | None:
    """Whether some message part of the schema is an ``image_url`` part (a part type or key of that name)."""
    if not isinstance(messages, Mapping):
        return None
    return _names_image_part(messages)


def _names_image_part(value: Any) -> bool:
    if isinstance(value, Mapping):
        if "image_url" in value or "image_url" in (value.get("enum") or ()):
            return True
        return any(_names_image_part(inner) for inner in value.values())
    if isinstance(value, list):
        return any(_names_image_part(inner) for inner in value)
    return False


def _binds(enum_types: frozenset[str], kind: str) -> bool:
    return not enum_types or kind in enum_types or (kind == "integer" and "number" in enum_types)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__

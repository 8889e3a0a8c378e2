"""Deterministic synthesis of a JSON value that matches a (practical subset of) JSON Schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 8
_TEXT_KEYS = frozenset(
    {"summary", "answer", "text", "content", "description", "result", "response", "output", "message"}
)
_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def synthesize_instance(schema: Any, *, text: str = "sample text") -> Any:
    """A value valid for ``schema``: every object property, one array item, first enum/const.

    ``text`` is used for string properties with summary-like names (``summary``, ``answer``...).
    Supports ``$ref`` to ``#/$defs``/``#/definitions``, ``anyOf``/``oneOf`` (first non-null),
    ``allOf`` (merged), type lists, numeric bounds, string lengths and array sizes.
    """
    return _Synthesizer(schema, text).value(schema, "value", 0)


class _Synthesizer:
    def __init__(self, root: Any, text: str) -> None:
        self._root = root
        self._text = text

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return self._string({}, name)
        if "$ref" in schema:
            target = self._resolve(schema["$ref"])
            if target is None or depth >= _MAX_DEPTH:
                return None
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.value(merged, name, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return next((item for item in enum if item is not None), enum[0])
        if "default" in schema:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.value(_first_non_null(options), name, depth + 1)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            return self.value(self._merge(schema, all_of), name, depth + 1)
        kind = _schema_type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, ref: Any) -> Mapping[str, Any] | None:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        node: Any = self._root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, Mapping) else None

    def _merge(self, schema: Mapping[str, Any], parts: list[Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = dict(merged.get("properties") or {})
        required: list[Any] = list(merged.get("required") or [])
        for part in parts:
            resolved = self._resolve(part["$ref"]) if isinstance(part, Mapping) and "$ref" in part else part
            if not isinstance(resolved, Mapping):
                continue
            properties.update(resolved.get("properties") or {})
            required.extend(resolved.get("required") or [])
            for key, value in resolved.items():
                if key not in ("properties", "required"):
                    merged.setdefault(key, value)
        if properties:
            merged["properties"] = properties
            merged.setdefault("type", "object")
        if required:
            merged["required"] = required
        return merged

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        keys = list(properties)
        if depth >= _MAX_DEPTH:
            required = schema.get("required") or []
            keys = [key for key in keys if key in required]
        return {key: self.value(properties[key], key, depth + 1) for key in keys}

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        min_items = _count(schema.get("minItems")) or 0
        max_items = _count(schema.get("maxItems"))
        count = max(1, min_items) if depth < _MAX_DEPTH else min_items
        if max_items is not None:
            count = min(count, max_items)
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        result: list[Any] = []
        for index in range(count):
            if isinstance(prefix, list) and index < len(prefix):
                result.append(self.value(prefix[index], name, depth + 1))
            elif isinstance(items, list):  # draft-04 tuple form
                item_schema = items[index] if index < len(items) else {}
                result.append(self.value(item_schema, name, depth + 1))
            else:
                result.append(self.value(items if items is not None else {}, name, depth + 1))
        return result

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            value = _FORMATS[fmt]
        elif name.lower() in _TEXT_KEYS:
            value = self._text
        else:
            value = f"sample {name}"
        min_length = _count(schema.get("minLength")) or 0
        max_length = _count(schema.get("maxLength"))
        if len(value) < min_length:
            value = value + "x" * (min_length - len(value))
        if max_length is not None:
            value = value[:max_length]
        return value


def _first_non_null(options: list[Any]) -> Any:
    for option in options:
        if isinstance(option, Mapping) and option.get("type") == "null":
            continue
        return option
    return options[0]


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        kind = non_null[0] if non_null else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    low_exclusive = high_exclusive = False
    ex_low = schema.get("exclusiveMinimum")
    ex_high = schema.get("exclusiveMaximum")
    if _is_number(ex_low):
        low, low_exclusive = ex_low, True
    elif ex_low is True:
        low_exclusive = True
    if _is_number(ex_high):
        high, high_exclusive = ex_high, True
    elif ex_high is True:
        high_exclusive = True
    return _as_float(low), _as_float(high), low_exclusive, high_exclusive


def _integer(schema: Mapping[str, Any]) -> int:
    low, high, low_exclusive, high_exclusive = _bounds(schema)
    value = 1
    if low is not None and value <= low:
        value = int(low) + 1 if low_exclusive or low != int(low) else int(low)
    if high is not None and value >= high:
        value = int(high) - 1 if high_exclusive and high == int(high) else int(high // 1)
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low, high, low_exclusive, high_exclusive = _bounds(schema)

    def fits(candidate: float) -> bool:
        above = low is None or candidate > low or (not low_exclusive and candidate == low)
        below = high is None or candidate < high or (not high_exclusive and candidate == high)
        return above and below

    value = 1.5
    if low is not None and not fits(value):
        value = low + 1 if low_exclusive else low
    if high is not None and not fits(value):
        value = high - 1 if high_exclusive else high
    if low is not None and high is not None and not fits(value):
        value = (low + high) / 2
    return value


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _as_float(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

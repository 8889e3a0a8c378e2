"""The JSON-schema instance synthesizer used for json_schema replies and tool-call arguments."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aiml.testing.schema_instance import synthesize_instance


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "exclusiveMinimum": 5}, 6),
        ({"type": "integer", "maximum": 0}, 0),
        ({"type": "number", "minimum": 2, "maximum": 3}, 2.0),
        ({"type": "number", "maximum": 1}, 1.0),
        ({"type": ["null", "boolean"]}, True),
        ({"type": "string", "format": "date-time"}, "2025-01-01T00:00:00Z"),
        ({"type": "string", "minLength": 20}, "sample valuexxxxxxxx"),
        ({"type": "string", "maxLength": 3}, "sam"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3}, [1, 1, 1]),
        ({"type": "array", "maxItems": 0}, []),
        ({"oneOf": [{"type": "null"}, {"type": "string", "enum": ["a", "b"]}]}, "a"),
        ({"type": "string", "default": "dflt"}, "dflt"),
        ({"enum": [None, 3]}, 3),
        ({"type": "null"}, None),
    ],
)
def test_scalars_respect_their_constraints(schema: dict[str, Any], expected: Any) -> None:
    assert synthesize_instance(schema) == expected


def test_all_of_is_merged_and_text_fields_get_the_summary() -> None:
    schema = {
        "allOf": [
            {"$ref": "#/$defs/Base"},
            {"properties": {"answer": {"type": "string"}}, "required": ["answer"]},
        ],
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}}},
    }
    assert synthesize_instance(schema, text="Summary: x") == {"id": 1, "answer": "Summary: x"}


def test_recursive_schemas_terminate() -> None:
    schema = {
        "$ref": "#/definitions/Node",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                },
                "required": ["name"],
            }
        },
    }
    node = synthesize_instance(schema)
    depth = 0
    while node.get("children"):
        node = node["children"][0]
        depth += 1
    assert 1 <= depth <= 8
    assert node["name"] == "sample name"


def test_unresolvable_ref_gives_null() -> None:
    assert synthesize_instance({"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}) == {"x": None}

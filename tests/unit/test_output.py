"""Structured (JSON) answers: when JSON is wanted and how it is decoded."""

from __future__ import annotations

import ast

import pytest

from airflow_provider_aiml.exceptions import AimlApiError, AimlOutputParseError
from airflow_provider_aiml.output import decode_json, wants_json


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, True),
        ({"type": "json_schema", "json_schema": {"name": "answer"}}, True),
        ({"type": "text"}, False),
        ({}, False),
        (None, False),
        ("json_object", False),
        ({"type": "JSON_OBJECT"}, False),
        ({"json_schema": {"name": "x"}}, False),
    ],
)
def test_wants_json(response_format, expected):
    assert wants_json(response_format) is expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"city": "Oslo", "temp": -3.5}', {"city": "Oslo", "temp": -3.5}),
        ('  \n{"a": [1, 2]}\n  ', {"a": [1, 2]}),
        ("[1, 2, 3]", [1, 2, 3]),
        ("42", 42),
        ('"text"', "text"),
        ("null", None),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```JSON\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('\n  ```json\n{"a": 1}\n```  \n', {"a": 1}),
        ('```json\n{"a": 1}```', {"a": 1}),
        ('```json\n{\n  "multi": "line",\n  "n": 2\n}\n```', {"multi": "line", "n": 2}),
        ('```json\n{"code": "```"}\n```', {"code": "```"}),
    ],
)
def test_decode_json(content, expected):
    assert decode_json(content) == expected


@pytest.mark.parametrize(
    ("content", "error_text"),
    [
        ('Sure! Here is the JSON: {"a": 1}', "Expecting value at position 0"),
        ('{"a": 1,}', "Expecting property name enclosed in double quotes at position 8"),
        ("", "Expecting value at position 0"),
        ('```json\n{"a": }\n```', "Expecting value at position 6"),
        ('```python\n{"a": 1}\n```', "Expecting value at position 0"),
        ('{"a": 1} trailing', "Extra data at position 9"),
    ],
)
def test_bad_json_raises_with_a_preview(content, error_text):
    with pytest.raises(AimlOutputParseError) as caught:
        decode_json(content)

    message = str(caught.value)
    assert message.startswith("The model was asked for JSON but its answer does not decode (")
    assert f"({error_text})" in message
    assert message.endswith(f": {content!r}")
    assert isinstance(caught.value, AimlApiError)


def test_long_bad_answer_preview_is_cut_to_200_characters():
    content = "not json " + "x" * 500

    with pytest.raises(AimlOutputParseError) as caught:
        decode_json(content)

    preview = str(caught.value).split("): ", 1)[1]
    assert preview == repr(content[:197] + "...")
    assert len(ast.literal_eval(preview)) == 200


def test_answer_of_exactly_200_characters_is_shown_whole():
    content = "y" * 200

    with pytest.raises(AimlOutputParseError) as caught:
        decode_json(content)

    assert str(caught.value).endswith(f": {content!r}")

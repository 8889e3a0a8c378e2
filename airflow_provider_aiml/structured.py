"""Typed output: a pydantic model class becomes a strict ``json_schema`` response format and validates answers.

Used by the chat and batch operators' ``output_type``. When an answer does not validate, :func:`reask_messages`
builds the follow-up turn that shows the model its own answer and the validation errors.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from airflow_provider_aiml.exceptions import AimlOutputParseError, AimlOutputValidationError, AimlParameterError
from airflow_provider_aiml.output import decode_json, wants_json

_NAME_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")
_MAX_ERRORS_SHOWN = 8
TURNS_PER_REASK = 2
"""Messages a re-ask adds to the conversation: the rejected answer and the request to fix it."""


def check_output_type(output_type: Any, response_format: Any) -> None:
    """Reject an ``output_type`` that is not a pydantic model class, or one combined with ``response_format``."""
    if output_type is None:
        return
    if not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
        raise AimlParameterError(f"output_type must be a pydantic BaseModel subclass, got {output_type!r}")
    if response_format is not None:
        raise AimlParameterError("Give either output_type or response_format, not both: output_type sets the format.")


def response_format_for(output_type: type[BaseModel]) -> dict[str, Any]:
    """The strict ``json_schema`` response format derived from a pydantic model class."""
    schema = _close_objects(copy.deepcopy(output_type.model_json_schema()))
    name = _NAME_BAD_CHARS.sub("_", output_type.__name__)[:64] or "output"
    spec: dict[str, Any] = {"name": name, "strict": True, "schema": schema}
    doc = (output_type.__doc__ or "").strip()
    if doc and not doc.startswith(f"{output_type.__name__}("):  # pydantic's generated docstring says nothing
        spec["description"] = doc.splitlines()[0][:300]
    return {"type": "json_schema", "json_schema": spec}


def _close_objects(node: Any) -> Any:
    """Make a pydantic schema acceptable to strict structured output.

    Strict mode wants every object closed (``additionalProperties: false``) and every property listed in
    ``required``; a field with a default is still sent by the model (``null`` for an optional one, which its
    schema allows), so nothing is lost. ``default`` keywords are dropped for the same reason.
    """
    if isinstance(node, list):
        for item in node:
            _close_objects(item)
    elif isinstance(node, dict):
        node.pop("default", None)
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
            node["required"] = list(node["properties"])
        for key, value in node.items():
            if key in _NAMED_SCHEMAS and isinstance(value, dict):
                for schema in value.values():  # a mapping of names to schemas, not a schema itself
                    _close_objects(schema)
            else:
                _close_objects(value)
    return node


_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def parse_output(
    content: str, *, response_format: Mapping[str, Any] | None, output_type: type[BaseModel] | None
) -> Any:
    """The ``parsed`` value of an answer, or ``None`` when no JSON was asked for.

    With ``output_type`` the answer is validated and returned as ``model_dump(mode="json")``.
    """
    if output_type is None and not wants_json(response_format):
        return None
    data = decode_json(content)
    if output_type is None:
        return data
    try:
        return output_type.model_validate(data).model_dump(mode="json")
    except ValidationError as error:
        raise AimlOutputValidationError(
            f"The answer does not match {output_type.__name__}: {describe_validation_error(error)}"
        ) from None


def describe_validation_error(error: ValidationError) -> str:
    """A short, model-readable list of what is wrong with the answer."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    ]
    shown = "; ".join(problems[:_MAX_ERRORS_SHOWN])
    more = len(problems) - _MAX_ERRORS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def reask_messages(
    messages: Sequence[Mapping[str, Any]], answer: str, problem: AimlOutputParseError
) -> list[dict[str, Any]]:
    """The conversation extended by the rejected answer and a request to fix it."""
    return [
        *(dict(message) for message in messages),
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": (
                f"Your answer was rejected: {problem.message}\n"
                "Reply again with only the corrected JSON, matching the schema exactly."
            ),
        },
    ]

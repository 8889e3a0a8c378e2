"""Reads structured (JSON) answers: used when a task asks for ``json_object`` or ``json_schema`` output."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.exceptions import AimlOutputParseError

_JSON_FORMATS = frozenset({"json_object", "json_schema"})
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(?P<body>.*?)\n?```\s*$", re.DOTALL | re.IGNORECASE)


def wants_json(response_format: Mapping[str, Any] | None) -> bool:
    """Whether the answer was requested as JSON."""
    return isinstance(response_format, Mapping) and response_format.get("type") in _JSON_FORMATS


def decode_json(content: str) -> Any:
    """Decode a JSON answer; a Markdown code fence around it (some models add one) is tolerated."""
    fenced = _FENCE.match(content)
    text = fenced.group("body") if fenced else content
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        preview = content if len(content) <= 200 else content[:197] + "..."
        raise AimlOutputParseError(
            f"The model was asked for JSON but its answer does not decode ({error.msg} at position {error.pos}): "
            f"{preview!r}"
        ) from None

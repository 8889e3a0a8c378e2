"""What the emulator answers on ``POST /v1/embeddings``: deterministic vectors, usage and cost.

The same text (with the same model and dimensions) always gets the same unit vector, drawn from a generator
seeded by the text's hash; similar texts do not get similar vectors (nothing here understands text). Standard
library only, like the rest of the emulator.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.catalog import EMBEDDING_USD_PER_MILLION as USD_PER_MILLION_TOKENS
from airflow_provider_aiml.testing.catalog import find_model
from airflow_provider_aiml.testing.error_bodies import VALIDATION_MESSAGE
from airflow_provider_aiml.testing.model_specs import EMBEDDING_DIMENSIONS as NATIVE_DIMENSIONS
from airflow_provider_aiml.testing.replies import count_tokens
from airflow_provider_aiml.testing.validation import json_kind

SHORTENABLE = frozenset({"text-embedding-3-small", "text-embedding-3-large"})
"""Models that accept ``dimensions`` (ada-002 does not)."""
MAX_INPUTS = 2048
ENCODINGS = ("float", "base64")

Problem = tuple[int, str]
"""An HTTP status and the error message the API answers with."""


def model_id(model: str) -> str:
    """The catalog id of a requested embedding model (an alias such as ``openai/text-embedding-3-small`` works
    too); the requested name unchanged when the catalog has no embedding model of that name."""
    entry = find_model(model)
    return str(entry["id"]) if entry is not None and entry["type"] == "embedding" else model


def embedding_problem(payload: Any) -> Problem | None:
    """The status and message the API would refuse this body with, or ``None`` when it is fine.

    Shape errors (400) come first, then an unknown model (404, as for chat), then ``dimensions`` (400)."""
    if not isinstance(payload, Mapping):
        return _invalid("object", json_kind(payload), "body")
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        return _invalid("non-empty string", _received(payload, "model"), "model")
    problem = _input_problem(payload) or _encoding_problem(payload)
    if problem is not None:
        return problem
    if model_id(model) not in NATIVE_DIMENSIONS:
        return 404, f"Model {model} not found. The available models are listed at GET /v1/models."
    return _dimensions_problem(model_id(model), payload.get("dimensions"))


def _input_problem(payload: Mapping[str, Any]) -> Problem | None:
    inputs = payload.get("input")
    if isinstance(inputs, str):
        return _invalid("non-empty string", "''", "input") if not inputs else None
    if not isinstance(inputs, list):
        return _invalid("string | array of strings", _received(payload, "input"), "input")
    if not 1 <= len(inputs) <= MAX_INPUTS:
        return _invalid(f"array of 1 to {MAX_INPUTS} strings", f"{len(inputs)} items", "input")
    for index, item in enumerate(inputs):
        if not isinstance(item, str):
            return _invalid("string", json_kind(item), f"input[{index}]")
        if not item:
            return _invalid("non-empty string", "''", f"input[{index}]")
    return None


def _encoding_problem(payload: Mapping[str, Any]) -> Problem | None:
    encoding = payload.get("encoding_format")
    if encoding is None or encoding in ENCODINGS:
        return None
    return _invalid(" | ".join(repr(name) for name in ENCODINGS), repr(encoding), "encoding_format")


def _dimensions_problem(model: str, dimensions: Any) -> Problem | None:
    if dimensions is None:
        return None
    if model not in SHORTENABLE:
        expected = f"no value ({model} does not support dimensions, it always answers {NATIVE_DIMENSIONS[model]})"
        return _invalid(expected, repr(dimensions), "dimensions")
    native = NATIVE_DIMENSIONS[model]
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        return _invalid("integer", json_kind(dimensions), "dimensions")
    if not 1 <= dimensions <= native:
        return _invalid(f"integer between 1 and {native}", str(dimensions), "dimensions")
    return None


def _received(payload: Mapping[str, Any], key: str) -> str:
    return "undefined" if key not in payload else json_kind(payload[key])


def _invalid(expected: str, received: str, path: str) -> Problem:
    """A 400 worded like the chat validation errors."""
    return 400, f'{VALIDATION_MESSAGE} Expected {expected}, received {received} at "{path}"'


def embedding_response(payload: Mapping[str, Any]) -> tuple[dict[str, Any], int, float]:
    """The answer to a valid body, the tokens it used and what it cost in USD."""
    model = model_id(payload["model"])
    inputs = payload["input"]
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    size = payload.get("dimensions") or NATIVE_DIMENSIONS[model]
    as_base64 = payload.get("encoding_format") == "base64"
    tokens = sum(count_tokens(item) for item in items)
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector_for(item, model, size), as_base64)}
        for index, item in enumerate(items)
    ]
    document = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return document, tokens, usd_for(model, tokens)


def vector_for(text: str, model: str, size: int) -> list[float]:
    """A unit vector of ``size`` floats that depends only on the text, the model and the size."""
    seed = hashlib.sha256(f"{model}|{size}|{text}".encode()).digest()
    generator = random.Random(seed)
    values = [generator.random() - 0.5 for _ in range(size)]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [round(value / norm, 6) for value in values]


def _encoded(vector: list[float], as_base64: bool) -> list[float] | str:
    """The vector as floats, or (``encoding_format: base64``) as base64 of little-endian float32 values."""
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def usd_for(model: str, tokens: int) -> float:
    """What ``tokens`` input tokens of ``model`` cost in USD (``USD_PER_MILLION_TOKENS``)."""
    return round(tokens * USD_PER_MILLION_TOKENS[model] / 1e6, 9)

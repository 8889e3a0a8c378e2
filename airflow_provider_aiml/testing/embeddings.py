"""What the emulator answers on ``POST /v1/embeddings``: deterministic vectors, usage and cost.

The same text (with the same model and dimensions) always gets the same unit vector, drawn from a generator
seeded by the text's hash; similar texts do not get similar vectors (nothing here understands text). Standard
library only, like the rest of the emulator.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.replies import count_tokens

NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
SHORTENABLE = frozenset({"text-embedding-3-small", "text-embedding-3-large"})
"""Models that accept ``dimensions`` (ada-002 does not)."""
USD_PER_MILLION_TOKENS = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.1}
MAX_INPUTS = 2048
CREDITS_PER_USD = 2_000_000


def model_id(model: str) -> str:
    """The catalog id of a requested model (``openai/text-embedding-3-small`` works too)."""
    return model.removeprefix("openai/")


def embedding_problem(payload: Any) -> tuple[int, str] | None:
    """The status and message the API would refuse this body with, or ``None`` when it is fine."""
    if not isinstance(payload, Mapping):
        return 400, "Body validation error! Expected an object body"
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        return 400, "Body validation error! 'model': Required"
    if model_id(model) not in NATIVE_DIMENSIONS:
        return 404, f"Model {model} not found"
    inputs = payload.get("input")
    items = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(items, list) or not items:
        return 400, "Body validation error! 'input': Expected a string or a non-empty array of strings"
    if len(items) > MAX_INPUTS:
        return 400, f"Body validation error! 'input': Array must contain at most {MAX_INPUTS} element(s)"
    for index, item in enumerate(items):
        if not isinstance(item, str):
            return 400, f"Body validation error! 'input.{index}': Expected string, received {type(item).__name__}"
        if not item:
            return 400, f"Body validation error! 'input.{index}': String must contain at least 1 character(s)"
    dimensions = payload.get("dimensions")
    if dimensions is not None:
        native = NATIVE_DIMENSIONS[model_id(model)]
        if model_id(model) not in SHORTENABLE:
            return 400, f"Body validation error! 'dimensions' is not supported by {model}"
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= native:
            return 400, f"Body validation error! 'dimensions': Number must be between 1 and {native}"
    return None


def embedding_response(payload: Mapping[str, Any]) -> tuple[dict[str, Any], int, float]:
    """The answer to a valid body, the tokens it used and what it cost in USD."""
    model = model_id(payload["model"])
    inputs = payload["input"]
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    size = payload.get("dimensions") or NATIVE_DIMENSIONS[model]
    tokens = sum(count_tokens(item) for item in items)
    data = [
        {"object": "embedding", "index": index, "embedding": vector_for(item, model, size)}
        for index, item in enumerate(items)
    ]
    document = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return document, tokens, tokens * USD_PER_MILLION_TOKENS[model] / 1e6


def vector_for(text: str, model: str, size: int) -> list[float]:
    """A unit vector of ``size`` floats that depends only on the text, the model and the size."""
    seed = hashlib.sha256(f"{model}|{size}|{text}".encode()).digest()
    generator = random.Random(seed)
    values = [generator.random() - 0.5 for _ in range(size)]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [round(value / norm, 6) for value in values]


def credits_for(usd: float) -> int:
    """Whole credits of a USD amount, at least one for any paid call."""
    return max(1, round(usd * CREDITS_PER_USD)) if usd > 0 else 0

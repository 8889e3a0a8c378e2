"""Whether the emulated API takes a valid chat request: the model must be in the catalog, and the request must
fit the model's context length (prompt tokens plus the completion tokens it reserves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.catalog import find_model
from airflow_provider_aiml.testing.error_bodies import VALIDATION_MESSAGE
from airflow_provider_aiml.testing.replies import Completion


def admission_error(
    body: Mapping[str, Any], completion: Completion, *, serve_unknown_models: bool = False
) -> tuple[int, str] | None:
    """``(status, message)`` of the API's refusal, or ``None`` when the request is taken."""
    model = str(body["model"])
    entry = find_model(model)
    if entry is None:
        if serve_unknown_models:
            return None
        return 404, f"Model {model} not found. The available models are listed at GET /v1/models."
    context_length = (entry.get("info") or {}).get("contextLength")
    reserved = max(
        (v for v in (body.get("max_completion_tokens"), body.get("max_tokens")) if isinstance(v, int)), default=0
    )
    needed = completion.prompt_tokens + reserved
    if isinstance(context_length, int) and needed > context_length:
        return 400, (
            f"{VALIDATION_MESSAGE} This model's maximum context length is {context_length} tokens, but the request "
            f"has {completion.prompt_tokens} prompt tokens and asks for up to {reserved} completion tokens "
            f"({needed} in all)."
        )
    return None

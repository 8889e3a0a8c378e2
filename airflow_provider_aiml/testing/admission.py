"""Whether the emulated API takes a valid chat request: the model must be served (not deprecated, allowed by the
key's scopes, in the catalog), and the request must fit the model's context length (prompt tokens plus the
completion tokens it reserves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_aiml.testing.catalog_store import CatalogStore
from airflow_provider_aiml.testing.error_bodies import VALIDATION_MESSAGE
from airflow_provider_aiml.testing.replies import Completion
from airflow_provider_aiml.testing.settings import EmulatorSettings

DEPRECATED_MESSAGE = "Model is deprecated"
SCOPE_MESSAGE = "This API key's scope does not allow the model {model}. Add it to the key's model scopes."


def model_refusal(
    model: str, entry: Mapping[str, Any] | None, store: CatalogStore, settings: EmulatorSettings
) -> tuple[int, str] | None:
    """``(status, message)`` when the model is deprecated (404) or outside the key's scopes (403); ``entry`` is
    its catalog item (``None`` when the catalog has none)."""
    if store.is_deprecated(model):
        return 404, DEPRECATED_MESSAGE
    listed = settings.denied_models  # set as an attribute, it skipped validation: a lone string is one id
    denied = {name.strip().lower() for name in ([listed] if isinstance(listed, str) else listed)}
    names = {model.strip().lower()} | ({str(n).lower() for n in (entry["id"], *entry["aliases"])} if entry else set())
    if denied & names:
        return 403, SCOPE_MESSAGE.format(model=model)
    return None


def admission_error(
    body: Mapping[str, Any],
    completion: Completion,
    entry: Mapping[str, Any] | None,
    *,
    serve_unknown_models: bool = False,
) -> tuple[int, str] | None:
    """``(status, message)`` of the API's refusal, or ``None`` when the request is taken (``entry`` is the
    model's catalog item, ``None`` when the catalog has none)."""
    model = str(body["model"])
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

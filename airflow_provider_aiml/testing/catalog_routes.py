"""The public catalog routes: ``GET /v1/models`` (and ``/models``, ``/api/v1/models``), ``GET /model/{id}`` and
``GET /docs-json?model=&endpoint=`` (a model's OpenAPI document). None needs a key.

Each answer is a :class:`CatalogAnswer` the server sends as it is: listings carry a weak ``ETag`` and
``Cache-Control: max-age=60``, and a matching ``If-None-Match`` gets ``304`` with no body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from airflow_provider_aiml.testing.catalog import included_sections, project, select
from airflow_provider_aiml.testing.catalog_store import CatalogStore
from airflow_provider_aiml.testing.model_specs import endpoint_of, openapi_document

MODELS_PATHS = frozenset({"/v1/models", "/models", "/api/v1/models"})
MODEL_PREFIX = "/model/"
DOCS_JSON_PATH = "/docs-json"
CACHE_CONTROL = "max-age=60"


@dataclass(frozen=True)
class CatalogAnswer:
    """What to send: a status, a JSON payload (``None`` for 304) or an error message, and headers."""

    status: int
    payload: Any = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def is_catalog_route(method: str, route: str) -> bool:
    """Whether a request is one of the catalog routes."""
    return method == "GET" and (route in MODELS_PATHS or route.startswith(MODEL_PREFIX) or route == DOCS_JSON_PATH)


def catalog_answer(
    route: str, query: Mapping[str, Sequence[str]], if_none_match: str | None, store: CatalogStore
) -> CatalogAnswer:
    """The answer to a catalog route."""
    if route in MODELS_PATHS:
        sections = included_sections(query)
        payload = {"object": "list", "data": [project(item, sections) for item in select(store.items(), query)]}
        return _cached(payload, if_none_match, store)
    if route.startswith(MODEL_PREFIX):
        name = unquote(route[len(MODEL_PREFIX) :])
        item = store.peek(name)
        if item is None:
            message = "Model is deprecated" if store.is_deprecated(name) else f"Model {name} not found"
            return CatalogAnswer(404, message=message)
        return _cached({"object": "model", "data": project(item, included_sections(query))}, if_none_match, store)
    return _docs_json(query, store)


def _docs_json(query: Mapping[str, Sequence[str]], store: CatalogStore) -> CatalogAnswer:
    model = (query.get("model") or [""])[0]
    endpoint = (query.get("endpoint") or [""])[0]
    item = store.peek(model) if model else None
    if item is None:
        return CatalogAnswer(404, message=f"No documentation for model {model!r}")
    served = endpoint_of(str(item["id"]))
    if served is None or (endpoint and endpoint != served):
        return CatalogAnswer(404, message=f"No documentation for model {model!r} on endpoint {endpoint!r}")
    return CatalogAnswer(200, openapi_document(str(item["id"])), headers=(("Cache-Control", CACHE_CONTROL),))


def _cached(payload: Any, if_none_match: str | None, store: CatalogStore) -> CatalogAnswer:
    etag = store.etag(payload)
    headers = (("ETag", etag), ("Cache-Control", CACHE_CONTROL))
    if if_none_match is not None and _matches(if_none_match, etag):
        return CatalogAnswer(304, headers=headers)
    return CatalogAnswer(200, payload, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as ``If-None-Match`` uses: ``W/`` prefixes are ignored; ``*`` matches anything."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags

"""The model catalog served at ``GET /v1/models``: items shaped like the documented ones, with every optional
section (``modalities``, ``capabilities``, ``pricing``) filled in. ``catalog_query`` projects and filters them;
``catalog_store`` holds the runtime changes. Chat capabilities come from the models' schemas (``model_specs``).

Prices are realistic but **not** the API's; the seed model costs $1 per million tokens both ways, the emulator's
historical 2 credits per token.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_aiml.testing.model_specs import CHAT_ENDPOINT, EMBEDDINGS_ENDPOINT, chat_spec
from airflow_provider_aiml.testing.pricing import TOKENS_PER_MILLION, token_pricing

_DOCS = "https://docs.aimlapi.com/api-references"
DEFAULT_SECTIONS = ("id", "info", "type", "aliases", "tags")
OPTIONAL_SECTIONS = ("modalities", "capabilities", "pricing")
DEPRECATED_MODELS: tuple[str, ...] = (
    "openai/gpt-4-0613",
    "gpt-4-0613",
    "openai/gpt-3.5-turbo-16k-0613",
    "gpt-3.5-turbo-16k-0613",
    "anthropic/claude-2.1",
    "claude-2.1",
)
"""Ids the API no longer serves: chat answers 404 ``Model is deprecated``; they are not in the catalog."""


def docs_json_url(model_id: str, endpoint: str) -> str:
    """The catalog's absolute ``info.docsJson`` (the real host; clients resolve its path against their base)."""
    quoted_model = model_id.replace("/", "%2F")
    quoted_endpoint = endpoint.replace("/", "%2F")
    return f"https://api.aimlapi.com/docs-json?model={quoted_model}&endpoint={quoted_endpoint}"


def _chat_model(
    model_id: str,
    aliases: list[str],
    *,
    name: str,
    developer: str,
    description: str,
    released: str,
    context: int,
    output_max: int,
    docs_path: str,
    pricing: dict[str, Any],
    url: str = "",
    cutoff: str | None = None,
) -> dict[str, Any]:
    spec = chat_spec(model_id)
    assert spec is not None, model_id
    info: dict[str, Any] = {
        "releasedAt": released,
        "name": name,
        "developer": developer,
        "description": description,
        "contextLength": context,
        "outputMax": output_max,
    }
    if cutoff is not None:
        info["cutoffAt"] = cutoff
    info |= {
        "url": url,
        "docsUrl": f"{_DOCS}/text-models-llm/{docs_path}",
        "docsJson": docs_json_url(model_id, CHAT_ENDPOINT),
    }
    return {
        "id": model_id,
        "info": info,
        "type": CHAT_ENDPOINT,
        "aliases": aliases,
        "tags": ["playground:chat", "tier:tier_2"],
        "modalities": {"input": spec.input_modalities, "output": ["text"]},
        "capabilities": spec.capabilities,
        "pricing": pricing,
    }


EMBEDDING_USD_PER_MILLION = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.1,
}
"""The input price of each embedding model (what its catalog item and ``POST /v1/embeddings`` charge)."""


def _embedding_model(model_id: str, *, name: str, description: str, released: str) -> dict[str, Any]:
    """An embedding model as ``/v1/models`` lists it (served on ``POST /v1/embeddings``)."""
    return {
        "id": model_id,
        "info": {
            "releasedAt": released,
            "name": name,
            "developer": "Open AI",
            "description": description,
            "contextLength": 8192,
            "url": "",
            "docsUrl": f"{_DOCS}/embedding-models/openai/{model_id}",
            "docsJson": docs_json_url(model_id, EMBEDDINGS_ENDPOINT),
        },
        "type": "embedding",
        "aliases": [f"openai/{model_id}"],
        "tags": ["tier:tier_2"],
        "modalities": {"input": ["text"], "output": ["embedding"]},
        "capabilities": [],
        "pricing": token_pricing(EMBEDDING_USD_PER_MILLION[model_id]),
    }


_IMAGE_PRICING: dict[str, Any] = {
    "kind": "variants",
    "currency": "USD",
    "dimensions": ["quality"],
    "variants": [
        {"when": {"quality": "low"}, "price": 0.011, "unit": "image", "per": 1},
        {"when": {"quality": "medium"}, "price": 0.042, "unit": "image", "per": 1},
        {"when": {"quality": "high"}, "price": 0.167, "unit": "image", "per": 1},
    ],
}

MODELS: tuple[dict[str, Any], ...] = (
    _chat_model(
        "alibaba/qwen3-vl-32b-thinking",
        ["qwen3-vl-32b-thinking"],
        name="Qwen3 VL 32B Thinking",
        developer="Alibaba Cloud",
        description="Thinking-capable Qwen vision-language model for complex visual-textual reasoning.",
        released="2025-10-21",
        context=131072,
        output_max=32768,
        docs_path="alibaba-cloud/qwen3-vl-32b-thinking",
        pricing=token_pricing(1.0, 1.0),
    ),
    _chat_model(
        "alibaba/qwen3-32b",
        ["qwen3-32b"],
        name="Qwen3 32B",
        developer="Alibaba Cloud",
        description="Qwen3 dense model with optional thinking (enable_thinking).",
        released="2025-04-29",
        context=131072,
        output_max=16384,
        docs_path="alibaba-cloud/qwen3-32b",
        pricing=token_pricing(0.16, 0.64),
    ),
    _chat_model(
        "openai/gpt-4o",
        ["gpt-4o"],
        name="GPT-4o",
        developer="Open AI",
        description="Multimodal AI model by OpenAI enhancing human-computer interaction.",
        released="2025-08-07",
        context=128000,
        output_max=16384,
        cutoff="2023-10-01",
        url="https://aimlapi.com/models/gpt-4o-2024-08-06-api",
        docs_path="openai/gpt-4o",
        pricing=token_pricing(2.5, 10.0, cached_usd=1.25),
    ),
    _chat_model(
        "openai/gpt-4o-mini",
        ["gpt-4o-mini"],
        name="GPT-4o mini",
        developer="Open AI",
        description="OpenAI's small, fast multimodal model.",
        released="2024-07-18",
        context=128000,
        output_max=16384,
        docs_path="openai/gpt-4o-mini",
        pricing=token_pricing(0.15, 0.6, cached_usd=0.075),
    ),
    _chat_model(
        "openai/gpt-5",
        ["gpt-5", "openai/gpt-5-2025-08-07"],
        name="GPT-5",
        developer="Open AI",
        description="OpenAI's reasoning model for coding and agentic tasks.",
        released="2025-08-07",
        context=400000,
        output_max=128000,
        docs_path="openai/gpt-5",
        pricing=token_pricing(1.25, 10.0, cached_usd=0.125),
    ),
    _chat_model(
        "anthropic/claude-sonnet-4.5",
        ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929"],
        name="Claude Sonnet 4.5",
        developer="Anthropic",
        description="Anthropic's hybrid reasoning model for coding and agents.",
        released="2025-09-29",
        context=200000,
        output_max=64000,
        docs_path="anthropic/claude-4-5-sonnet",
        pricing=token_pricing(0.003, 0.015, per=1000),
    ),
    _chat_model(
        "x-ai/grok-4-07-09",
        ["grok-4-07-09"],
        name="Grok 4",
        developer="xAI",
        description="xAI's flagship reasoning model with vision and tool use.",
        released="2025-07-09",
        context=256000,
        output_max=64000,
        docs_path="xai/grok-4",
        pricing=token_pricing(3.0, 15.0, cached_usd=0.75),
    ),
    _chat_model(
        "zhipu/glm-4.5",
        ["glm-4.5"],
        name="GLM 4.5",
        developer="Zhipu",
        description="A hybrid reasoning model with a thinking mode and a non-thinking mode.",
        released="2025-07-28",
        context=128000,
        output_max=96000,
        docs_path="zhipu/glm-4.5",
        pricing=token_pricing(0.6, 2.2),
    ),
    _chat_model(
        "deepseek/deepseek-r1",
        ["deepseek-reasoner"],
        name="DeepSeek R1",
        developer="DeepSeek",
        description="DeepSeek's reasoning model for maths, logic and programming (no tool calling).",
        released="2025-01-20",
        context=128000,
        output_max=32768,
        docs_path="deepseek/deepseek-r1",
        pricing=token_pricing(0.55, 2.19),
    ),
    {
        "id": "openai/gpt-image-1",
        "info": {
            "releasedAt": "2025-10-13",
            "name": "GPT Image 1",
            "developer": "Open AI",
            "description": (
                "GPT Image 1 is OpenAI's first-generation image generation model combining language "
                "understanding with visual synthesis."
            ),
            "url": "",
            "docsUrl": f"{_DOCS}/image-models/openai/gpt-image-1",
            "docsJson": docs_json_url("openai/gpt-image-1", "openai/image-generations"),
        },
        "type": "openai/image-generations",
        "aliases": ["gpt-image-1"],
        "tags": ["playground:image", "tier:tier_2"],
        "modalities": {"input": ["image", "text"], "output": ["image"]},
        "capabilities": ["image_to_image", "text_to_image"],
        "pricing": _IMAGE_PRICING,
    },
    _embedding_model(
        "text-embedding-3-small",
        name="Text Embedding 3 Small",
        description="Compact embedding model, 1,536 dimensions (shorter with dimensions).",
        released="2024-01-25",
    ),
    _embedding_model(
        "text-embedding-3-large",
        name="Text Embedding 3 Large",
        description="Larger embedding model, 3,072 dimensions (shorter with dimensions).",
        released="2024-01-25",
    ),
    _embedding_model(
        "text-embedding-ada-002",
        name="Text Embedding Ada 002",
        description="The earlier embedding model, 1,536 dimensions.",
        released="2022-12-15",
    ),
)
"""Every item with all its sections (``catalog_query.project`` trims them)."""
assert all(unit["per"] in (1000, TOKENS_PER_MILLION) for m in MODELS for unit in m["pricing"].get("units", []))


def names_of(item: dict[str, Any]) -> set[str]:
    """The lower-cased id and aliases of an item."""
    return {str(name).lower() for name in (item["id"], *item.get("aliases", []))}


def find_model(model_id: str) -> dict[str, Any] | None:
    """One item of the built-in catalog (a deep copy) by id or alias, case-insensitive."""
    wanted = model_id.strip().lower()
    for item in MODELS:
        if wanted in names_of(item):
            return copy.deepcopy(item)
    return None


FILTERS = ("id", "type", "tags", "modalities", "input_modalities", "output_modalities", "capabilities")
"""The query parameters that filter ``GET /v1/models``: values of one are ORed, different ones ANDed."""


def included_sections(query: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The optional sections ``include=`` (or ``details=true``) asks for; unknown values are ignored."""
    if any(value.strip().lower() == "true" for value in query.get("details", ())):
        return OPTIONAL_SECTIONS
    wanted = set(_values(query.get("include", ())))
    return OPTIONAL_SECTIONS if "all" in wanted else tuple(s for s in OPTIONAL_SECTIONS if s in wanted)


def project(item: Mapping[str, Any], sections: Iterable[str]) -> dict[str, Any]:
    """A deep copy of an item with the default sections and those asked for."""
    keep = (*DEFAULT_SECTIONS, *sections)
    return {key: copy.deepcopy(value) for key, value in item.items() if key in keep}


def select(items: Iterable[Mapping[str, Any]], query: Mapping[str, Sequence[str]]) -> list[Mapping[str, Any]]:
    """The items every filter of the query matches (case-insensitive; ``id`` matches an id or an alias)."""
    wanted = {name: set(_values(query.get(name, ()))) for name in FILTERS}
    return [item for item in items if all(not values or values & _facet(item, name) for name, values in wanted.items())]


def _facet(item: Mapping[str, Any], name: str) -> set[str]:
    modalities = item.get("modalities") or {}
    values: Iterable[Any] = {
        "id": (item["id"], *item.get("aliases", [])),
        "type": (item.get("type", ""),),
        "tags": item.get("tags", []),
        "modalities": (*modalities.get("input", []), *modalities.get("output", [])),
        "input_modalities": modalities.get("input", []),
        "output_modalities": modalities.get("output", []),
        "capabilities": item.get("capabilities", []),
    }[name]
    return {str(value).lower() for value in values}


def _values(raw: Iterable[str]) -> list[str]:
    """Repeated and comma-separated values, trimmed and lower-cased."""
    return [part.strip().lower() for value in raw for part in value.split(",") if part.strip()]

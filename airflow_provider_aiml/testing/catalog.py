"""The small model catalog served at ``GET /v1/models`` (items shaped like the documented ones)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

_DOCS = "https://docs.aimlapi.com/api-references"


def _docs_json(model_id: str, endpoint: str) -> str:
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
    url: str = "",
) -> dict[str, Any]:
    return {
        "id": model_id,
        "info": {
            "releasedAt": released,
            "name": name,
            "developer": developer,
            "description": description,
            "contextLength": context,
            "outputMax": output_max,
            "url": url,
            "docsUrl": f"{_DOCS}/text-models-llm/{docs_path}",
            "docsJson": _docs_json(model_id, "openai/chat-completions"),
        },
        "type": "openai/chat-completions",
        "aliases": aliases,
        "tags": ["playground:chat", "tier:tier_2"],
    }


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
            "docsJson": _docs_json(model_id, "openai/embeddings"),
        },
        "type": "embedding",
        "aliases": [f"openai/{model_id}"],
        "tags": ["tier:tier_2"],
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
    ),
    {
        "id": "openai/gpt-4o",
        "info": {
            "releasedAt": "2025-08-07",
            "name": "GPT-4o",
            "developer": "Open AI",
            "description": "Multimodal AI model by OpenAI enhancing human-computer interaction.",
            "contextLength": 128000,
            "outputMax": 16384,
            "cutoffAt": "2023-10-01",
            "url": "https://aimlapi.com/models/gpt-4o-2024-08-06-api",
            "docsUrl": f"{_DOCS}/text-models-llm/openai/gpt-4o",
            "docsJson": _docs_json("openai/gpt-4o", "openai/chat-completions"),
        },
        "type": "openai/chat-completions",
        "aliases": ["gpt-4o"],
        "tags": ["playground:chat", "tier:tier_2"],
    },
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
    ),
    _chat_model(
        "openai/gpt-5",
        ["gpt-5"],
        name="GPT-5",
        developer="Open AI",
        description="OpenAI's reasoning model for coding and agentic tasks.",
        released="2025-08-07",
        context=400000,
        output_max=128000,
        docs_path="openai/gpt-5",
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
            "docsJson": _docs_json("openai/gpt-image-1", "openai/image-generations"),
        },
        "type": "openai/image-generations",
        "aliases": ["gpt-image-1"],
        "tags": ["playground:image", "tier:tier_2"],
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


def list_models(ids: Sequence[str] = (), types: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Catalog items (deep copies), filtered by id-or-alias and by type (values ORed, filters ANDed)."""
    wanted_ids = {v for value in ids for v in value.split(",") if v}
    wanted_types = {v for value in types for v in value.split(",") if v}
    items = []
    for item in MODELS:
        names = {item["id"], *item["aliases"]}
        if wanted_ids and not names & wanted_ids:
            continue
        if wanted_types and item["type"] not in wanted_types:
            continue
        items.append(copy.deepcopy(item))
    return items


def find_model(model_id: str) -> dict[str, Any] | None:
    """One catalog item by id or alias."""
    matches = list_models(ids=[model_id])
    return matches[0] if matches else None

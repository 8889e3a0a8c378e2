"""The request schema of every chat model the emulator serves, and the OpenAPI documents built from them.

Names, types, ranges, enums, ``nullable`` and defaults of each model's parameters are those of the model's
OpenAPI file in ``aimlapi/api-docs`` (``docs/api-references/text-models-llm/**/<model>.json``); descriptions and
unrelated keys are left out. Two simplifications hold for every model: ``messages`` has the OpenAI shape (user
parts per the model's inputs) and ``tools`` / ``tool_choice`` are OpenAI function tools. Anthropic's file
describes its native message and tool blocks; the emulator serves what the API takes on chat-completions.

``openapi_document(model_id)`` is what ``GET /docs-json`` answers; other code reads it here without HTTP.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aiml.testing import schema_parts as part
from airflow_provider_aiml.testing.schema_parts import Schema, boolean, choice, number

CHAT_ENDPOINT = "openai/chat-completions"
EMBEDDINGS_ENDPOINT = "openai/embeddings"
OPENAI_ROLES = ("user", "developer", "system", "tool", "assistant")
PLAIN_ROLES = ("user", "system", "tool", "assistant")


@dataclass(frozen=True)
class ModelSpec:
    """One chat model's request schema: the ``model`` enum, its inputs and its other top-level parameters."""

    model_id: str
    model_names: tuple[str, ...]
    properties: Mapping[str, Schema]
    """Top-level parameters other than ``model`` and ``messages``, in the order of the model's file."""
    vision: bool = False
    file_input: bool = False
    reasoning: bool = False
    """The model thinks (listed as the ``reasoning`` capability), whether or not a parameter steers it."""
    roles: tuple[str, ...] = PLAIN_ROLES
    thinks_only_streamed: bool = False
    """The model's page says ``enable_thinking`` "must be set to false for non-streaming calls"."""

    @property
    def tools(self) -> bool:
        """Whether the schema takes ``tools``."""
        return "tools" in self.properties

    @property
    def structured_output(self) -> bool:
        """Whether ``response_format`` offers ``json_schema``."""
        variants = self.properties.get("response_format", {}).get("oneOf", [])
        return any(v.get("properties", {}).get("type", {}).get("enum") == ["json_schema"] for v in variants)

    @property
    def capabilities(self) -> list[str]:
        """The catalog's ``capabilities`` for this model (sorted)."""
        flags = {
            "streaming": "stream" in self.properties,
            "tools": self.tools,
            "parallel_tool_calls": "parallel_tool_calls" in self.properties,
            "structured_output": self.structured_output,
            "vision": self.vision,
            "file_input": self.file_input,
            "reasoning": self.reasoning,
        }
        return sorted(name for name, on in flags.items() if on)

    @property
    def input_modalities(self) -> list[str]:
        """The catalog's ``modalities.input``."""
        return ["image", "text"] if self.vision else ["text"]

    def request_schema(self) -> Schema:
        """The ``requestBody`` schema: ``{type, properties, required, title}`` as in the model's file."""
        properties: dict[str, Any] = {
            "model": {"type": "string", "enum": list(self.model_names)},
            "messages": part.messages(self.roles, vision=self.vision, file_input=self.file_input),
        }
        properties.update(copy.deepcopy(dict(self.properties)))
        return {"type": "object", "properties": properties, "required": ["model", "messages"], "title": self.model_id}


def _limits() -> dict[str, Schema]:
    return {"max_completion_tokens": number(minimum=1, integer=True), "max_tokens": number(minimum=1)}


def _streaming() -> dict[str, Schema]:
    return {"stream": boolean(default=False), "stream_options": part.stream_options()}


def _tooling() -> dict[str, Schema]:
    return {"tools": part.tools(), "tool_choice": part.tool_choice(), "parallel_tool_calls": boolean()}


def _penalty() -> Schema:
    return number(minimum=-2, maximum=2, nullable=True)


def _sampling() -> dict[str, Schema]:
    return {"temperature": number(minimum=0, maximum=2), "top_p": number(minimum=0.01, maximum=1)}


def _logprobs() -> dict[str, Schema]:
    return {"logprobs": boolean(nullable=True), "top_logprobs": number(minimum=0, maximum=20, nullable=True)}


def _qwen(extra: Mapping[str, Schema]) -> dict[str, Schema]:
    """The Qwen files' order: limits, streaming, tools, sampling, stop, penalties, prediction, seed, format."""
    return {
        **_limits(),
        **_streaming(),
        **_tooling(),
        **_sampling(),
        "stop": part.stop(),
        "frequency_penalty": _penalty(),
        "prediction": part.prediction(),
        "presence_penalty": _penalty(),
        "seed": number(minimum=1, integer=True),
        "response_format": part.response_format(),
        **extra,
    }


def _gpt4o() -> dict[str, Schema]:
    return {
        **_limits(),
        **_streaming(),
        **_tooling(),
        "n": number(minimum=1, nullable=True, integer=True),
        "stop": part.stop(),
        **_logprobs(),
        "logit_bias": part.logit_bias(),
        "frequency_penalty": _penalty(),
        "prediction": part.prediction(),
        "presence_penalty": _penalty(),
        "seed": number(minimum=1, integer=True),
        "response_format": part.response_format(),
        **_sampling(),
        "provider": {"type": "string"},
    }


def _claude_thinking() -> Schema:
    budget = number(minimum=1024, integer=True)
    budget["description"] = "Must be >= 1024 and less than max_tokens."
    return {
        "type": "object",
        "properties": {"budget_tokens": budget, "type": choice("enabled")},
        "required": ["budget_tokens", "type"],
    }


def _grok_reasoning() -> Schema:
    max_tokens = number(minimum=1, integer=True)
    max_tokens["description"] = "Max tokens of reasoning content. Cannot be used simultaneously with effort."
    return {
        "type": "object",
        "properties": {"effort": choice("low", "medium", "high"), "max_tokens": max_tokens, "exclude": boolean()},
    }


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "alibaba/qwen3-vl-32b-thinking",
        ("alibaba/qwen3-vl-32b-thinking",),
        _qwen({"repetition_penalty": number(nullable=True)}),
        vision=True,
        reasoning=True,
        # The model's file lists no developer role; the emulator has taken one since its first version (as the
        # shared checks do) and no refusal of it is documented, so the seed keeps taking it.
        roles=OPENAI_ROLES,
    ),
    ModelSpec(
        "alibaba/qwen3-32b",
        ("alibaba/qwen3-32b",),
        _qwen(
            {
                **_logprobs(),
                "repetition_penalty": number(nullable=True),
                "enable_thinking": boolean(default=False),
                "thinking_budget": number(minimum=1, integer=True),
            }
        ),
        reasoning=True,
        thinks_only_streamed=True,
    ),
    ModelSpec(
        "openai/gpt-4o",
        ("openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-05-13"),
        _gpt4o(),
        vision=True,
        file_input=True,
        roles=OPENAI_ROLES,
    ),
    ModelSpec(
        "openai/gpt-4o-mini",
        ("openai/gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        _gpt4o(),
        vision=True,
        file_input=True,
        roles=OPENAI_ROLES,
    ),
    ModelSpec(
        "openai/gpt-5",
        ("openai/gpt-5", "openai/gpt-5-2025-08-07"),
        {
            **_limits(),
            **_streaming(),
            **_tooling(),
            "n": number(minimum=1, nullable=True, integer=True),
            "seed": number(minimum=1, integer=True),
            "reasoning_effort": choice("low", "medium", "high"),
            "response_format": part.response_format(),
            "provider": {"type": "string"},
        },
        vision=True,
        file_input=True,
        reasoning=True,
        roles=OPENAI_ROLES,
    ),
    ModelSpec(
        "anthropic/claude-sonnet-4.5",
        ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        {
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "stop_sequences": part.string_list(),
            "stream": boolean(default=False),
            "system": {"type": "string"},
            "tool_choice": part.tool_choice(),
            "tools": part.tools(),
            "thinking": _claude_thinking(),
            "max_tokens": number(default=32000),
            "temperature": number(minimum=0, maximum=1),
            "top_p": number(minimum=0, maximum=1),
            "top_k": number(minimum=0),
        },
        vision=True,
        reasoning=True,
    ),
    ModelSpec(
        "x-ai/grok-4-07-09",
        ("x-ai/grok-4-07-09",),
        {
            **_limits(),
            **_streaming(),
            **_sampling(),
            "seed": number(minimum=1, integer=True),
            "top_k": number(),
            "repetition_penalty": number(nullable=True),
            "top_a": number(minimum=0, maximum=1),
            "prediction": part.prediction(),
            **_tooling(),
            **_logprobs(),
            "reasoning": _grok_reasoning(),
            "provider": {"type": "string"},
        },
        vision=True,
        file_input=True,
        reasoning=True,
        roles=OPENAI_ROLES,
    ),
    ModelSpec(
        "zhipu/glm-4.5",
        ("zhipu/glm-4.5",),
        {
            **_limits(),
            **_streaming(),
            **_tooling(),
            "n": number(minimum=1, nullable=True, integer=True),
            "top_p": number(minimum=0.01, maximum=1),
            "frequency_penalty": _penalty(),
            "presence_penalty": _penalty(),
            "response_format": part.response_format(),
            "thinking": {"type": "object", "properties": {"type": choice("enabled", "disabled", default="enabled")}},
        },
        reasoning=True,
    ),
    ModelSpec(
        "deepseek/deepseek-r1",
        ("deepseek/deepseek-r1", "deepseek-reasoner"),
        {
            "max_tokens": number(minimum=1),
            **_streaming(),
            **_sampling(),
            "stop": part.stop(),
            "frequency_penalty": _penalty(),
            "prediction": part.prediction(),
            "presence_penalty": _penalty(),
            "seed": number(minimum=1, integer=True),
            "echo": boolean(),
            "min_p": number(minimum=0.001, maximum=0.999),
            "top_k": number(),
            "repetition_penalty": number(nullable=True),
            "logit_bias": part.logit_bias(),
            "n": number(minimum=1, nullable=True, integer=True),
        },
        file_input=True,
        reasoning=True,
        roles=("user", "developer", "system", "assistant"),
    ),
)

CHAT_MODELS: tuple[str, ...] = tuple(spec.model_id for spec in SPECS)
"""The ids of the chat models the emulator has a schema for."""
SEED_MODEL = "alibaba/qwen3-vl-32b-thinking"
_BY_NAME = {name.lower(): spec for spec in SPECS for name in (spec.model_id, *spec.model_names)}

EMBEDDING_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def chat_spec(model: str) -> ModelSpec | None:
    """The spec of a chat model by its id or a name of its ``model`` enum (case-insensitive)."""
    return _BY_NAME.get(model.strip().lower())


def openapi_document(model_id: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document ``GET /docs-json`` serves for a chat or embedding model; ``KeyError`` otherwise."""
    spec = chat_spec(model_id)
    if spec is not None:
        return _document(spec.request_schema(), ("/v1/chat/completions", "/chat/completions"))
    native = EMBEDDING_DIMENSIONS.get(model_id.removeprefix("openai/"))
    if native is None:
        raise KeyError(model_id)
    return _document(_embedding_schema(model_id.removeprefix("openai/"), native), ("/v1/embeddings",))


def endpoint_of(model_id: str) -> str | None:
    """The endpoint type ``openapi_document`` describes for a model (``None`` when it has none)."""
    if chat_spec(model_id) is not None:
        return CHAT_ENDPOINT
    return EMBEDDINGS_ENDPOINT if model_id.removeprefix("openai/") in EMBEDDING_DIMENSIONS else None


def _embedding_schema(model: str, native: int) -> Schema:
    properties: dict[str, Any] = {
        "model": {"type": "string", "enum": [model, f"openai/{model}"]},
        "input": {"anyOf": [{"type": "string"}, part.string_list()]},
        "encoding_format": choice("float", "base64", default="float"),
    }
    if model != "text-embedding-ada-002":
        properties["dimensions"] = number(minimum=1, maximum=native, integer=True)
    return {"type": "object", "properties": properties, "required": ["model", "input"], "title": model}


def _document(schema: Schema, paths: tuple[str, ...]) -> dict[str, Any]:
    def operation(path: str) -> dict[str, Any]:
        return {
            "post": {
                "operationId": path.replace("/", "_"),
                "requestBody": {"required": True, "content": {"application/json": {"schema": copy.deepcopy(schema)}}},
                "responses": {"200": {"description": "Successful response.", "content": {"application/json": {}}}},
            }
        }

    return {
        "openapi": "3.0.0",
        "info": {"title": "AIML API", "version": "1.0.0"},
        "servers": [{"url": "https://api.aimlapi.com"}],
        "paths": {path: operation(path) for path in paths},
        "components": {
            "securitySchemes": {
                "access-token": {"scheme": "bearer", "bearerFormat": "<YOUR_AIMLAPI_KEY>", "type": "http"}
            }
        },
    }

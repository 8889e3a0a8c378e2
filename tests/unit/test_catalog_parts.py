"""The model catalog's pure parts, without HTTP: prices and cost estimates, catalog entries, request schemas,
the reasoning switch, model profiles, the catalog cache's rules, and which failures may go to a fallback model.

The test data follow the real documents: catalog items as ``GET /model/{id}?include=all`` gives them, and the
per-model OpenAPI documents ``info.docsJson`` links (``docs/api-references/text-models-llm/**/*.json`` of
``aimlapi/api-docs``, OpenAPI 3.0.0). The builders here are shared with ``test_hook_catalog.py``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_aiml.catalog import cache as cache_module
from airflow_provider_aiml.catalog.cache import (
    RETRY_AFTER_FAILURE,
    CatalogCache,
    catalog_cache,
    default_cache_dir,
    reset_catalog_caches,
)
from airflow_provider_aiml.catalog.entry import STRUCTURED_OUTPUT, TOOLS, VISION, ModelEntry, item_of
from airflow_provider_aiml.catalog.estimate import IMAGE_TOKENS_AT_MOST, estimate_call, estimate_calls
from airflow_provider_aiml.catalog.pricing import CostEstimate, TokenPricing
from airflow_provider_aiml.catalog.profile import ModelProfile
from airflow_provider_aiml.catalog.reasoning import (
    ReasoningControl,
    control_from,
    known_family,
    reasoning_keys,
)
from airflow_provider_aiml.catalog.schema import ParameterRule, RequestSchema
from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlNotFoundError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlResponseError,
    AimlServerError,
    AimlStreamIncompleteError,
    AimlTimeoutError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.parsing import parse_error
from airflow_provider_aiml.hooks.retry import fallback_reason

# --- test data: OpenAPI documents in the style of the API's per-model files ------------------------------------

CATALOG_HOST = "https://api.aimlapi.com"


def _text_part() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["text"], "description": "The type of the content part."},
            "text": {"type": "string", "description": "The text content."},
        },
        "required": ["type", "text"],
    }


def _image_part() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["image_url"], "description": "The type of the content part."},
            "image_url": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "format": "uri", "description": "Either a URL of the image or the "},
                    "detail": {"type": "string", "enum": ["low", "high", "auto"]},
                },
                "required": ["url"],
            },
        },
        "required": ["type", "image_url"],
    }


def messages_schema(vision: bool) -> dict[str, Any]:
    """The ``messages`` property: user parts are text only, or text and ``image_url``, as in the real files."""
    parts = [_text_part(), _image_part()] if vision else [_text_part()]
    text_only = {"anyOf": [{"type": "string"}, {"type": "array", "items": _text_part()}]}
    return {
        "type": "array",
        "items": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["user"]},
                        "content": {
                            "anyOf": [{"type": "string"}, {"type": "array", "items": {"oneOf": parts}}],
                            "description": "The contents of the user message.",
                        },
                        "name": {"type": "string"},
                    },
                    "required": ["role", "content"],
                },
                {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["system"]},
                        "content": text_only,
                        "name": {"type": "string"},
                    },
                    "required": ["role", "content"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["tool"]},
                        "content": {"type": "string"},
                        "tool_call_id": {"type": "string"},
                        "name": {"type": "string", "nullable": True},
                    },
                    "required": ["role", "content", "tool_call_id"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["assistant"]},
                        "content": text_only,
                        "name": {"type": "string"},
                        "tool_calls": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["role"],
                },
            ]
        },
    }


TOOLS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["function"]},
            "function": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "name": {"type": "string"},
                    "parameters": {"type": "object", "additionalProperties": {"nullable": True}},
                    "strict": {"type": "boolean", "nullable": True},
                },
                "required": ["name", "parameters"],
                "additionalProperties": False,
            },
        },
        "required": ["type", "function"],
        "additionalProperties": False,
    },
    "maxItems": 128,
}
TOOL_CHOICE_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": ["none", "auto", "required"]},
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["function"]},
                "function": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            },
            "required": ["type", "function"],
        },
    ],
    "description": "Controls which (if any) tool is called by the model.",
}
RESPONSE_FORMAT_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["text"]}},
            "required": ["type"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["json_object"]}},
            "required": ["type"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["json_schema"]},
                "json_schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "schema": {"type": "object", "additionalProperties": {"nullable": True}},
                        "strict": {"type": "boolean", "nullable": True},
                        "description": {"type": "string"},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
            },
            "required": ["type", "json_schema"],
            "additionalProperties": False,
        },
    ]
}
REASONING_OBJECT = {
    "type": "object",
    "properties": {
        "effort": {"type": "string", "enum": ["low", "medium", "high"], "description": "Reasoning effort setting"},
        "max_tokens": {"type": "integer", "minimum": 1, "description": "Cannot be used simultaneously with effort."},
        "exclude": {"type": "boolean", "description": "Whether to exclude reasoning from the response"},
    },
    "description": "Configuration for model reasoning/thinking tokens",
}
EFFORT = {"type": "string", "enum": ["low", "medium", "high"], "description": "Constrains effort on reasoning."}

OPENAI_PARAMETERS: dict[str, Any] = {
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "max_tokens": {"type": "number", "minimum": 1},
    "stream": {"type": "boolean", "default": False},
    "stream_options": {
        "type": "object",
        "properties": {"include_usage": {"type": "boolean"}},
        "required": ["include_usage"],
    },
    "tools": TOOLS_SCHEMA,
    "tool_choice": TOOL_CHOICE_SCHEMA,
    "parallel_tool_calls": {"type": "boolean"},
    "n": {"type": "integer", "nullable": True, "minimum": 1},
    "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"nullable": True}]},
    "logprobs": {"type": "boolean", "nullable": True},
    "top_logprobs": {"type": "number", "nullable": True, "minimum": 0, "maximum": 20},
    "frequency_penalty": {"type": "number", "nullable": True, "minimum": -2, "maximum": 2},
    "presence_penalty": {"type": "number", "nullable": True, "minimum": -2, "maximum": 2},
    "seed": {"type": "integer", "minimum": 1},
    "response_format": RESPONSE_FORMAT_SCHEMA,
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0.01, "maximum": 1},
    "provider": {"type": "string", "description": "Provider routing override.", "example": "auto"},
}


def _without(parameters: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in parameters.items() if key not in names}


GPT_4O = ("openai/gpt-4o", OPENAI_PARAMETERS, True)
GPT_5 = (
    "openai/gpt-5",
    {
        **_without(OPENAI_PARAMETERS, "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty"),
        "reasoning_effort": EFFORT,
    },
    True,
)
QWEN3_32B = (
    "alibaba/qwen3-32b",
    {
        **_without(OPENAI_PARAMETERS, "n", "provider"),
        "repetition_penalty": {"type": "number", "nullable": True},
        "enable_thinking": {"type": "boolean", "default": False},
        "thinking_budget": {"type": "integer", "minimum": 1},
    },
    False,
)
CLAUDE = (
    "anthropic/claude-sonnet-4.5",
    {
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "stream": {"type": "boolean", "default": False},
        "system": {"type": "string"},
        "tool_choice": TOOL_CHOICE_SCHEMA,
        "tools": TOOLS_SCHEMA,
        "thinking": {
            "type": "object",
            "properties": {
                "budget_tokens": {"type": "integer", "minimum": 1024, "description": "Must be >=1024 and < max_tokens"},
                "type": {"type": "string", "enum": ["enabled"]},
            },
            "required": ["budget_tokens", "type"],
        },
        "max_tokens": {"type": "number", "default": 32000},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "number", "minimum": 0},
    },
    True,
)
GLM_45 = (
    "zhipu/glm-4.5",
    {
        **_without(OPENAI_PARAMETERS, "temperature", "seed", "stop", "logprobs", "top_logprobs", "provider"),
        "thinking": {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["enabled", "disabled"], "default": "enabled"}},
            "description": "Control whether the model enables chain of thought.",
        },
    },
    False,
)
GROK_4 = (
    "x-ai/grok-4",
    {
        **_without(OPENAI_PARAMETERS, "n", "stop", "frequency_penalty", "presence_penalty", "response_format"),
        "top_k": {"type": "number"},
        "repetition_penalty": {"type": "number", "nullable": True},
        "reasoning": REASONING_OBJECT,
    },
    True,
)
DEEPSEEK_V4 = (
    "deepseek/deepseek-v4-pro",
    {**_without(OPENAI_PARAMETERS, "n"), "reasoning_effort": EFFORT, "reasoning": REASONING_OBJECT},
    False,
)


def openapi_doc(
    model: str,
    parameters: dict[str, Any],
    vision: bool = True,
    paths: tuple[str, ...] = ("/v1/chat/completions", "/chat/completions"),
) -> dict[str, Any]:
    """A model's OpenAPI document, shaped like the files ``info.docsJson`` serves."""
    schema = {
        "type": "object",
        "properties": {
            "model": {"type": "string", "enum": [model]},
            "messages": messages_schema(vision),
            **copy.deepcopy(parameters),
        },
        "required": ["model", "messages"],
    }
    operation = {
        "operationId": "_v1_chat_completions",
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {"200": {"description": "Successful response"}},
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "AIML API", "version": "1.0.0"},
        "servers": [{"url": "https://api.aimlapi.com"}],
        "paths": {path: {"post": copy.deepcopy(operation)} for path in paths},
        "components": {"securitySchemes": {"access-token": {"scheme": "bearer", "type": "http"}}},
    }


def doc_of(spec: tuple[str, dict[str, Any], bool]) -> dict[str, Any]:
    model, parameters, vision = spec
    return openapi_doc(model, parameters, vision)


def schema_of(spec: tuple[str, dict[str, Any], bool]) -> RequestSchema:
    schema = RequestSchema.from_openapi(doc_of(spec))
    assert schema is not None
    return schema


def docs_json(model: str, host: str = CATALOG_HOST) -> str:
    return f"{host}/docs-json?model={quote(model, safe='')}&endpoint=openai%2Fchat-completions"


def token_pricing(input_per_m: float, output_per_m: float, per: int = 1_000_000) -> dict[str, Any]:
    scale = per / 1_000_000
    return {
        "kind": "fixed",
        "currency": "USD",
        "units": [
            {"name": "token", "measure": "input", "price": input_per_m * scale, "per": per},
            {"name": "token", "measure": "output", "price": output_per_m * scale, "per": per},
        ],
    }


def catalog_item(
    model: str,
    *,
    aliases: tuple[str, ...] = (),
    capabilities: tuple[str, ...] | None = ("streaming", "tools", "parallel_tool_calls", "structured_output"),
    input_modalities: tuple[str, ...] = ("text",),
    context_length: int = 131_072,
    output_max: int = 16_384,
    pricing: dict[str, Any] | None = None,
    docs: bool = True,
) -> dict[str, Any]:
    """A catalog item as ``GET /model/{id}?include=all`` gives it (always naming api.aimlapi.com in docsJson)."""
    name = model.split("/")[-1]
    item: dict[str, Any] = {
        "id": model,
        "aliases": list(aliases),
        "type": "openai/chat-completions",
        "info": {
            "releasedAt": "2025-08-07",
            "name": name.upper(),
            "developer": model.split("/")[0],
            "description": f"{name} for tests.",
            "contextLength": context_length,
            "outputMax": output_max,
            "cutoffAt": "2024-10-01",
            "url": f"https://aimlapi.com/models/{name}-api",
            "docsUrl": f"https://docs.aimlapi.com/api-references/text-models-llm/{model}",
            "docsJson": docs_json(model) if docs else "",
        },
        "tags": ["playground:chat", "tier:tier_2"],
        "modalities": {"input": list(input_modalities), "output": ["text"]},
        "pricing": pricing if pricing is not None else token_pricing(2.5, 10),
    }
    if capabilities is not None:
        item["capabilities"] = list(capabilities)
    return item


IMAGE_MESSAGES = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
    }
]
TEXT_MESSAGES = [{"role": "user", "content": "Hello"}]


def body(model: str, messages: list[dict[str, Any]] | None = None, **keys: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages or TEXT_MESSAGES, **keys}


# --- pricing ---------------------------------------------------------------------------------------------------


def test_a_price_per_million_and_the_same_price_per_thousand_give_the_same_rate_per_token() -> None:
    per_million = TokenPricing.from_catalog(token_pricing(2.5, 10))
    per_thousand = TokenPricing.from_catalog(
        {
            "kind": "fixed",
            "currency": "USD",
            "units": [
                {"name": "token", "measure": "input", "price": 0.0025, "per": 1000},
                {"name": "token", "measure": "output", "price": 0.01, "per": 1000},
            ],
        }
    )
    assert per_million is not None
    assert per_thousand is not None
    assert per_million.input == pytest.approx(2.5e-6)
    assert per_million.output == pytest.approx(1e-5)
    assert per_thousand.input == pytest.approx(per_million.input)
    assert per_thousand.output == pytest.approx(per_million.output)
    assert per_million.cached_input is None
    assert per_million.cost(1_000_000, 100_000) == pytest.approx(2.5 + 1.0)
    assert per_million.describe() == "$2.5 in / $10 out per 1M tokens"


def test_the_cached_input_rate_is_read_and_the_other_measure_names_too() -> None:
    pricing = TokenPricing.from_catalog(
        {
            "kind": "fixed",
            "currency": "usd",
            "units": [
                {"name": "token", "measure": "prompt", "price": 1.25, "per": 1_000_000},
                {"name": "token", "measure": "cached_input", "price": 0.125, "per": 1_000_000},
                {"name": "token", "measure": "completion", "price": 10, "per": 1_000_000},
                {"name": "token", "measure": "output", "price": 99, "per": 1_000_000},  # the first one counts
            ],
        }
    )
    assert pricing == TokenPricing(input=1.25e-6, output=1e-5, cached_input=1.25e-7)


@pytest.mark.parametrize(
    "block",
    [
        {
            "kind": "variants",
            "dimensions": ["resolution"],
            "variants": [{"when": {"resolution": "720p"}, "price": 0.39, "unit": "second", "per": 1}],
        },
        {"kind": "variable", "currency": "USD"},
        {"kind": "fixed", "currency": "EUR", "units": token_pricing(1, 2)["units"]},
        # only an output rate (the docs' own example): no estimate can be made from it
        {
            "kind": "fixed",
            "currency": "USD",
            "units": [{"name": "token", "measure": "output", "price": 3.25, "per": 1e6}],
        },
        {"kind": "fixed", "currency": "USD", "units": [{"name": "second", "measure": "input", "price": 1, "per": 1}]},
        None,
        "fixed",
        [],
    ],
    ids=["variants", "variable", "not-usd", "output-only", "per-second", "none", "string", "list"],
)
def test_a_block_that_quotes_no_token_rates_gives_none(block: Any) -> None:
    assert TokenPricing.from_catalog(block) is None


@pytest.mark.parametrize(
    "bad_unit",
    [
        {"name": "token", "measure": "input", "price": "2.5", "per": 1_000_000},
        {"name": "token", "measure": "input", "price": True, "per": 1_000_000},
        {"name": "token", "measure": "input", "price": 2.5, "per": 0},
        {"name": "token", "measure": "input", "price": 2.5, "per": -1000},
        {"name": "token", "measure": "input", "price": 2.5, "per": True},
        {"name": "token", "measure": "input", "price": 2.5, "per": "1M"},
        {"name": "token", "measure": "input", "price": -1, "per": 1_000_000},
        {"name": "token", "measure": "input", "price": 2.5},  # no ``per``: the price alone means nothing
        "token",
    ],
    ids=["price-str", "price-bool", "per-0", "per-negative", "per-bool", "per-str", "negative", "no-per", "not-a-map"],
)
def test_a_malformed_unit_is_not_read_as_a_price(bad_unit: Any) -> None:
    output = {"name": "token", "measure": "output", "price": 10, "per": 1_000_000}
    assert TokenPricing.from_catalog({"kind": "fixed", "currency": "USD", "units": [bad_unit, output]}) is None


@pytest.mark.parametrize("units", [5, "token", {"name": "token"}, None], ids=["int", "str", "dict", "none"])
def test_malformed_units_give_none_rather_than_an_error(units: Any) -> None:
    assert TokenPricing.from_catalog({"kind": "fixed", "currency": "USD", "units": units}) is None


# --- cost estimates -------------------------------------------------------------------------------------------


def test_estimates_add_up_and_round_to_the_cent_fraction() -> None:
    one = CostEstimate(1, 10, 40, 100, 0.000011, 0.0011)
    two = CostEstimate(2, 20, 80, 200, 0.000022, 0.0022)
    total = one + two
    assert total == CostEstimate(3, 30, 120, 300, pytest.approx(0.000033), pytest.approx(0.0033))
    assert total.summary() == {
        "calls": 3,
        "prompt_tokens_low": 30,
        "prompt_tokens_high": 120,
        "completion_tokens_high": 300,
        "low_usd": pytest.approx(0.000033),
        "high_usd": pytest.approx(0.0033),
    }
    assert CostEstimate() + one == one  # the empty estimate is the start of a sum


def test_an_unknown_part_makes_the_sum_unknown() -> None:
    priced = CostEstimate(1, 10, 40, 100, 0.01, 0.02)
    no_limit = CostEstimate(1, 10, 40, None, 0.01, None)
    no_price = CostEstimate(1, 10, 40, 100, None, None)
    assert (priced + no_limit).high_usd is None
    assert (priced + no_limit).completion_tokens_high is None
    assert (priced + no_limit).low_usd == pytest.approx(0.02)
    assert (priced + no_price).low_usd is None
    assert (priced + no_price).high_usd is None
    assert (priced + no_price).completion_tokens_high == 200


def test_describe_says_what_is_known() -> None:
    assert (
        CostEstimate(3, 120, 480, 6000, 0.0012, 0.045).describe()
        == "$0.0012 to $0.0450 for 3 calls (prompt 120-480 tokens, completion up to 6,000)"
    )
    assert CostEstimate(1, 5, 9, None, 0.5, None).describe() == (
        "at least $0.5000 (no completion limit set) for 1 call (prompt 5-9 tokens)"
    )
    assert CostEstimate(2, 5, 9, 10, None, None).describe().startswith("unknown cost (no catalog price) for 2 calls")


def test_a_call_is_estimated_from_its_body_and_the_entry() -> None:
    entry = ModelEntry.from_item(catalog_item("openai/gpt-4o", pricing=token_pricing(2.5, 10), output_max=16_384))
    call = body("openai/gpt-4o", IMAGE_MESSAGES, max_completion_tokens=100)
    estimate = estimate_call(call, entry)
    assert estimate.calls == 1
    assert estimate.completion_tokens_high == 100
    assert estimate.prompt_tokens_high >= IMAGE_TOKENS_AT_MOST  # the image at its bound
    assert estimate.low_usd == pytest.approx(estimate.prompt_tokens_low * 2.5e-6 + 1e-5, abs=1e-9)
    assert estimate.high_usd == pytest.approx(estimate.prompt_tokens_high * 2.5e-6 + 100 * 1e-5, abs=1e-9)
    # no limit in the body: the model's outputMax bounds the answer; no entry: nothing bounds it, nothing prices it
    assert estimate_call(body("openai/gpt-4o"), entry).completion_tokens_high == 16_384
    unknown = estimate_call(body("openai/gpt-4o"), None)
    assert (unknown.completion_tokens_high, unknown.low_usd, unknown.high_usd) == (None, None, None)
    assert estimate_calls([call, call], entry).calls == 2
    assert estimate_calls([call, call], entry).high_usd == pytest.approx(2 * estimate.high_usd, abs=1e-9)


# --- catalog entries ------------------------------------------------------------------------------------------


def test_an_item_is_read_with_aliases_limits_capabilities_pricing_and_its_schema_path() -> None:
    item = catalog_item(
        "openai/gpt-4o",
        aliases=("gpt-4o", "GPT-4o-2024-08-06"),
        capabilities=("file_input", "parallel_tool_calls", "streaming", "structured_output", "tools", "vision"),
        input_modalities=("image", "text"),
        context_length=128_000,
    )
    entry = ModelEntry.from_item(item)
    assert entry.id == "openai/gpt-4o"
    assert entry.aliases == ("gpt-4o", "GPT-4o-2024-08-06")
    assert entry.names() == {"openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06"}
    assert entry.type == "openai/chat-completions"
    assert (entry.context_length, entry.output_max) == (128_000, 16_384)
    assert entry.input_modalities == {"image", "text"}
    assert entry.pricing == TokenPricing(2.5e-6, 1e-5)
    assert not any(entry.lacks(capability) for capability in (VISION, TOOLS, STRUCTURED_OUTPUT))
    assert entry.lacks("audio_generation")
    # the catalog names api.aimlapi.com whatever serves it: only the path and query are kept
    assert entry.docs_json == docs_json("openai/gpt-4o")
    assert entry.schema_path() == "/docs-json?model=openai%2Fgpt-4o&endpoint=openai%2Fchat-completions"
    assert entry.raw is item


def test_an_item_without_capabilities_refuses_nothing() -> None:
    item = catalog_item("vendor/new-model", capabilities=None)
    del item["modalities"]
    entry = ModelEntry.from_item(item)
    assert entry.capabilities is None
    assert entry.input_modalities is None
    assert not entry.lacks(VISION)
    assert not entry.lacks(TOOLS)
    assert not entry.lacks(STRUCTURED_OUTPUT)


def test_an_image_input_modality_is_vision_even_when_the_capability_is_not_listed() -> None:
    entry = ModelEntry.from_item(catalog_item("vendor/vl", capabilities=("streaming",), input_modalities=("image",)))
    assert not entry.lacks(VISION)
    assert entry.lacks(TOOLS)


def test_malformed_optional_parts_are_left_unknown() -> None:
    item = {
        "id": "vendor/odd",
        "aliases": "odd",
        "info": {"contextLength": "128k", "outputMax": True, "docsJson": ""},
        "capabilities": "tools",
        "modalities": ["text"],
        "pricing": {"kind": "fixed", "units": "many"},
    }
    entry = ModelEntry.from_item(item)
    assert entry.aliases == ()
    assert (entry.context_length, entry.output_max) == (None, None)
    assert entry.capabilities is None
    assert entry.input_modalities is None
    assert entry.pricing is None
    assert entry.docs_json is None
    assert entry.schema_path() is None
    assert ModelEntry.from_item({"id": "x", "info": "nope", "type": None}).context_length is None
    assert ModelEntry.from_item({"id": "x", "info": {"contextLength": -5, "maxTokens": 4096}}).output_max == 4096


def test_item_of_takes_only_a_model_answer() -> None:
    item = catalog_item("openai/gpt-4o")
    assert item_of({"object": "model", "data": item}) is item
    assert item_of(None) is None  # a remembered 404
    assert item_of({"object": "model", "data": {"name": "no id"}}) is None
    assert item_of({"object": "list", "data": [item]}) is None
    assert item_of([item]) is None


# --- request schemas -------------------------------------------------------------------------------------------


def problem(spec: tuple[str, dict[str, Any], bool], key: str, value: Any) -> str | None:
    return schema_of(spec).parameters[key].problem(value)


def test_a_document_without_a_chat_completions_body_gives_no_schema() -> None:
    assert RequestSchema.from_openapi(None) is None
    assert RequestSchema.from_openapi({"openapi": "3.0.0", "paths": {"/v1/images/generations": {}}}) is None
    broken = doc_of(GPT_4O)
    for path in broken["paths"].values():
        path["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"] = []
    assert RequestSchema.from_openapi(broken) is None
    only_short_path = openapi_doc("openai/gpt-4o", OPENAI_PARAMETERS, paths=("/chat/completions",))
    schema = RequestSchema.from_openapi(only_short_path)
    assert schema is not None
    assert "temperature" in schema.parameters


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("temperature", 2.0, None),
        ("temperature", 2.5, "must be a number from 0 to 2"),
        ("temperature", -0.1, "must be a number from 0 to 2"),
        ("temperature", "hot", "must be number"),
        ("temperature", None, "must not be null"),
        ("top_p", 0.0, "must be a number from 0.01 to 1"),
        ("seed", 7, None),
        ("seed", 1.5, "must be integer"),
        ("seed", 0, "must be a whole number >= 1"),
        ("frequency_penalty", None, None),  # nullable
        ("frequency_penalty", 2.5, "must be a number from -2 to 2"),
        ("stop", None, None),  # anyOf with a nullable member
        ("stop", ["END"], None),
        ("stop", 3, "must be array or string"),
        ("parallel_tool_calls", "yes", "must be boolean"),
        ("n", None, None),
        ("top_logprobs", 21, "must be a number from 0 to 20"),
    ],
)
def test_parameter_rules_take_the_models_own_types_ranges_and_nullability(
    key: str, value: Any, expected: str | None
) -> None:
    assert problem(GPT_4O, key, value) == expected


def test_token_counts_typed_number_become_whole_numbers() -> None:
    rule = schema_of(GPT_4O).parameters["max_tokens"]  # "type": "number" in the real files
    assert rule.types == {"integer"}
    assert rule.problem(1024) is None
    assert rule.problem(10.5) == "must be integer"
    assert rule.problem(0) == "must be a whole number >= 1"
    claude_max = schema_of(CLAUDE).parameters["max_tokens"]  # number with a default and no minimum
    assert claude_max.problem(32000) is None
    assert claude_max.problem(1.5) == "must be integer"


def test_exclusive_minimum_in_both_openapi_forms() -> None:
    properties = {
        "width": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},  # 3.0: a flag on minimum
        "ratio": {"type": "number", "exclusiveMinimum": 0},  # 3.1: the bound itself
        "scale": {"type": "number", "minimum": 0, "exclusiveMinimum": False},
    }
    parameters = RequestSchema.from_openapi(openapi_doc("vendor/m", properties)).parameters  # type: ignore[union-attr]
    assert parameters["width"].problem(0) == "must be a whole number > 0"
    assert parameters["width"].problem(1) is None
    assert parameters["ratio"].problem(0) == "must be a number > 0"
    assert parameters["ratio"].problem(0.001) is None
    assert parameters["scale"].problem(0) is None
    assert parameters["scale"].problem(-1) == "must be a number >= 0"


def test_a_type_list_keeps_its_range() -> None:
    properties = {"temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2}}
    rule = RequestSchema.from_openapi(openapi_doc("vendor/m", properties)).parameters["temperature"]  # type: ignore[union-attr]
    assert rule.problem(None) is None
    assert rule.problem(1.0) is None
    assert rule.problem(5) == "must be a number from 0 to 2"


def test_enums_and_nested_object_fields() -> None:
    grok = schema_of(GROK_4).parameters["reasoning"]
    assert set(grok.fields) == {"effort", "max_tokens", "exclude"}
    assert grok.problem({"effort": "high"}) is None
    assert grok.problem({"effort": "max"}) == "['effort'] must be one of 'low', 'medium', 'high'"
    assert grok.problem({"max_tokens": 0}) == "['max_tokens'] must be a whole number >= 1"
    assert grok.problem({"max_tokens": 1.5}) == "['max_tokens'] must be integer"
    assert grok.problem({"exclude": "no"}) == "['exclude'] must be boolean"
    assert grok.problem({"something_new": 1}) is None  # only the fields the schema names are checked
    assert grok.problem("high") == "must be object"
    assert problem(GPT_5, "reasoning_effort", "minimal") == "must be one of 'low', 'medium', 'high'"
    assert problem(GPT_5, "reasoning_effort", "low") is None


def test_a_value_is_checked_against_the_alternative_of_its_own_type() -> None:
    # tool_choice: a string enum, or an object naming the function
    assert problem(GPT_4O, "tool_choice", "auto") is None
    assert problem(GPT_4O, "tool_choice", "sometimes") == "must be one of 'none', 'auto', 'required'"
    assert problem(GPT_4O, "tool_choice", {"type": "function", "function": {"name": "lookup"}}) is None
    assert problem(GPT_4O, "tool_choice", {"type": "tool", "function": {"name": "lookup"}}) is not None
    # response_format: three objects, told apart by their ``type``
    for kind in ("text", "json_object"):
        assert problem(GPT_4O, "response_format", {"type": kind}) is None
    json_schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert problem(GPT_4O, "response_format", json_schema) is None
    assert problem(GPT_4O, "response_format", {"type": "xml"}) is not None


def test_nested_alternatives_are_read_through() -> None:
    # the newest Anthropic files: anyOf [ oneOf [enabled+budget, disabled, adaptive], {type: string} ]
    thinking = {
        "anyOf": [
            {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": ["enabled"]},
                            "budget_tokens": {"type": "integer", "minimum": 1024},
                            "display": {"type": "string", "enum": ["summarized", "omitted"]},
                        },
                        "required": ["type", "budget_tokens"],
                    },
                    {"type": "object", "properties": {"type": {"type": "string", "enum": ["disabled"]}}},
                    {"type": "object", "properties": {"type": {"type": "string", "enum": ["adaptive"]}}},
                ]
            },
            {"type": "object", "properties": {"type": {"type": "string", "minLength": 1}}, "required": ["type"]},
        ]
    }
    schema = RequestSchema.from_openapi(openapi_doc("anthropic/claude-sonnet-latest", {"thinking": thinking}))
    assert schema is not None
    rule = schema.parameters["thinking"]
    assert "budget_tokens" in rule.fields
    assert rule.problem({"type": "enabled", "budget_tokens": 512}) == "['budget_tokens'] must be a whole number >= 1024"
    assert rule.problem({"type": "adaptive"}) is None
    control = control_from(schema.parameters)
    assert control is not None
    assert control.budget_key == "thinking.budget_tokens"
    assert control.budget_min == 1024


def test_vision_is_whether_user_parts_may_be_image_url() -> None:
    assert schema_of(GPT_4O).vision is True
    assert schema_of(QWEN3_32B).vision is False
    no_messages = openapi_doc("vendor/m", {})
    for path in no_messages["paths"].values():
        del path["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["messages"]
    assert RequestSchema.from_openapi(no_messages).vision is None  # type: ignore[union-attr]


def test_rules_describe_themselves_in_a_few_words() -> None:
    parameters = schema_of(GPT_4O).parameters
    assert parameters["temperature"].describe() == "number, from 0 to 2"
    assert parameters["seed"].describe() == "integer, >= 1"
    assert parameters["parallel_tool_calls"].describe() == "boolean"
    assert schema_of(GPT_5).parameters["reasoning_effort"].describe() == "'low' | 'medium' | 'high'"
    assert ParameterRule("anything").describe() == "any"
    assert ParameterRule("anything").problem({"a": 1}) is None


# --- the reasoning switch ----------------------------------------------------------------------------------------


def control_of(spec: tuple[str, dict[str, Any], bool]) -> ReasoningControl | None:
    return control_from(schema_of(spec).parameters)


def test_each_family_is_read_from_its_schema() -> None:
    assert control_of(GPT_5) == ReasoningControl(effort_key="reasoning_effort")
    assert control_of(GROK_4) == ReasoningControl(effort_key="reasoning.effort", budget_key="reasoning.max_tokens")
    assert control_of(QWEN3_32B) == ReasoningControl(budget_key="thinking_budget", toggle_key="enable_thinking")
    assert control_of(CLAUDE) == ReasoningControl(budget_key="thinking.budget_tokens", budget_min=1024)
    assert control_of(GLM_45) == ReasoningControl(toggle_key="thinking.type")
    assert control_of(DEEPSEEK_V4) == ReasoningControl(effort_key="reasoning_effort", budget_key="reasoning.max_tokens")
    assert control_of(GPT_4O) is None


@pytest.mark.parametrize(
    ("spec", "effort", "budget", "max_tokens", "expected"),
    [
        (GPT_5, "high", None, None, {"reasoning_effort": "high"}),
        (GROK_4, "low", None, None, {"reasoning": {"effort": "low"}}),
        (GROK_4, None, 2048, None, {"reasoning": {"max_tokens": 2048}}),
        (QWEN3_32B, None, 512, None, {"enable_thinking": True, "thinking_budget": 512}),
        (CLAUDE, None, 2048, 8192, {"thinking": {"type": "enabled", "budget_tokens": 2048}}),
        (CLAUDE, None, 4095, 4096, {"thinking": {"type": "enabled", "budget_tokens": 4095}}),
        (DEEPSEEK_V4, "medium", None, None, {"reasoning_effort": "medium"}),
        (GPT_4O, None, None, None, {}),  # neither switch set: nothing, even for a model without any control
    ],
    ids=["openai", "grok-effort", "grok-budget", "qwen", "anthropic", "anthropic-just-below", "deepseek", "unset"],
)
def test_the_switch_becomes_each_familys_wire_keys(
    spec: tuple[str, dict[str, Any], bool], effort: Any, budget: Any, max_tokens: Any, expected: dict[str, Any]
) -> None:
    assert reasoning_keys(spec[0], control_of(spec), effort, budget, max_tokens) == expected


@pytest.mark.parametrize(
    ("spec", "effort", "budget", "max_tokens", "message"),
    [
        (QWEN3_32B, "high", None, None, "has no reasoning effort setting.*set reasoning_budget_tokens instead"),
        (CLAUDE, "low", None, None, "has no reasoning effort setting.*thinking.budget_tokens"),
        (GPT_5, None, 4096, None, "has no reasoning token budget.*set reasoning_effort instead"),
        (GROK_4, "high", 2048, None, "takes reasoning.effort or reasoning.max_tokens, not both"),
        (CLAUDE, None, 512, None, "takes a reasoning_budget_tokens of at least 1,024, got 512"),
        (CLAUDE, None, 4096, 4096, r"needs reasoning_budget_tokens \(4,096\) below max_tokens \(4,096\)"),
        (GLM_45, "high", None, None, r"only thinking on/off, as thinking.type.*extra_body=\{'thinking'"),
        (GLM_45, None, 1024, None, r"has no reasoning token budget.*extra_body=\{'thinking': \{'type': 'enabled'"),
        (GPT_4O, "low", None, None, "takes no reasoning parameter"),
        (GPT_4O, None, 100, None, "takes no reasoning parameter"),
    ],
    ids=[
        "effort-to-budget-only",
        "effort-to-anthropic",
        "budget-to-effort-only",
        "both-in-reasoning",
        "anthropic-minimum",
        "anthropic-budget-not-below-max-tokens",
        "effort-to-toggle-only",
        "budget-to-toggle-only",
        "no-control-effort",
        "no-control-budget",
    ],
)
def test_what_a_model_cannot_take_is_a_clear_error_naming_it(
    spec: tuple[str, dict[str, Any], bool], effort: Any, budget: Any, max_tokens: Any, message: str
) -> None:
    with pytest.raises(AimlParameterError, match=message) as raised:
        reasoning_keys(spec[0], control_of(spec), effort, budget, max_tokens)
    assert repr(spec[0]) in str(raised.value)


@pytest.mark.parametrize(
    ("effort", "budget", "message"),
    [
        ("max", None, "'reasoning_effort' must be one of 'low', 'medium', 'high', got 'max'"),
        ("minimal", None, "'reasoning_effort' must be one of"),
        (None, 0, "'reasoning_budget_tokens' must be a whole number >= 1, got 0"),
        (None, True, "'reasoning_budget_tokens' must be a whole number >= 1, got True"),
        (None, 1.5, "'reasoning_budget_tokens' must be a whole number >= 1, got 1.5"),
        (None, "1024", "'reasoning_budget_tokens' must be a whole number >= 1"),
    ],
)
def test_invalid_switch_values_are_refused_whatever_the_model(effort: Any, budget: Any, message: str) -> None:
    for control in (control_of(GROK_4), None):
        with pytest.raises(AimlParameterError, match=message):
            reasoning_keys("x-ai/grok-4", control, effort, budget)


def test_the_models_own_effort_values_and_budget_minimum_count() -> None:
    narrow = {"reasoning_effort": {"type": "string", "enum": ["low", "high"]}}
    control = control_from(RequestSchema.from_openapi(openapi_doc("vendor/m", narrow)).parameters)  # type: ignore[union-attr]
    assert control is not None
    assert control.efforts == ("low", "high")
    with pytest.raises(AimlParameterError, match="'vendor/m' takes reasoning_effort 'low', 'high', not 'medium'"):
        reasoning_keys("vendor/m", control, "medium")
    ernie = {
        "enable_thinking": {"type": "boolean", "default": True},
        "thinking_budget": {"type": "integer", "minimum": 100},
    }
    control = control_from(RequestSchema.from_openapi(openapi_doc("baidu/ernie-5.0", ernie)).parameters)  # type: ignore[union-attr]
    with pytest.raises(AimlParameterError, match="at least 100, got 50"):
        reasoning_keys("baidu/ernie-5.0", control, None, 50)
    assert reasoning_keys("baidu/ernie-5.0", control, None, 100) == {"enable_thinking": True, "thinking_budget": 100}


def test_known_families_match_ids_case_insensitively() -> None:
    assert known_family("openai/gpt-5-mini") == ReasoningControl(effort_key="reasoning_effort")
    assert known_family("OpenAI/O3-mini") == ReasoningControl(effort_key="reasoning_effort")
    assert known_family("anthropic/claude-opus-4-5") == ReasoningControl(
        budget_key="thinking.budget_tokens", budget_min=1024
    )
    assert known_family("zhipu/glm-4.5-air") == ReasoningControl(toggle_key="thinking.type")
    assert known_family("alibaba/qwen3-vl-32b-thinking") is None  # always thinks, takes no switch
    assert known_family("openai/gpt-4o") is None


def test_the_built_in_families_are_used_only_without_a_schema() -> None:
    assert ModelProfile.build("openai/gpt-5").reasoning == ReasoningControl(effort_key="reasoning_effort")
    # the model's schema is the authority: a gpt-5-named model whose schema has no reasoning key takes none
    without = RequestSchema.from_openapi(openapi_doc("openai/gpt-5", _without(GPT_5[1], "reasoning_effort")))
    assert ModelProfile.build("openai/gpt-5", schema=without).reasoning is None
    assert ModelProfile.build("openai/gpt-4o", schema=schema_of(GROK_4)).reasoning == control_of(GROK_4)


# --- profiles ----------------------------------------------------------------------------------------------------


def profile_of(spec: tuple[str, dict[str, Any], bool], with_schema: bool = True, **item: Any) -> ModelProfile:
    entry = ModelEntry.from_item(catalog_item(spec[0], **item))
    return ModelProfile.build(spec[0], entry, schema_of(spec) if with_schema else None)


def test_images_to_a_model_without_vision_are_refused_naming_model_and_capability() -> None:
    profile = profile_of(QWEN3_32B, with_schema=False)  # the catalog lists no vision
    with pytest.raises(AimlParameterError, match=r"'alibaba/qwen3-32b' does not take images .*'vision'"):
        profile.check(body("alibaba/qwen3-32b", IMAGE_MESSAGES))
    with pytest.raises(AimlParameterError, match="'vision'"):
        profile.check_messages(IMAGE_MESSAGES)
    profile.check(body("alibaba/qwen3-32b"))  # text passes
    profile.check_messages(TEXT_MESSAGES)


def test_the_schema_alone_can_refuse_images_and_nothing_refuses_without_either() -> None:
    schema_only = ModelProfile.build("alibaba/qwen3-32b", None, schema_of(QWEN3_32B))
    with pytest.raises(AimlParameterError, match="does not take images"):
        schema_only.check(body("alibaba/qwen3-32b", IMAGE_MESSAGES))
    ModelProfile.build("openai/gpt-4o", None, schema_of(GPT_4O)).check(body("openai/gpt-4o", IMAGE_MESSAGES))
    ModelProfile.build("vendor/unlisted").check(body("vendor/unlisted", IMAGE_MESSAGES, tools=[{"type": "function"}]))


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def test_tools_to_a_model_without_the_tools_capability_are_refused() -> None:
    profile = profile_of(GPT_4O, with_schema=False, capabilities=("streaming",))
    with pytest.raises(AimlParameterError, match=r"'openai/gpt-4o' does not take tools .*'tools'"):
        profile.check(body("openai/gpt-4o", tools=[TOOL]))
    # the schema's silence refuses as well: no "tools" property
    no_tools = openapi_doc("vendor/plain", _without(OPENAI_PARAMETERS, "tools", "tool_choice"))
    profile = ModelProfile.build("vendor/plain", None, RequestSchema.from_openapi(no_tools))
    with pytest.raises(AimlParameterError, match="'vendor/plain' does not take tools"):
        profile.check(body("vendor/plain", tools=[TOOL]))


def test_a_json_schema_format_needs_structured_output_but_json_object_does_not() -> None:
    profile = profile_of(GPT_4O, capabilities=("streaming", "tools"))
    with pytest.raises(AimlParameterError, match=r"'openai/gpt-4o' does not take a json_schema .*'structured_output'"):
        profile.check(body("openai/gpt-4o", response_format=JSON_SCHEMA_FORMAT))
    profile.check(body("openai/gpt-4o", response_format={"type": "json_object"}))
    profile_of(GPT_4O).check(body("openai/gpt-4o", response_format=JSON_SCHEMA_FORMAT, tools=[TOOL]))


def test_a_parameter_the_schema_does_not_take_is_refused_naming_the_models_parameters() -> None:
    profile = profile_of(GPT_5)
    with pytest.raises(AimlParameterError) as raised:
        profile.check(body("openai/gpt-5", temperature=0.2))
    message = str(raised.value)
    assert message.startswith("'openai/gpt-5' does not take 'temperature'; its schema's parameters are ")
    listed = message.split("parameters are ", 1)[1].split(", ")
    assert "reasoning_effort" in listed
    assert "max_completion_tokens" in listed
    assert "model" not in listed
    assert "messages" not in listed
    assert "stream" not in listed


def test_unknown_keys_that_only_extra_body_sets_pass_but_known_ones_are_still_checked() -> None:
    profile = profile_of(QWEN3_32B)
    profile.check(body("alibaba/qwen3-32b", verbosity="low"), extra_keys={"verbosity"})
    with pytest.raises(AimlParameterError, match="'thinking_budget' must be a whole number >= 1"):
        profile.check(body("alibaba/qwen3-32b", thinking_budget=0), extra_keys={"thinking_budget"})
    with pytest.raises(AimlParameterError, match="does not take 'verbosity'"):
        profile.check(body("alibaba/qwen3-32b", verbosity="low"))


def test_a_value_out_of_the_models_own_range_is_refused() -> None:
    profile = profile_of(CLAUDE)
    with pytest.raises(AimlParameterError) as raised:
        profile.check(body("anthropic/claude-sonnet-4.5", temperature=1.5))
    assert str(raised.value) == "'temperature' must be a number from 0 to 1 for 'anthropic/claude-sonnet-4.5', got 1.5"
    profile.check(body("anthropic/claude-sonnet-4.5", temperature=1.0))
    profile_of(GPT_4O).check(body("openai/gpt-4o", temperature=1.5))  # 0-2 there
    long_value = {"type": "enabled", "budget_tokens": 10, "note": "x" * 200}
    with pytest.raises(AimlParameterError, match=r"got \{.*\.\.\.$"):
        profile.check(body("anthropic/claude-sonnet-4.5", thinking=long_value))


def test_without_a_schema_only_capabilities_are_checked() -> None:
    profile = profile_of(GPT_4O, with_schema=False)
    assert not profile.checks_parameters
    assert profile_of(GPT_4O).checks_parameters
    profile.check(body("openai/gpt-4o", temperature=7, whatever=1))  # the built-in ranges apply elsewhere


# --- the cache -------------------------------------------------------------------------------------------------


class Clock:
    """``time.time`` that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache_module.time, "time", fake)
    return fake


URL = "https://api.test.invalid/model/openai/gpt-4o?include=all"
ITEM = {"object": "model", "data": catalog_item("openai/gpt-4o")}


def ok(payload: Any = ITEM, etag: str | None = 'W/"1440a0-uH6N"') -> httpx.Response:
    return httpx.Response(200, json=payload, headers={"etag": etag} if etag else {})


def read(cache: CatalogCache, answer: httpx.Response | Exception | None) -> Any:
    """One read as the hook does it: use a fresh copy, else ask and settle (``None``: must not have to ask)."""
    lookup = cache.lookup(URL)
    if lookup.fresh:
        assert answer is None, "the copy was fresh: nothing should have been asked"
        return lookup
    assert answer is not None, "the copy was not fresh: the catalog had to be asked"
    return cache.settle(lookup, answer)


def test_a_fresh_copy_is_used_without_asking(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    first = cache.lookup(URL)
    assert not first.fresh
    assert first.document is None
    assert first.headers() == {}
    settled = cache.settle(first, ok())
    assert settled.failure is None
    assert settled.document is not None
    assert settled.document.payload == ITEM
    assert settled.document.etag == 'W/"1440a0-uH6N"'
    clock.advance(3599)
    again = cache.lookup(URL)
    assert again.fresh
    assert again.document == settled.document


def test_a_stale_copy_is_revalidated_and_a_304_renews_it(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    read(cache, ok())
    clock.advance(3600)
    stale = cache.lookup(URL)
    assert not stale.fresh
    assert stale.headers() == {"If-None-Match": 'W/"1440a0-uH6N"'}
    renewed = cache.settle(stale, httpx.Response(304))
    assert renewed.failure is None
    assert renewed.document is not None
    assert renewed.document.payload == ITEM
    assert renewed.document.checked_at == clock.now
    clock.advance(3599)
    assert cache.lookup(URL).fresh


def test_a_200_replaces_the_copy_and_its_etag(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=60)
    read(cache, ok())
    clock.advance(61)
    newer = {"object": "model", "data": catalog_item("openai/gpt-4o", context_length=256_000)}
    settled = read(cache, ok(newer, etag='W/"2000-new"'))
    assert settled.document.payload == newer
    clock.advance(61)
    assert cache.lookup(URL).headers() == {"If-None-Match": 'W/"2000-new"'}


def test_a_404_is_remembered_like_a_document(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    settled = read(cache, httpx.Response(404, json={"message": "Model not found"}))
    assert settled.failure is None
    assert settled.document.status == 404
    assert settled.document.payload is None
    clock.advance(1800)
    again = cache.lookup(URL)
    assert again.fresh
    assert again.document.status == 404
    assert CatalogCache(tmp_path, ttl=3600).lookup(URL).document.status == 404  # on disk too


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(503), httpx.Response(200, text="<html>"), httpx.ConnectError("no route to host")],
    ids=["503", "not-json", "connect-error"],
)
def test_an_outage_uses_the_stale_copy_within_max_stale(tmp_path: Path, clock: Clock, failure: Any) -> None:
    cache = CatalogCache(tmp_path, ttl=3600, max_stale=86_400)
    read(cache, ok())
    clock.advance(7200)
    settled = read(cache, failure)
    assert settled.document is not None
    assert settled.document.payload == ITEM
    assert settled.failure.endswith("; using the copy read 2.0 h ago")


def test_an_outage_beyond_max_stale_gives_nothing(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600, max_stale=86_400)
    read(cache, ok())
    clock.advance(86_401)
    settled = read(cache, httpx.Response(502))
    assert settled.document is None
    assert settled.failure == "HTTP 502"


def test_after_a_failure_the_url_is_not_asked_again_for_60_seconds(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    read(cache, httpx.ConnectError("connection refused"))
    clock.advance(RETRY_AFTER_FAILURE - 1)
    quiet = cache.lookup(URL)
    assert quiet.fresh
    assert quiet.document is None
    clock.advance(2)
    assert not cache.lookup(URL).fresh  # asked again
    # with a stale copy, the quiet minute serves it (while it is within max_stale)
    read(cache, ok())
    clock.advance(4000)
    read(cache, httpx.Response(500))
    clock.advance(30)
    quiet = cache.lookup(URL)
    assert quiet.fresh
    assert quiet.document is not None
    assert quiet.document.payload == ITEM


def test_a_lookup_in_the_quiet_minute_says_why_there_is_no_copy(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    read(cache, httpx.Response(503))
    quiet = cache.lookup(URL)
    assert quiet.fresh
    assert quiet.document is None
    assert quiet.failure == "HTTP 503"  # a reader must not take "no copy" for "not in the catalog"


def test_failure_reasons_never_quote_what_an_unknown_error_says(tmp_path: Path, clock: Clock) -> None:
    cache = CatalogCache(tmp_path, ttl=3600)
    settled = read(cache, ValueError("Authorization: Bearer secret-header-value"))
    assert settled.failure == "ValueError"
    clock.advance(61)
    assert read(cache, httpx.ReadTimeout("timed out")).failure == "ReadTimeout: timed out"
    clock.advance(61)
    assert read(cache, httpx.Response(304)).failure == "HTTP 304"  # a 304 with no copy to renew


def test_a_new_cache_reads_the_copy_back_from_disk(tmp_path: Path, clock: Clock) -> None:
    read(CatalogCache(tmp_path, ttl=3600), ok())
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".json"
    record = json.loads(files[0].read_text(encoding="utf-8"))
    assert record["url"] == URL
    assert record["etag"] == 'W/"1440a0-uH6N"'
    assert record["payload"] == ITEM
    clock.advance(600)
    again = CatalogCache(tmp_path, ttl=3600).lookup(URL)
    assert again.fresh
    assert again.document.payload == ITEM
    clock.advance(3600)
    stale = CatalogCache(tmp_path, ttl=3600).lookup(URL)
    assert not stale.fresh
    assert stale.headers() == {"If-None-Match": 'W/"1440a0-uH6N"'}


def test_a_damaged_or_foreign_disk_copy_is_ignored(tmp_path: Path, clock: Clock) -> None:
    read(CatalogCache(tmp_path, ttl=3600), ok())
    (path,) = tmp_path.iterdir()
    path.write_text("{not json", encoding="utf-8")
    assert CatalogCache(tmp_path, ttl=3600).lookup(URL).document is None
    path.write_text(json.dumps({"url": "https://elsewhere/", "payload": 1, "checked_at": clock.now}), encoding="utf-8")
    assert CatalogCache(tmp_path, ttl=3600).lookup(URL).document is None


def test_disk_copies_are_replaced_whole(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CatalogCache(tmp_path, ttl=60)
    read(cache, ok())
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", replace)
    clock.advance(61)
    read(cache, ok({"object": "model", "data": catalog_item("openai/gpt-4o", aliases=("gpt-4o",))}, 'W/"v2"'))
    ((src, dst),) = replaced
    assert Path(src).parent == tmp_path
    assert src.endswith(".tmp")
    assert Path(dst).suffix == ".json"
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]  # no temporary file left over
    assert CatalogCache(tmp_path, ttl=60).lookup(URL).document.etag == 'W/"v2"'


def test_a_failed_disk_write_keeps_the_old_copy_and_leaves_no_temporary_file(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CatalogCache(tmp_path, ttl=60)
    read(cache, ok())

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", broken)
    clock.advance(61)
    read(cache, ok({"object": "model", "data": {"id": "openai/gpt-4o"}}, 'W/"v2"'))
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]
    assert CatalogCache(tmp_path, ttl=60).lookup(URL).document.etag == 'W/"1440a0-uH6N"'  # the old file, whole
    assert cache.lookup(URL).document.etag == 'W/"v2"'  # memory has the new answer


def test_an_unwritable_directory_is_logged_once_and_memory_still_works(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    cache = CatalogCache(blocker / "aiml-catalog", ttl=3600)
    with caplog.at_level(logging.WARNING, logger=cache_module.__name__):
        read(cache, ok())
        other = "https://api.test.invalid/model/openai/gpt-5?include=all"
        cache.settle(cache.lookup(other), ok())
    warnings = [r for r in caplog.records if "cannot be cached" in r.getMessage()]
    assert len(warnings) == 1
    assert "kept in memory only" in warnings[0].getMessage()
    assert cache.lookup(URL).fresh
    assert cache.lookup(other).fresh


def test_one_cache_per_directory_and_ttl_in_the_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reset_catalog_caches()
    first = catalog_cache(str(tmp_path), 3600)
    assert catalog_cache(str(tmp_path), 3600) is first
    assert catalog_cache(str(tmp_path), 60) is not first
    assert catalog_cache(None).directory is None
    reset_catalog_caches()
    assert catalog_cache(str(tmp_path), 3600) is not first
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "aiml-catalog")


# --- which failures go to a fallback model ---------------------------------------------------------------------


def status(code: int, message: str) -> Any:
    return parse_error(code, {}, json.dumps({"message": message, "statusCode": code}).encode(), "trace-1")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (status(404, "Model is deprecated"), "the model is deprecated"),
        (status(403, "The key's scopes do not allow model:chat"), "the key's scopes do not allow the model"),
        (status(500, "Internal server error"), "HTTP 500 after its retries"),
        (status(503, "Service unavailable"), "HTTP 503 after its retries"),
        (AimlTimeoutError("No answer within 300s"), "AimlTimeoutError after its retries"),
        (AimlTransportError("Connection to the AI/ML API failed"), "AimlTransportError after its retries"),
        (AimlStreamIncompleteError("ended without a finish reason"), "AimlStreamIncompleteError after its retries"),
    ],
)
def test_failures_another_model_can_help_with(error: Any, reason: str) -> None:
    assert fallback_reason(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        status(400, "Body validation error!"),
        status(401, "This request requires a valid API key."),
        status(429, "Too Many Requests"),
        status(404, "Model not found"),
        status(404, "Cannot POST /v1/chat/completion"),
        status(403, "You've run out of credits. Please top up your balance"),
        status(403, "The key's scope is fine but its spend limit is reached"),
        status(403, "Your balance is too low for model:chat scope"),
        status(403, "Forbidden"),
        AimlResponseError("not JSON"),
    ],
    ids=[
        "400",
        "401",
        "429",
        "404-unknown",
        "404-path",
        "403-credits",
        "403-spend-limit",
        "403-balance-and-scope",
        "403-plain",
        "bad-body",
    ],
)
def test_failures_no_other_model_can_help_with(error: Any) -> None:
    assert fallback_reason(error) is None


def test_the_status_errors_are_the_classes_the_fallback_rules_name() -> None:
    assert isinstance(status(404, "x"), AimlNotFoundError)
    assert isinstance(status(403, "x"), AimlPermissionError)
    assert isinstance(status(502, "x"), AimlServerError)
    assert isinstance(status(429, "x"), AimlRateLimitError)
    assert isinstance(status(401, "x"), AimlAuthenticationError)
    assert isinstance(status(400, "x"), AimlBadRequestError)


def test_the_catalogs_vision_capability_wins_over_a_schema_without_image_url_parts() -> None:
    """Claude's schemas show only Anthropic's own image parts; the API takes image_url parts for it all the same."""
    from airflow_provider_aiml.catalog.entry import ModelEntry
    from airflow_provider_aiml.catalog.profile import ModelProfile
    from airflow_provider_aiml.catalog.schema import RequestSchema

    schema = RequestSchema({}, vision=False)
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}]}]
    listed = ModelEntry("anthropic/claude-sonnet-4.5", capabilities=frozenset({"vision", "tools"}))
    ModelProfile.build(listed.id, listed, schema).check_messages(image)  # the catalog says vision: taken
    unlisted = ModelEntry("anthropic/claude-sonnet-4.5")  # the catalog lists no capabilities: the schema decides
    with pytest.raises(AimlParameterError, match=r"does not take images \(its schema takes no image parts\)"):
        ModelProfile.build(unlisted.id, unlisted, schema).check_messages(image)
    text_only = ModelEntry("alibaba/qwen3-32b", capabilities=frozenset({"tools"}))
    with pytest.raises(AimlParameterError, match=r"no 'vision' capability in the catalog"):
        ModelProfile.build(text_only.id, text_only, None).check_messages(image)


def test_qwen3_32b_thinks_only_when_streamed_even_without_the_catalog() -> None:
    """Its page's rule holds for its id and, when no entry gives the id (an outage), for its alias too."""
    thinking = {"messages": [{"role": "user", "content": "Is 97 prime?"}], "enable_thinking": True}
    for name in ("alibaba/qwen3-32b", "qwen3-32b"):
        with pytest.raises(AimlParameterError, match=f"'{name}' thinks only on streamed calls"):
            ModelProfile.build(name).check(thinking)
        ModelProfile.build(name).check({**thinking, "stream": True})
        ModelProfile.build(name).check({**thinking, "enable_thinking": False})
    ModelProfile.build("alibaba/qwen3-vl-32b-thinking").check(thinking)  # the rule is that model's alone

"""Per-model body checks (``model_checks.model_errors``): each model's ranges, enums, reasoning keys and inputs."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aiml.testing.model_checks import model_errors
from airflow_provider_aiml.testing.model_specs import CHAT_MODELS, SEED_MODEL, ModelSpec, chat_spec

USER = {"role": "user", "content": "hi"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
TOOL: dict[str, Any] = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def spec_of(model: str) -> ModelSpec:
    spec = chat_spec(model)
    assert spec is not None
    return spec


def errors(model: str, **extra: Any) -> list[str]:
    """``model_errors`` of a one-message body for ``model`` with ``extra`` top-level keys."""
    body: dict[str, Any] = {"model": model, "messages": [USER], **extra}
    return model_errors(spec_of(model), body)


def image_message() -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "what is this?"}, IMAGE]}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "anthropic/claude-sonnet-4.5",
        {"temperature": 1.5},
        'Expected number <= 1, received 1.5 at "temperature"',
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"thinking": {"type": "enabled", "budget_tokens": 512}},
        'Expected integer >= 1024, received 512 at "thinking.budget_tokens"',
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 1000},
        'Expected number < 1000 (max_tokens), received 2000 at "thinking.budget_tokens"',
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"thinking": {"budget_tokens": 2000}},
        "Expected 'enabled', received undefined at \"thinking.type\"",
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"metadata": {"user_id": 7}},
        'Expected string, received number at "metadata.user_id"',
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"temperature": True},
        'Expected number, received boolean at "temperature"',
    ),
    (
        "openai/gpt-5",
        {"reasoning_effort": "max"},
        "Expected 'low' | 'medium' | 'high', received 'max' at \"reasoning_effort\"",
    ),
    (
        "openai/gpt-5",
        {"n": 1.5},
        'Expected integer, received float at "n"',
    ),
    (
        "alibaba/qwen3-32b",
        {"enable_thinking": "yes"},
        'Expected boolean, received string at "enable_thinking"',
    ),
    (
        "alibaba/qwen3-32b",
        {"thinking_budget": 0},
        'Expected integer >= 1, received 0 at "thinking_budget"',
    ),
    (
        "zhipu/glm-4.5",
        {"thinking": {"type": "maybe"}},
        "Expected 'enabled' | 'disabled', received 'maybe' at \"thinking.type\"",
    ),
    (
        "x-ai/grok-4-07-09",
        {"reasoning": {"effort": "max"}},
        "Expected 'low' | 'medium' | 'high', received 'max' at \"reasoning.effort\"",
    ),
    (
        "x-ai/grok-4-07-09",
        {"top_a": 2},
        'Expected number <= 1, received 2 at "top_a"',
    ),
    (
        "openai/gpt-4o",
        {"logit_bias": {"50256": -101}},
        'Expected number >= -100, received -101 at "logit_bias.50256"',
    ),
    (
        "openai/gpt-4o",
        {"prediction": {"type": "content"}},
        'Expected string | array, received undefined at "prediction.content"',
    ),
    (
        "openai/gpt-4o",
        {"prediction": {"type": "content", "content": 5}},
        'Expected string | array, received number at "prediction.content"',
    ),
    (
        "openai/gpt-4o",
        {"prediction": {"type": "content", "content": [{"type": "text"}]}},
        'Expected string, received undefined at "prediction.content[0].text"',
    ),
    (
        "deepseek/deepseek-r1",
        {"min_p": 0},
        'Expected number >= 0.001, received 0 at "min_p"',
    ),
    (
        "deepseek/deepseek-r1",
        {"tools": [TOOL]},
        "Model deepseek/deepseek-r1 does not support tools",
    ),
    (
        "deepseek/deepseek-r1",
        {"response_format": JSON_SCHEMA},
        "Model deepseek/deepseek-r1 does not support structured output (json_schema)",
    ),
    (
        "anthropic/claude-sonnet-4.5",
        {"response_format": JSON_SCHEMA},
        "Model anthropic/claude-sonnet-4.5 does not support structured output (json_schema)",
    ),
]


@pytest.mark.parametrize(("model", "extra", "message"), INVALID)
def test_refused(model: str, extra: dict[str, Any], message: str) -> None:
    assert errors(model, **extra) == [message]


VALID: list[tuple[str, dict[str, Any]]] = [
    ("anthropic/claude-sonnet-4.5", {"temperature": 0.9}),
    ("anthropic/claude-sonnet-4.5", {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 4000}),
    ("anthropic/claude-sonnet-4.5", {"thinking": {"type": "enabled", "budget_tokens": 2000}}),
    ("anthropic/claude-sonnet-4.5", {"tools": [TOOL], "tool_choice": "auto"}),
    ("openai/gpt-5", {"reasoning_effort": "low"}),
    ("openai/gpt-5", {"response_format": JSON_SCHEMA}),
    ("openai/gpt-4o", {"n": None, "stop": ["\n"], "logit_bias": {"50256": -100}, "frequency_penalty": None}),
    ("openai/gpt-4o", {"prediction": {"type": "content", "content": [{"type": "text", "text": "x"}]}}),
    ("alibaba/qwen3-32b", {"enable_thinking": True, "thinking_budget": 1, "stream": True}),
    ("zhipu/glm-4.5", {"thinking": {"type": "disabled"}}),
    ("x-ai/grok-4-07-09", {"reasoning": {"effort": "high", "exclude": True}}),
    ("deepseek/deepseek-r1", {"tools": []}),
    # Keys a model's schema does not know are ignored (the API ignores them), reasoning keys aside.
    ("openai/gpt-4o", {"foo": "bar"}),
    ("deepseek/deepseek-r1", {"temperature": 1.9, "foo": {"any": "thing"}}),
    ("openai/gpt-5", {"temperature": 5}),
]


@pytest.mark.parametrize(("model", "extra"), VALID)
def test_accepted(model: str, extra: dict[str, Any]) -> None:
    assert errors(model, **extra) == []


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_plain_body_accepted_by_every_model(model: str) -> None:
    assert errors(model, stream=True, stream_options={"include_usage": True}) == []


def test_deepseek_refuses_images_and_tool_role_but_takes_developer() -> None:
    spec = spec_of("deepseek/deepseek-r1")
    body = {
        "model": spec.model_id,
        "messages": [{"role": "developer", "content": "be brief"}, image_message(), {"role": "tool", "content": "x"}],
    }
    assert model_errors(spec, body) == [
        'Model deepseek/deepseek-r1 does not support image input (at "messages[1].content[1]")',
        "Expected 'user' | 'developer' | 'system' | 'assistant', received 'tool' at \"messages[2].role\"",
    ]


def test_qwen3_32b_refuses_images_and_files() -> None:
    spec = spec_of("alibaba/qwen3-32b")
    file_part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA=="}}
    body = {"model": spec.model_id, "messages": [image_message(), {"role": "user", "content": [file_part]}]}
    assert model_errors(spec, body) == [
        'Model alibaba/qwen3-32b does not support image input (at "messages[0].content[1]")',
        'Model alibaba/qwen3-32b does not support file input (at "messages[1].content[0]")',
    ]


def test_qwen3_32b_refuses_developer_role() -> None:
    spec = spec_of("alibaba/qwen3-32b")
    body = {"model": spec.model_id, "messages": [{"role": "developer", "content": "x"}, USER]}
    assert model_errors(spec, body) == [
        "Expected 'user' | 'system' | 'tool' | 'assistant', received 'developer' at \"messages[0].role\""
    ]


def test_gpt_4o_takes_images() -> None:
    spec = spec_of("openai/gpt-4o")
    assert model_errors(spec, {"model": "gpt-4o", "messages": [image_message()]}) == []


def test_several_errors_are_all_reported() -> None:
    assert errors("anthropic/claude-sonnet-4.5", temperature=2, top_k=-1, reasoning_effort="low") == [
        'Expected number <= 1, received 2 at "temperature"',
        'Expected number >= 0, received -1 at "top_k"',
    ]


def test_reasoning_keys_a_model_does_not_list_are_ignored_as_the_api_does() -> None:
    assert errors("openai/gpt-4o", thinking={"type": "enabled", "budget_tokens": 2000}) == []
    assert errors("alibaba/qwen3-vl-32b-thinking", enable_thinking=False) == []


def test_seed_model_accepts_a_typical_body_with_an_image() -> None:
    spec = spec_of(SEED_MODEL)
    body = {
        "model": SEED_MODEL,
        "messages": [{"role": "system", "content": "You describe pictures."}, image_message()],
        "max_tokens": 512,
        "temperature": 0.7,
        "top_p": 0.9,
        "stream": True,
        "stream_options": {"include_usage": True},
        "stop": ["END"],
        "seed": 42,
        "frequency_penalty": 0.5,
        "presence_penalty": None,
        "repetition_penalty": 1.05,
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": JSON_SCHEMA,
    }
    assert model_errors(spec, body) == []


def test_qwen3_32b_thinks_only_on_streamed_calls() -> None:
    assert errors("alibaba/qwen3-32b", enable_thinking=True) == [
        "enable_thinking must be set to false for non-streaming calls"
    ]
    assert errors("alibaba/qwen3-32b", enable_thinking=True, stream=True) == []
    assert errors("alibaba/qwen3-32b", enable_thinking=False) == []

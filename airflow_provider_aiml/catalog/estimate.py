"""Token and cost estimates of a call before it is sent, from its body and the model's catalog entry.

The prompt's tokens are not known before the model's tokenizer sees them, so each call gets a range: at least
its text at :data:`~airflow_provider_aiml.hooks.sizing.CHARS_PER_TOKEN_AT_MOST` characters a token (the bound
the context check uses), at most one token per UTF-8 byte of its text (byte-level tokenizers never make more)
plus :data:`IMAGE_TOKENS_AT_MOST` per image. The answer costs at least one token and at most the request's
``max_completion_tokens`` (or ``max_tokens``), else the model's ``outputMax``; with neither there is no upper
bound. A low estimate over a budget is therefore certain to pass it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_aiml.catalog.entry import ModelEntry
from airflow_provider_aiml.catalog.pricing import CostEstimate
from airflow_provider_aiml.hooks.sizing import prompt_tokens_at_least
from airflow_provider_aiml.models import round_usd

IMAGE_TOKENS_AT_MOST = 2_560
"""The seed model's default per-image bound: 2,560 visual tokens (images are scaled to fit it)."""
MESSAGE_TOKENS_AT_MOST = 8
"""Tokens a chat template may add around each message (role markers)."""


def prompt_tokens_at_most(messages: Sequence[Mapping[str, Any]]) -> int:
    """An upper bound of the prompt's tokens: every UTF-8 byte of its text, the images at their bound."""
    total = 0
    for message in messages:
        total += MESSAGE_TOKENS_AT_MOST
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                if isinstance(part.get("text"), str):
                    total += len(part["text"].encode())
                elif part.get("type") == "image_url":
                    total += IMAGE_TOKENS_AT_MOST
        for call in message.get("tool_calls") or ():
            total += len(str((call.get("function") or {}).get("arguments") or "").encode())
    return total


def estimate_call(body: Mapping[str, Any], entry: ModelEntry | None) -> CostEstimate:
    """The token and cost range of one call (costs are ``None`` without a catalog price)."""
    messages = body["messages"]
    low_prompt, high_prompt = prompt_tokens_at_least(messages), prompt_tokens_at_most(messages)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    completion_high = int(limit) if isinstance(limit, int | float) else (entry.output_max if entry else None)
    pricing = entry.pricing if entry is not None else None
    low_usd = high_usd = None
    if pricing is not None:
        low_usd = round_usd(pricing.cost(low_prompt, 1))
        high_usd = round_usd(pricing.cost(high_prompt, completion_high)) if completion_high is not None else None
    return CostEstimate(1, low_prompt, high_prompt, completion_high, low_usd, high_usd)


def estimate_calls(bodies: Sequence[Mapping[str, Any]], entry: ModelEntry | None) -> CostEstimate:
    """The sum of :func:`estimate_call` over many calls to one model."""
    total = CostEstimate()
    for body in bodies:
        total = total + estimate_call(body, entry)
    return total

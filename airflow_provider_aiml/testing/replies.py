"""Deterministic chat-completion replies and their wire rendering (JSON body and SSE chunks)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aiml.testing.pricing import TokenRates, credits_to_usd
from airflow_provider_aiml.testing.schema_instance import synthesize_instance
from airflow_provider_aiml.testing.settings import MetaUsage, ReasoningStyle

CREDITS_PER_TOKEN = 2
"""What a token costs when the catalog has no token price for the model ($1 per million tokens)."""
IMAGE_TOKENS = 85
SUMMARY_WORDS = 30
WORDS_PER_DELTA = 3
ARGUMENT_PIECES = 4


@dataclass(frozen=True)
class ToolCall:
    """A function call in a reply; ``arguments`` is a JSON string."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI-shaped ``tool_calls`` item."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ReplyOverride:
    """Fixed reply parts set with ``set_reply``; ``None`` keeps the generated part."""

    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None

    @classmethod
    def build(
        cls,
        content: str | None = None,
        reasoning: str | None = None,
        finish_reason: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReplyOverride | None:
        """Validate and normalise; returns ``None`` when nothing is overridden."""
        if content is not None and not isinstance(content, str):
            raise ValueError("content must be a string or None")
        if reasoning is not None and not isinstance(reasoning, str):
            raise ValueError("reasoning must be a string or None")
        if finish_reason is not None and not isinstance(finish_reason, str):
            raise ValueError("finish_reason must be a string or None")
        calls = None if tool_calls is None else tuple(_tool_call_from(item, i) for i, item in enumerate(tool_calls))
        if content is None and reasoning is None and finish_reason is None and calls is None:
            return None
        return cls(content=content, reasoning=reasoning, finish_reason=finish_reason, tool_calls=calls)

    def to_dict(self) -> dict[str, Any]:
        """JSON view of the override."""
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "finish_reason": self.finish_reason,
            "tool_calls": None if self.tool_calls is None else [c.to_dict() for c in self.tool_calls],
        }


@dataclass(frozen=True)
class Completion:
    """What the emulated model "generated" for one request, before wire rendering."""

    model: str
    content: str | None
    reasoning: str
    finish_reason: str
    prompt_text_tokens: int
    image_tokens: int
    tool_calls: tuple[ToolCall, ...] = field(default=())
    anthropic: bool = False
    """Rendered in the Anthropic family's shapes."""
    rates: TokenRates | None = None
    """The model's catalog token prices (``None``: ``CREDITS_PER_TOKEN`` for every token)."""

    @property
    def reasoning_tokens(self) -> int:
        """Tokens of the reasoning text."""
        return count_tokens(self.reasoning)

    @property
    def text_tokens(self) -> int:
        """Tokens of the visible output (content or tool-call arguments)."""
        calls = "".join(c.name + c.arguments for c in self.tool_calls)
        return count_tokens(self.content or "") + count_tokens(calls)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens (text plus images)."""
        return self.prompt_text_tokens + self.image_tokens

    @property
    def completion_tokens(self) -> int:
        """Reasoning plus visible tokens."""
        return self.reasoning_tokens + self.text_tokens

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def credits(self) -> int:
        """Billed credits: the model's token prices, or ``CREDITS_PER_TOKEN`` per token without them."""
        if self.rates is None:
            return CREDITS_PER_TOKEN * self.total_tokens
        return self.rates.credits(self.prompt_tokens, self.completion_tokens)

    @property
    def usd(self) -> float:
        """Billed USD (``$1 = 2,000,000`` credits)."""
        return credits_to_usd(self.credits)


def count_tokens(text: str) -> int:
    """Deterministic token estimate: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / 4)


def format_usd(usd: float) -> str:
    """Format like the ``x-aimlapi-usd-spent`` header, e.g. ``0.001240000``."""
    return f"{usd:.9f}"


def is_anthropic(model: str) -> bool:
    """Whether a requested model id is served in the Anthropic family's shapes (``msg_`` ids, ``end_turn``)."""
    return model.startswith(("anthropic/", "claude"))


def completion_id_for(model: str) -> str:
    """The response id: ``msg_…`` for Anthropic models, ``chatcmpl-…`` for the others."""
    return f"msg_{uuid.uuid4().hex[:24]}" if is_anthropic(model) else f"chatcmpl-{uuid.uuid4()}"


def returned_model_name(model: str) -> str:
    """The upstream model name the API returns: the id without its ``vendor/`` prefix."""
    return model.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- generation


def build_completion(body: Mapping[str, Any], override: ReplyOverride | None = None) -> Completion:
    """Generate the reply for a validated request body; same body -> same completion."""
    messages: list[Mapping[str, Any]] = [m for m in body.get("messages", []) if isinstance(m, Mapping)]
    user_text, user_images = _last_user_input(messages)
    summary = _summary(user_text, user_images)
    snippet = " ".join(user_text.split()[:12]) or "(no text)"
    intro = f'The user wants a short summary of: "{snippet}". The conversation has {len(messages)} message(s)'
    intro += f" and {user_images} image(s)." if user_images else "."

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool = _chosen_tool(body, messages)
    if tool is not None:
        name, parameters = tool
        arguments = json.dumps(synthesize_instance(parameters, text=summary), ensure_ascii=False)
        tool_calls = (ToolCall(id=_call_id(name, arguments, 0), name=name, arguments=arguments),)
        content = None
        reasoning = f"{intro} I will call the `{name}` tool with arguments that match its parameters schema."
        finish_reason = "tool_calls"
    else:
        if messages and messages[-1].get("role") == "tool":
            tool_text = " ".join(_text_of(messages[-1].get("content"))[0].split()[:20])
            summary = f"{summary} Tool result: {tool_text}"
        content, plan = _formatted_content(body.get("response_format"), summary)
        reasoning = f"{intro} I will {plan}"
        finish_reason = "stop"

    if override is not None:
        if override.tool_calls is not None:
            tool_calls = override.tool_calls
            content = override.content
            finish_reason = "tool_calls" if tool_calls else "stop"
        elif override.content is not None:
            content = override.content
            tool_calls = ()
            finish_reason = "stop"
        if override.reasoning is not None:
            reasoning = override.reasoning

    limit = _token_limit(body)
    if limit is not None and not tool_calls:
        reasoning_budget = min(count_tokens(reasoning), limit)
        if count_tokens(reasoning) + count_tokens(content or "") > limit:
            reasoning = reasoning[: reasoning_budget * 4]
            content = None if content is None else content[: (limit - reasoning_budget) * 4]
            finish_reason = "length"
    if override is not None and override.finish_reason is not None:
        finish_reason = override.finish_reason

    text_tokens = sum(count_tokens(_text_of(m.get("content"))[0]) for m in messages)
    if body.get("tools"):
        text_tokens += count_tokens(json.dumps(body["tools"], ensure_ascii=False))
    images = sum(_text_of(m.get("content"))[1] for m in messages)
    return Completion(
        model=returned_model_name(str(body.get("model", ""))),
        content=content,
        reasoning=reasoning,
        finish_reason=finish_reason,
        prompt_text_tokens=max(1, text_tokens),
        image_tokens=IMAGE_TOKENS * images,
        tool_calls=tool_calls,
        anthropic=is_anthropic(str(body.get("model", ""))),
    )


def _text_of(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts = [p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
    images = sum(1 for p in content if isinstance(p, Mapping) and p.get("type") == "image_url")
    return " ".join(texts), images


def _last_user_input(messages: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return "", 0


def _summary(text: str, images: int) -> str:
    """The first two sentences of the last paragraph: prompts put the text to work on last."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text) if part.strip()]
    focus = " ".join((paragraphs[-1] if paragraphs else text).split())
    lead = " ".join(re.split(r"(?<=[.!?])\s+", focus)[:2])
    words = lead.split()
    body = " ".join(words[:SUMMARY_WORDS]) + ("..." if len(words) > SUMMARY_WORDS else "")
    attached = f"{images} image{'s' if images != 1 else ''} attached" if images else ""
    if body and attached:
        return f"Summary: {body} ({attached})"
    if body:
        return f"Summary: {body}"
    return f"Summary: {attached}." if attached else "Summary: (empty message)."


def _formatted_content(response_format: Any, summary: str) -> tuple[str, str]:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        return json.dumps({"summary": summary}, ensure_ascii=False), "answer with a JSON object."
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            schema = {"type": "object", "properties": {"summary": {"type": "string"}}}
        name = spec.get("name", "response") if isinstance(spec, Mapping) else "response"
        instance = synthesize_instance(schema, text=summary)
        return json.dumps(instance, ensure_ascii=False), f"answer with JSON that follows the `{name}` schema."
    return summary, 'reply with the opening sentences of the text, prefixed by "Summary:".'


def _chosen_tool(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> tuple[str, Any] | None:
    tools = [t["function"] for t in body.get("tools") or [] if isinstance(t, Mapping) and "function" in t]
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if isinstance(choice, Mapping):
        forced = choice.get("function", {}).get("name")
        for function in tools:
            if function.get("name") == forced:
                return forced, function.get("parameters", {})
        return None
    if choice == "auto" and messages and messages[-1].get("role") == "tool":
        return None  # the tool already answered: reply with content instead of looping
    first = tools[0]
    return str(first.get("name")), first.get("parameters", {})


def _call_id(name: str, arguments: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}\0{arguments}\0{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def _tool_call_from(item: Mapping[str, Any], index: int) -> ToolCall:
    if not isinstance(item, Mapping):
        raise ValueError("each tool call must be a mapping with 'name' and 'arguments'")
    nested = item.get("function")
    function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else item
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("each tool call needs a non-empty 'name'")
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = item.get("id") or _call_id(name, arguments, index)
    return ToolCall(id=str(call_id), name=name, arguments=arguments)


def _token_limit(body: Mapping[str, Any]) -> int | None:
    limits = [
        math.floor(v)
        for v in (body.get("max_tokens"), body.get("max_completion_tokens"))
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return max(1, min(limits)) if limits else None


# --------------------------------------------------------------------------- rendering


def usage_dict(completion: Completion) -> dict[str, Any]:
    """The ``usage`` object (Anthropic models report the three totals only)."""
    if completion.anthropic:
        totals = (completion.prompt_tokens, completion.completion_tokens, completion.total_tokens)
        return dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"), totals, strict=True))
    prompt_details: dict[str, int] = {"text_tokens": completion.prompt_text_tokens}
    if completion.image_tokens:
        prompt_details["image_tokens"] = completion.image_tokens
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": completion.reasoning_tokens,
            "text_tokens": completion.text_tokens,
        },
    }


def meta_usage_dict(completion: Completion, variant: MetaUsage | None) -> dict[str, Any] | None:
    """The ``meta.usage`` object in one of the documented variants (``None`` = no ``meta``)."""
    if variant == "credits_and_usd":
        return {"credits_used": completion.credits, "usd_spent": completion.usd}
    if variant == "credits_only":
        return {"credits_used": completion.credits}
    if variant == "tokens_used":
        return {"tokens_used": 4 * completion.credits}
    return None


def message_dict(completion: Completion, style: ReasoningStyle) -> dict[str, Any]:
    """``choices[0].message`` with the reasoning placed per ``style``."""
    content = completion.content
    message: dict[str, Any] = {"role": "assistant"}
    if style == "think_tag":
        if content is not None and completion.reasoning:
            content = f"<think>\n{completion.reasoning}\n</think>\n\n{content}"
        message["content"] = content
    elif style == "reasoning":
        message["content"] = content
        message["reasoning"] = completion.reasoning or None
        message["reasoning_details"] = (
            [{"type": "reasoning.text", "text": completion.reasoning, "format": "unknown", "index": 0}]
            if completion.reasoning
            else []
        )
    else:
        message["content"] = content
        message["reasoning_content"] = completion.reasoning
    message["refusal"] = None
    if completion.tool_calls:
        message["tool_calls"] = [call.to_dict() for call in completion.tool_calls]
    return message


def response_dict(
    completion: Completion,
    *,
    style: ReasoningStyle,
    meta_usage: MetaUsage | None,
    completion_id: str,
    created: int,
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` body."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": message_dict(completion, style),
                # Anthropic's non-streaming answers say "end_turn" where the others say "stop".
                "finish_reason": "end_turn"
                if completion.anthropic and completion.finish_reason == "stop"
                else completion.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage_dict(completion),
        "system_fingerprint": None,
    }
    meta = meta_usage_dict(completion, meta_usage)
    if meta is not None:
        body["meta"] = {"usage": meta}
    return body


@dataclass(frozen=True)
class StreamPlan:
    """The SSE chunks of a streamed reply; ``finish_index`` is the index of the finish chunk."""

    chunks: tuple[dict[str, Any], ...]
    finish_index: int


def stream_plan(
    completion: Completion,
    *,
    style: ReasoningStyle,
    meta_usage: MetaUsage | None,
    completion_id: str,
    created: int,
) -> StreamPlan:
    """The ``chat.completion.chunk`` sequence: role, reasoning, content/tool calls, finish, usage."""
    if completion.anthropic:
        return _anthropic_stream_plan(completion, meta_usage=meta_usage, completion_id=completion_id, created=created)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "choices": [{"delta": delta, "index": 0, "finish_reason": finish_reason}],
            "created": created,
            "model": completion.model,
            "object": "chat.completion.chunk",
            "usage": None,
        }

    reasoning_key = "reasoning" if style == "reasoning" else "reasoning_content"
    chunks: list[dict[str, Any]] = []
    if style == "think_tag":
        chunks.append(chunk({"content": "", "role": "assistant", "refusal": None}))
        text = completion.content or ""
        if completion.reasoning and completion.content is not None:
            text = f"<think>\n{completion.reasoning}\n</think>\n\n{text}"
        chunks.extend(chunk({"content": piece, "refusal": None}) for piece in split_text(text))
    else:
        chunks.append(chunk({"content": None, "role": "assistant", "refusal": None, reasoning_key: ""}))
        for piece in split_text(completion.reasoning):
            delta: dict[str, Any] = {"content": None, "refusal": None, reasoning_key: piece}
            if style == "reasoning":
                delta["reasoning_details"] = [
                    {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
                ]
            chunks.append(chunk(delta))
        for piece in split_text(completion.content or ""):
            chunks.append(chunk({"content": piece, "refusal": None, reasoning_key: None}))
    for index, call in enumerate(completion.tool_calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(chunk({"content": None, "tool_calls": [head]}))
        for piece in _split_arguments(call.arguments):
            chunks.append(chunk({"content": None, "tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    if completion.tool_calls:
        chunks.append(chunk({}, completion.finish_reason))
    elif style == "think_tag":
        chunks.append(chunk({"content": "", "refusal": None}, completion.finish_reason))
    else:
        chunks.append(chunk({"content": "", "refusal": None, reasoning_key: None}, completion.finish_reason))
    finish_index = len(chunks) - 1
    final: dict[str, Any] = {
        "id": completion_id,
        "choices": [],
        "created": created,
        "model": completion.model,
        "object": "chat.completion.chunk",
        "usage": usage_dict(completion),
    }
    meta = meta_usage_dict(completion, meta_usage)
    if meta is not None:
        final["meta"] = {"usage": meta}
    chunks.append(final)
    return StreamPlan(chunks=tuple(chunks), finish_index=finish_index)


def _anthropic_stream_plan(
    completion: Completion, *, meta_usage: MetaUsage | None, completion_id: str, created: int
) -> StreamPlan:
    """The Anthropic family's stream, as its transcript shows it: the ``msg_`` id in the first chunk and ``""``
    after it, ``role`` repeated in every delta, no ``finish_reason`` key on content chunks, ``usage`` on the
    finish chunk, then one more chunk ``{"index": 0, "finish_reason": ...}`` without a delta."""

    def chunk(choice: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": "" if chunks else completion_id,
            "choices": [choice],
            "created": created,
            "model": completion.model,
            "object": "chat.completion.chunk",
            "usage": usage,
        }

    def delta(**fields: Any) -> dict[str, Any]:
        return {"index": 0, "delta": {"role": "assistant", **fields}}

    chunks: list[dict[str, Any]] = []
    chunks.append(chunk(delta(content="", refusal=None)))
    chunks.extend(chunk(delta(content=None, reasoning_content=piece)) for piece in split_text(completion.reasoning))
    chunks.extend(chunk(delta(content=piece, refusal=None)) for piece in split_text(completion.content or ""))
    for index, call in enumerate(completion.tool_calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(chunk(delta(content=None, tool_calls=[head])))
        for piece in _split_arguments(call.arguments):
            part = {"index": index, "function": {"arguments": piece}}
            chunks.append(chunk(delta(content=None, tool_calls=[part])))
    finish_choice = {**delta(content="", refusal=None), "finish_reason": completion.finish_reason}
    finish = chunk(finish_choice, usage_dict(completion))
    meta = meta_usage_dict(completion, meta_usage)
    if meta is not None:
        finish["meta"] = {"usage": meta}
    chunks.append(finish)
    finish_index = len(chunks) - 1
    chunks.append(chunk({"index": 0, "finish_reason": completion.finish_reason}))
    return StreamPlan(chunks=tuple(chunks), finish_index=finish_index)


def split_text(text: str, words: int = WORDS_PER_DELTA) -> list[str]:
    """Split into pieces of a few words; joining the pieces gives back ``text``."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def _split_arguments(arguments: str) -> list[str]:
    if not arguments:
        return []
    size = max(1, math.ceil(len(arguments) / ARGUMENT_PIECES))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]

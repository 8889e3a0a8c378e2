"""Property-based malformed responses: whatever the API sends back (truncated JSON, wrong types, missing fields,
empty choices, bad SSE lines, wrong content types, huge numbers, nulls), a plain or streamed call ends in a valid
result or one of the provider's own errors (``AimlApiError`` subclasses), never another exception (respx; no
network).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import event, given
from hypothesis import strategies as st

from airflow_provider_aiml.exceptions import AimlApiError
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import ChatCompletionResult, StreamDelta
from tests.airflow_env import TEST_BASE_URL
from tests.faults.conftest import fuzz_settings
from tests.faults.harness import BUILD_DIR, write_summary

TIME_LIMIT_S = 180
CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
MESSAGES = [{"role": "user", "content": "Summarize the report."}]
PLAIN_EXAMPLES = 500
STREAM_EXAMPLES = 500
ASYNC_EXAMPLES = 150
SUMMARY = BUILD_DIR / "fuzz-responses.json"
VERDICTS: Counter[str] = Counter()

# --- known provider gaps (each reproduced by a strict xfail test below; see test_fuzz_requests.py) --------------
KNOWN_GAPS: dict[str, Callable[[BaseException], bool]] = {}  # none open now


def _raised_in(error: BaseException, function: str) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return any(frame.name == function and frame.filename.endswith("parsing.py") for frame in frames)


def known_gap(error: BaseException) -> str | None:
    return next((name for name, matches in KNOWN_GAPS.items() if matches(error)), None)


# --- strategies -------------------------------------------------------------------------------------------------

HUGE = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 10**40, -(10**40), 2**63, -1])
SCALARS = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=8) | HUGE
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
NUMBERISH = st.sampled_from(["12", "0", "-5", "nan", "inf", "-inf", "1e400", "abc", "", " 7 ", "0x10", "1_000"])
RETRY_AFTER = st.sampled_from(["0", "1", "-3", "nan", "inf", "1e400", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", ""])
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/event-stream",
        "text/event-stream; charset=utf-8",
        "text/html",
        "text/plain",
        "application/problem+json",
        None,
    ]
)


def valid_completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "The report says sales grew.",
                    "reasoning_content": "Reading it.",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 20,
            "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
        "meta": {"usage": {"credits_used": 120, "usd_spent": 0.00006}},
    }


COMPLETION_PATHS = [
    (),
    ("id",),
    ("model",),
    ("choices",),
    ("choices", 0),
    ("choices", 0, "finish_reason"),
    ("choices", 0, "message"),
    ("choices", 0, "message", "content"),
    ("choices", 0, "message", "reasoning_content"),
    ("choices", 0, "message", "reasoning"),
    ("choices", 0, "message", "reasoning_details"),
    ("choices", 0, "message", "tool_calls"),
    ("choices", 0, "message", "tool_calls", 0),
    ("choices", 0, "message", "tool_calls", 0, "id"),
    ("choices", 0, "message", "tool_calls", 0, "function"),
    ("choices", 0, "message", "tool_calls", 0, "function", "name"),
    ("choices", 0, "message", "tool_calls", 0, "function", "arguments"),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "completion_tokens"),
    ("usage", "total_tokens"),
    ("usage", "completion_tokens_details"),
    ("usage", "prompt_tokens_details"),
    ("usage", "prompt_tokens_details", "cached_tokens"),
    ("usage", "completion_tokens_details", "reasoning_tokens"),
    ("meta",),
    ("meta", "usage"),
    ("meta", "usage", "credits_used"),
    ("meta", "usage", "usd_spent"),
    ("error",),
    ("message",),
]


def mutate(document: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """Set (or delete) the value at ``path``; a path that no longer exists is left alone."""
    if not path:
        return value if action == "set" else {}
    parent = document
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return document
    last = path[-1]
    try:
        if action == "delete":
            del parent[last]
        elif action == "empty":
            parent[last] = type(parent[last])() if isinstance(parent[last], list | dict | str) else None
        else:
            parent[last] = value
    except (KeyError, IndexError, TypeError):
        pass
    return document


@st.composite
def mutated(draw: st.DrawFn, base: Any, paths: list[tuple[Any, ...]]) -> Any:
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["set", "set", "delete", "empty"]))
        document = mutate(document, path, action, draw(JUNK))
    return document


@st.composite
def encoded(draw: st.DrawFn, document: Any) -> bytes:
    """JSON text of a document (NaN/Infinity literals included), sometimes cut short or replaced by garbage."""
    text = json.dumps(document, allow_nan=True).encode()
    how = draw(st.sampled_from(["whole", "whole", "whole", "truncated", "garbage"]))
    if how == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "garbage":
        return draw(
            st.sampled_from([b"", b"null", b"[]", b"42", b'"text"', b"<html><title>502</title></html>", b"\xff\xfe"])
            | st.binary(max_size=40)
        )
    return text


@st.composite
def responses(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes]:
    status = draw(st.sampled_from([200] * 6 + [201, 204, 301, 400, 401, 404, 422, 429, 500, 502, 503, 599]))
    body = draw(encoded(draw(mutated(valid_completion(), COMPLETION_PATHS))))
    headers: dict[str, str] = {}
    if (content_type := draw(CONTENT_TYPES)) is not None:
        headers["content-type"] = content_type
    for name, values in (
        ("x-aimlapi-credits-used", NUMBERISH),
        ("x-aimlapi-usd-spent", NUMBERISH),
        ("retry-after", RETRY_AFTER),
        ("x-request-id", st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=5)),
    ):
        if draw(st.booleans()):
            headers[name] = draw(values)
    return status, headers, body


def chunk(delta: dict[str, Any], finish: Any = None, usage: Any = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": usage,
    }


VALID_STREAM = [
    chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
    chunk({"content": None, "reasoning_content": "Reading."}),
    chunk({"content": "<thi"}),
    chunk({"content": "Sales grew."}),
    chunk(
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
    chunk({"content": ""}, finish="stop"),
    {**chunk({}), "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    {**chunk({}), "choices": [], "meta": {"usage": {"credits_used": 20, "usd_spent": 0.00001}}},
]
CHUNK_PATHS = [
    (),
    ("id",),
    ("choices",),
    ("choices", 0),
    ("choices", 0, "delta"),
    ("choices", 0, "delta", "content"),
    ("choices", 0, "delta", "reasoning_content"),
    ("choices", 0, "delta", "reasoning"),
    ("choices", 0, "delta", "tool_calls"),
    ("choices", 0, "delta", "tool_calls", 0, "index"),
    ("choices", 0, "delta", "tool_calls", 0, "id"),
    ("choices", 0, "delta", "tool_calls", 0, "function"),
    ("choices", 0, "delta", "tool_calls", 0, "function", "arguments"),
    ("choices", 0, "finish_reason"),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "total_tokens"),
    ("meta",),
    ("meta", "usage", "credits_used"),
    ("error",),
]
ODD_LINES = st.sampled_from(
    [
        "data: [DONE]",
        "data: {broken",
        "data:",
        "data",
        ": keep-alive comment",
        "event: message",
        "retry: 100",
        "id: 7",
        "no colon at all",
        'data: {"error": {"message": "upstream failed"}}',
        'data: "just a string"',
        "data: null",
        "data: []",
        "",
    ]
)


@st.composite
def sse_responses(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes]:
    status = draw(st.sampled_from([200] * 8 + [429, 500, 400]))
    events: list[str] = []
    for base in VALID_STREAM:
        if draw(st.integers(0, 9)) == 0:
            continue  # a chunk goes missing
        document = draw(mutated(base, CHUNK_PATHS)) if draw(st.integers(0, 5)) == 0 else base
        events.append("data: " + json.dumps(document, allow_nan=True))
        if draw(st.integers(0, 7)) == 0:
            events.append(draw(ODD_LINES))
    separator = draw(st.sampled_from(["\n\n", "\r\n\r\n", "\n"]))
    body = (separator.join(events) + separator).encode()
    if draw(st.integers(0, 5)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    headers = {"content-type": draw(st.sampled_from(["text/event-stream"] * 5 + ["application/json", "text/html"]))}
    for name, values in (("retry-after", RETRY_AFTER), ("x-aimlapi-credits-used", NUMBERISH)):
        if draw(st.integers(0, 3)) == 0:
            headers[name] = draw(values)
    return status, headers, body


# --- the check --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook() -> Iterator[AimlApiHook]:
    hook = AimlApiHook(log_calls=False)
    yield hook
    hook.close()


@pytest.fixture(scope="module", autouse=True)
def _write_scope() -> Iterator[None]:
    VERDICTS.clear()
    yield
    write_summary(SUMMARY, {"examples": dict(sorted(VERDICTS.items()))})


def judge(kind: str, call: Callable[[], Any], reply: tuple[int, dict[str, str], bytes]) -> str:
    """Run a call against the drawn reply; the property: a valid result or a provider error, nothing else."""
    status, headers, body = reply
    with respx.mock(assert_all_called=False) as router:
        router.post(CHAT_URL).mock(return_value=httpx.Response(status, headers=headers, content=body))
        try:
            result = call()
        except AimlApiError as error:
            verdict = f"provider error: {type(error).__name__}"
        except Exception as error:
            gap = known_gap(error)
            if gap is None:
                raise
            verdict = f"known gap: {gap}"
        else:
            assert isinstance(result, ChatCompletionResult), result
            assert isinstance(result.content, str)
            json.dumps(result.usage.model_dump())  # the usage goes to XCom
            verdict = "result"
    VERDICTS[f"{kind}: {verdict}"] += 1
    event(verdict)
    return verdict


def streamed(items: list[Any]) -> ChatCompletionResult:
    *deltas, result = items
    assert all(isinstance(item, StreamDelta) for item in deltas)
    return result


@fuzz_settings(PLAIN_EXAMPLES)
@given(reply=responses())
def test_plain_call_ends_in_a_result_or_a_provider_error(hook, reply):
    judge("plain", lambda: hook.chat_completion(MESSAGES), reply)


@fuzz_settings(STREAM_EXAMPLES)
@given(reply=sse_responses() | responses())
def test_streamed_call_ends_in_a_result_or_a_provider_error(hook, reply):
    judge("stream", lambda: streamed(list(hook.stream_chat_completion(MESSAGES))), reply)


async def _astream(hook: AimlApiHook) -> ChatCompletionResult:
    try:
        return streamed([item async for item in hook.astream_chat_completion(MESSAGES)])
    finally:
        await hook.aclose()


async def _aplain(hook: AimlApiHook) -> ChatCompletionResult:
    try:
        return await hook.achat_completion(MESSAGES)
    finally:
        await hook.aclose()


@fuzz_settings(ASYNC_EXAMPLES)
@given(reply=sse_responses() | responses(), stream=st.booleans())
def test_async_calls_end_in_a_result_or_a_provider_error(hook, reply, stream):
    judge(
        "async stream" if stream else "async plain",
        lambda: asyncio.run(_astream(hook) if stream else _aplain(hook)),
        reply,
    )

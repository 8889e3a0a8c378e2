"""Property-based bad input: random parameters, extra_body and message shapes never put an invalid request on the
wire. Each call ends in a clear validation error naming the parameter, with no request sent, or in a request that
both the emulator's validator and the documented ranges accept (respx captures it; no network).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import respx
from hypothesis import event, given
from hypothesis import strategies as st

from airflow_provider_aiml.exceptions import AimlApiError, AimlImageError, AimlParameterError
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import DEFAULT_MODEL, GENERATION_PARAMETERS, RESERVED_BODY_KEYS
from airflow_provider_aiml.operators._base import operator_parameters
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator
from tests.airflow_env import TEST_BASE_URL
from tests.faults.conftest import fuzz_settings
from tests.faults.harness import BUILD_DIR, write_summary
from tests.faults.wire_checks import culprits, strict_json, wire_errors

TIME_LIMIT_S = 180
CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
VALIDATION_ERRORS = (AimlParameterError, AimlImageError)
DOCUMENTED_KEYS = {*GENERATION_PARAMETERS, "messages"}
HOOK_EXAMPLES = 600
OPERATOR_EXAMPLES = 200
BATCH_EXAMPLES = 150
SUMMARY = BUILD_DIR / "fuzz-requests.json"
VERDICTS: Counter[str] = Counter()
# A complete 1x1 PNG: local files are decoded (to be fitted) before they are sent, so it must be a real image.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")

# --- known provider gaps ------------------------------------------------------------------------------------
# Each is reproduced by a strict xfail test in test_provider_gaps.py. The property tests count such an example
# (``event``) instead of failing on it, so they keep guarding everything else; remove an entry with its xfail.
KNOWN_GAPS: dict[str, Callable[[BaseException | None, list[str]], bool]] = {}  # none open now


def known_gap(error: BaseException | None, errors: list[str]) -> str | None:
    return next((name for name, matches in KNOWN_GAPS.items() if matches(error, errors)), None)


def explained_by_known_gaps(errors: list[str]) -> str | None:
    """The known gap behind a sent body's errors, if every error is one, or in a message a known gap spoiled.

    (An assistant message whose bad ``tool_calls`` were let through also lacks the content they stood in for.)
    """
    matched = {error: known_gap(None, [error]) for error in errors}
    gaps = sorted({gap for gap in matched.values() if gap is not None})
    spoiled = {_message_of(error) for error, gap in matched.items() if gap is not None} - {None}
    unexplained = [e for e, gap in matched.items() if gap is None and _message_of(e) not in spoiled]
    return gaps[0] if gaps and not unexplained else None


def _message_of(error: str) -> str | None:
    found = re.search(r"messages\[\d+\]", error)
    return found.group(0) if found else None


# --- strategies -------------------------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
BAD_NAMES = st.sampled_from(["", "has space", "x" * 65, "dots.not.allowed", "ünï", "a/b"])
ODD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324])
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
NOT_JSON = st.sampled_from([{1, 2}, b"raw bytes", datetime(2026, 1, 1), (1, math.nan)])
JUNK = JSONISH | ODD_FLOATS | NOT_JSON
SCHEMA = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(NAMES, st.just({"type": "string"}), max_size=2)}
)
TOOL = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAMES, "parameters": SCHEMA},
            optional={"description": st.text(max_size=10), "strict": st.none() | st.booleans()},
        ),
    }
)
RESPONSE_FORMATS = st.sampled_from([{"type": "text"}, {"type": "json_object"}]) | st.fixed_dictionaries(
    {
        "type": st.just("json_schema"),
        "json_schema": st.fixed_dictionaries(
            {"name": NAMES}, optional={"schema": SCHEMA, "strict": st.none() | st.booleans()}
        ),
    }
)


@st.composite
def tool_choices(draw: st.DrawFn) -> Any:
    return draw(
        st.sampled_from(["none", "auto", "required"])
        | st.builds(lambda name: {"type": "function", "function": {"name": name}}, NAMES)
    )


VALID: dict[str, st.SearchStrategy[Any]] = {
    "max_completion_tokens": st.integers(1, 2**40),
    "max_tokens": st.integers(1, 10**6) | st.floats(1, 1e6),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "stop": st.text(max_size=6) | st.lists(st.text(max_size=6), min_size=1, max_size=4),
    "frequency_penalty": st.floats(-2, 2),
    "presence_penalty": st.floats(-2, 2),
    "seed": st.integers(1, 2**62),
    "repetition_penalty": st.floats(1e-6, 1e6),
    "response_format": RESPONSE_FORMATS,
    "tools": st.lists(TOOL, min_size=1, max_size=3),
    "tool_choice": tool_choices(),
    "parallel_tool_calls": st.booleans(),
    "prediction": st.fixed_dictionaries({"type": st.just("content"), "content": st.text(max_size=10)}),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
    "reasoning_budget_tokens": st.integers(1, 10**5),
}
NEAR_MISS: dict[str, st.SearchStrategy[Any]] = {
    "max_completion_tokens": st.sampled_from([0, -1, 1.5, 2.0, True, "100"]),
    "max_tokens": st.sampled_from([0, 0.5, -3, "10", False]),
    "temperature": st.floats(2, 1e9, exclude_min=True) | st.floats(-1e9, 0, exclude_max=True) | st.just(True),
    "top_p": st.sampled_from([0, 0.0099, 1.0001, "0.5"]),
    "stop": st.sampled_from([[], ["a"] * 5, [1], [None], {"a": 1}]),
    "frequency_penalty": st.sampled_from([-2.01, 2.01, "1"]),
    "presence_penalty": st.sampled_from([-2.5, 3, [1]]),
    "seed": st.sampled_from([0, -5, 1.5, 3.0, "7"]),
    "repetition_penalty": st.sampled_from([0, -1, "1.1"]),
    "response_format": st.sampled_from(
        [
            {"type": "json"},
            {"type": "json_schema"},
            {"type": "json_schema", "json_schema": {"name": "bad name"}},
            "json",
        ]
    ),
    "tools": st.sampled_from(
        [
            [],
            [{"type": "function", "function": {"name": "f"}}],
            [{"type": "function", "function": {"name": "bad name", "parameters": {}}}],
            [{"type": "tool", "function": {"name": "f", "parameters": {}}}],
            [{"type": "function", "function": {"name": "f", "parameters": {}}, "extra": 1}],
            "f",
        ]
    ),
    "tool_choice": st.sampled_from(["any", {"type": "function"}, {"type": "function", "function": {"name": ""}}]),
    "parallel_tool_calls": st.sampled_from(["true", 1]),
    "prediction": st.sampled_from([{"type": "content"}, {"content": "x"}, "x"]),
    "stream_options": st.sampled_from([{}, {"include_usage": "yes"}, {"include_usage": True, "x": 1}]),
    "reasoning_effort": st.sampled_from(["max", "LOW", "", 1, ["low"]]),
    "reasoning_budget_tokens": st.sampled_from([0, -1, 1.5, "100", True]),
}
UNKNOWN_PARAMS = st.sampled_from(["temprature", "n", "logprobs", "stream", "enable_thinking", "top_k"])


def param_values(name: str) -> st.SearchStrategy[Any]:
    return st.one_of(VALID[name], VALID[name], VALID[name], NEAR_MISS[name], JUNK, st.none())


_KNOWN_PARAMS = st.dictionaries(st.sampled_from(GENERATION_PARAMETERS), st.none(), max_size=4).flatmap(
    lambda chosen: st.fixed_dictionaries({name: param_values(name) for name in chosen})
)
PARAMS = st.one_of(
    _KNOWN_PARAMS,
    _KNOWN_PARAMS,
    _KNOWN_PARAMS,
    st.dictionaries(UNKNOWN_PARAMS, JSONISH, min_size=1, max_size=1),
    st.builds(dict),
)
EXTRA_KEYS = st.sampled_from(
    [
        "enable_thinking",
        "thinking_budget",
        "reasoning_effort",
        "reasoning",
        "provider",
        "normalize_tool_schemas",
        *GENERATION_PARAMETERS,
        *sorted(RESERVED_BODY_KEYS),
    ]
)
EXTRA_BODY = st.one_of(
    st.none(),
    st.none(),
    st.dictionaries(
        EXTRA_KEYS, st.booleans() | st.integers(1, 10**5) | st.sampled_from(["low", "medium", "high"]), max_size=3
    ),
    st.dictionaries(EXTRA_KEYS, JUNK, max_size=3),
    st.sampled_from([["enable_thinking"], "enable_thinking=true", 5]),
)

IMAGE_URLS = st.sampled_from(
    [
        "https://example.com/cat.png",
        "http://example.com/a.jpg",
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "http://",
        "https://has space.com/x.png",
        "data:image/png;base64,@@@not-base64@@@",
        "data:text/plain;base64,aGk=",
        "ftp://example.com/x.png",
        "",
        "cat.png",
    ]
) | st.text(max_size=12)
IMAGE_PART = st.fixed_dictionaries(
    {
        "type": st.just("image_url"),
        "image_url": st.fixed_dictionaries(
            {"url": IMAGE_URLS}, optional={"detail": st.sampled_from(["low", "high", "ultra"])}
        ),
    }
)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10) | JUNK}),
    IMAGE_PART,
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": st.text(max_size=5)}),
    st.fixed_dictionaries({"type": st.sampled_from(["video_url", "input_audio", None])}),
    JUNK,
)
CONTENT = st.text(max_size=20) | st.lists(PART, max_size=3) | st.none() | st.integers() | st.just({"text": "hi"})
VALID_TOOL_CALLS = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=5),
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": NAMES, "arguments": st.just("{}")}),
        }
    ),
    min_size=1,
    max_size=2,
)
TOOL_CALLS = st.one_of(
    VALID_TOOL_CALLS,
    st.just("call it"),
    st.just([{"id": 1}]),
    st.just([]),
)


@st.composite
def message(draw: st.DrawFn) -> Any:
    role = draw(
        st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | st.sampled_from(["bot", "", None, 5])
    )
    msg: dict[str, Any] = {"role": role, "content": draw(CONTENT)}
    if draw(st.booleans()):
        del msg["content"]
    if draw(st.integers(0, 3)) == 0:
        msg["name"] = draw(NAMES | BAD_NAMES | JUNK)
    if role == "tool" or draw(st.integers(0, 9)) == 0:
        tool_call_id = draw(st.text(max_size=6) | st.none() | st.integers())
        if tool_call_id is not None or draw(st.booleans()):
            msg["tool_call_id"] = tool_call_id
    if role == "assistant" and draw(st.booleans()):
        msg["tool_calls"] = draw(TOOL_CALLS)
    if draw(st.integers(0, 9)) == 0:
        msg[draw(st.sampled_from(["foo", "refusal", "metadata"]))] = draw(JSONISH)
    return msg


SIMPLE_MESSAGES = st.builds(lambda text: [{"role": "user", "content": text}], st.text(min_size=1, max_size=20))
VALID_TEXT_PART = st.builds(lambda text: {"type": "text", "text": text}, st.text(max_size=10))
VALID_IMAGE_PART = st.builds(
    lambda url: {"type": "image_url", "image_url": {"url": url}},
    st.sampled_from(["https://example.com/cat.png", "data:image/png;base64," + base64.b64encode(PNG).decode()]),
)
VALID_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "developer"]),
            "content": st.text(max_size=10) | st.lists(VALID_TEXT_PART, min_size=1, max_size=2),
        },
        optional={"name": NAMES},
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("user"),
            "content": st.text(min_size=1, max_size=10)
            | st.lists(VALID_TEXT_PART | VALID_IMAGE_PART, min_size=1, max_size=3),
        },
        optional={"name": NAMES},
    ),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.text(max_size=10)}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.none(), "tool_calls": VALID_TOOL_CALLS}),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "content": st.text(max_size=10), "tool_call_id": st.text(min_size=1, max_size=6)}
    ),
)
VALID_CONVERSATION = st.lists(VALID_MESSAGE, min_size=1, max_size=4)


@st.composite
def mutated_conversation(draw: st.DrawFn) -> list[Any]:
    """A valid conversation with one message replaced, or one of its fields set to something odd."""
    conversation = draw(VALID_CONVERSATION)
    index = draw(st.integers(0, len(conversation) - 1))
    mutation = draw(st.sampled_from(["replace", "field", "parts", "image"]))
    if mutation == "replace":
        conversation[index] = draw(message())
    elif mutation == "image":
        conversation[index] = {"role": "user", "content": [{"type": "text", "text": "See:"}, draw(IMAGE_PART)]}
    elif mutation == "parts":
        conversation[index] = {**conversation[index], "content": draw(st.lists(PART, min_size=1, max_size=2))}
    else:
        key = draw(st.sampled_from(["name", "content", "tool_call_id", "tool_calls", "role", "refusal", "foo"]))
        conversation[index] = {**conversation[index], key: draw(JUNK | BAD_NAMES | IMAGE_URLS | CONTENT)}
    return conversation


MESSAGES = st.one_of(
    SIMPLE_MESSAGES,
    VALID_CONVERSATION,
    VALID_CONVERSATION,
    mutated_conversation(),
    mutated_conversation(),
    mutated_conversation(),
    st.lists(message(), max_size=4) | st.sampled_from(["hello", {"role": "user"}, None, []]),
)


# --- the check --------------------------------------------------------------------------------------------------


def completion_response(request: httpx.Request) -> httpx.Response:
    """A valid answer (JSON content, so a JSON response format decodes), streamed when a stream was asked for."""
    message = {"role": "assistant", "content": '{"summary": "ok"}'}
    if json.loads(request.content).get("stream"):
        chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": message, "finish_reason": "stop"}]}
        sse = f"data: {json.dumps(chunk)}\n\n"
        return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
    body = {"id": "c", "model": "m", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    return httpx.Response(200, json=body)


@dataclass
class Outcome:
    error: BaseException | None
    sent: list[bytes]


def attempt(call: Callable[[], Any]) -> Outcome:
    """Run a call with respx in place of the network: what it raised and every body it sent."""
    with respx.mock(assert_all_called=False) as router:
        route = router.post(CHAT_URL).mock(side_effect=completion_response)
        try:
            call()
        except Exception as error:
            return Outcome(error, [c.request.content for c in route.calls])
        return Outcome(None, [c.request.content for c in route.calls])


def intended_errors(body: dict[str, Any]) -> list[str]:
    """What the independent checks find wrong with the body the caller meant to send."""
    try:
        return wire_errors(body)
    except Exception:  # a value the checks cannot even look at: every given key is a suspect
        return []


def check(outcome: Outcome, *, intended: dict[str, Any], given: set[str], allow: tuple[type, ...] = ()) -> str:
    """The property: a clear validation error naming a culprit with nothing sent, or only valid bodies sent."""
    error = outcome.error
    if isinstance(error, VALIDATION_ERRORS):
        assert outcome.sent == [], f"{len(outcome.sent)} request(s) sent before {error!r}"
        flagged = culprits(intended_errors(intended))
        named = {name for name in flagged | given if name in error.message}
        assert named, f"the message names none of {sorted(flagged | given)}: {error.message}"
        stricter = sorted(named & DOCUMENTED_KEYS) if not named & flagged else []
        if stricter:  # a value the documented ranges allow, refused by the provider's own, narrower rule
            event(f"refused though the docs allow it: {stricter[0]}")
        return "rejected"
    if error is not None and not isinstance(error, AimlApiError):
        gap = known_gap(error, [])
        if gap is None:
            raise error
        assert outcome.sent == []
        event(f"known gap: {gap}")
        return "known gap"
    if error is not None and not isinstance(error, allow):
        raise AssertionError(f"a provider error other than a validation error: {error!r}") from error
    for raw in outcome.sent:
        try:
            body = strict_json(raw)
        except ValueError as problem:
            raise AssertionError(f"the body sent is not standard JSON: {raw[:300]!r}") from problem
        errors = wire_errors(body)
        if errors and (gap := explained_by_known_gaps(errors)) is not None:
            event(f"known gap: {gap}")
            return "known gap"
        assert errors == [], f"an invalid request was sent: {errors}\nbody: {json.dumps(body)[:800]}"
    return "sent" if outcome.sent else "nothing to send"


def tally(kind: str, verdict: str) -> None:
    VERDICTS[f"{kind}: {verdict}"] += 1
    event(f"{kind}: {verdict}")


@pytest.fixture(scope="module", autouse=True)
def _write_scope() -> Iterator[None]:
    VERDICTS.clear()
    yield
    write_summary(SUMMARY, {"examples": dict(sorted(VERDICTS.items()))})


def intended_body(messages: Any, params: dict[str, Any], extra_body: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": DEFAULT_MODEL, "messages": messages}
    body.update({k: v for k, v in params.items() if v is not None})
    if isinstance(extra_body, dict):
        body.update({k: v for k, v in extra_body.items() if v is not None})
    return body


def given_names(params: dict[str, Any], extra_body: Any) -> set[str]:
    names = set(params) | {"messages", "extra_body"}
    return names | set(extra_body) if isinstance(extra_body, dict) else names


# --- the hook ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook() -> AimlApiHook:
    return AimlApiHook(log_calls=False)


@fuzz_settings(HOOK_EXAMPLES)
@given(
    messages=MESSAGES,
    params=PARAMS,
    extra_body=EXTRA_BODY,
    stream=st.booleans(),
)
def test_hook_sends_only_valid_requests_or_names_the_bad_parameter(hook, messages, params, extra_body, stream):
    def call() -> None:
        if stream:
            list(hook.stream_chat_completion(messages, extra_body=extra_body, **params))
        else:
            hook.chat_completion(messages, extra_body=extra_body, **params)

    outcome = attempt(call)
    verdict = check(
        outcome, intended=intended_body(messages, params, extra_body), given=given_names(params, extra_body)
    )
    tally("hook stream" if stream else "hook plain", verdict)
    if verdict == "sent":  # what was asked for is what was sent: no key dropped, changed or added
        (raw,) = outcome.sent
        body = json.loads(raw)
        expected = {k: v for k, v in intended_body(messages, params, extra_body).items() if k != "messages"}
        for key, value in expected.items():
            assert body[key] == (list(value) if isinstance(value, tuple) else value), key
        added = set(body) - set(expected) - {"messages"} - ({"stream", "stream_options"} if stream else set())
        assert not added, f"keys nobody asked for: {added}"


# --- the operators ----------------------------------------------------------------------------------------------


class FakeTaskInstance:
    """What ``execute`` needs of a task instance: ids for the client request id, and ``xcom_push``."""

    dag_id, task_id, run_id, map_index, try_number = "fuzz", "fuzz", "manual__fuzz", -1, 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Placeholders the image strategy draws, and the files they stand for."""
    folder = tmp_path_factory.mktemp("images")
    (folder / "real.png").write_bytes(PNG)
    (folder / "text.png").write_text("not an image")
    return {
        "<real>": str(folder / "real.png"),
        "<text>": str(folder / "text.png"),
        "<missing>": str(folder / "missing.png"),
        "<folder>": str(folder),
    }


IMAGE_SOURCES = (
    st.sampled_from(
        ["<real>", "<text>", "<missing>", "<folder>", "https://example.com/cat.png", "data:text/plain;base64,aGk=", ""]
    )
    | IMAGE_URLS
)
IMAGE_ARG = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    IMAGE_SOURCES,
    st.lists(IMAGE_SOURCES | st.none() | st.integers(), max_size=3),
    st.fixed_dictionaries(
        {st.sampled_from(["url", "path", "href"]): IMAGE_SOURCES},
        optional={"detail": st.sampled_from(["low", "auto", "max", None])},
    ),
    st.integers(),
)
PROMPTS = st.one_of(
    st.sampled_from(["Describe the image.", "Summarize: {{ ds }}"]),
    st.text(min_size=1, max_size=20),
    st.sampled_from([None, "", "   ", 42]),
)
OPERATOR_PARAMS = st.dictionaries(st.sampled_from(operator_parameters()), st.none(), max_size=3).flatmap(
    lambda chosen: st.fixed_dictionaries({name: param_values(name) for name in chosen})
)


def with_files(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, str):
        return files.get(value, value)
    if isinstance(value, list):
        return [with_files(item, files) for item in value]
    if isinstance(value, dict):
        return {key: with_files(item, files) for key, item in value.items()}
    return value


@fuzz_settings(OPERATOR_EXAMPLES)
@given(
    mode=st.sampled_from(["prompt", "prompt", "messages", "messages", "both", "neither"]),
    prompt=PROMPTS,
    messages=MESSAGES,
    system_prompt=st.none() | st.text(max_size=10) | st.integers(),
    images=IMAGE_ARG,
    response_format=st.none() | VALID["response_format"] | NEAR_MISS["response_format"],
    params=OPERATOR_PARAMS,
    extra_body=EXTRA_BODY,
    stream=st.booleans(),
)
def test_chat_operator_sends_only_valid_requests_or_names_the_bad_argument(
    image_files, mode, prompt, messages, system_prompt, images, response_format, params, extra_body, stream
):
    images = with_files(images, image_files)
    prompt = prompt if mode in ("prompt", "both") else None
    messages = messages if mode in ("messages", "both") else None
    if mode == "messages":
        system_prompt = images = None

    def create_and_run() -> object:  # a wrong literal argument already fails when the operator is created
        operator = AimlChatCompletionOperator(
            task_id="fuzz",
            prompt=prompt,
            messages=messages,
            system_prompt=system_prompt,
            images=images,
            response_format=response_format,
            extra_body=extra_body,
            stream=stream,
            deferrable=False,
            **params,
        )
        return operator.execute({"ti": FakeTaskInstance()})

    outcome = attempt(create_and_run)
    given = given_names(params, extra_body) | {"prompt", "system_prompt", "images", "image", "response_format"}
    intended = intended_body(messages, {**params, "response_format": response_format}, extra_body)
    tally("chat operator", check(outcome, intended=intended, given=given))


LIMITS = {
    "concurrency": st.integers(1, 8) | st.integers(1, 8) | st.sampled_from([0, -1, 2.5, True, "4", None]),
    # Valid per-minute limits are high enough never to make the (few) calls wait for the next minute.
    "max_requests_per_minute": st.floats(600, 1e6) | st.floats(600, 1e6) | st.sampled_from([0, -5, "60", math.nan]),
    "max_tokens_per_minute": st.integers(10**13, 10**15) | st.integers(10**13, 10**15) | st.sampled_from([0, -1.5]),
    "max_total_tokens": st.integers(1, 10**7) | st.integers(1, 10**7) | st.sampled_from([0, 10.5, True]),
    "max_cost_usd": st.floats(1e-6, 100) | st.floats(1e-6, 100) | st.sampled_from([0, -1.0, "1"]),
    "progress_interval": st.floats(1, 100) | st.floats(1, 100) | st.sampled_from([0, -1, "5"]),
    "on_error": st.sampled_from(["continue", "fail", "continue", "fail", "ignore", None]),
}
_RECORD_LISTS = st.lists(
    st.text(min_size=1, max_size=12) | st.fixed_dictionaries({"name": st.text(max_size=6)}), max_size=4
)
RECORDS = st.one_of(_RECORD_LISTS, _RECORD_LISTS, _RECORD_LISTS, st.sampled_from(["a string", 5, None, {"a": 1}]))
TEMPLATES = st.sampled_from(
    [
        "Describe {{ record }}.",
        "Record {{ index }}: {{ record }}",
        "Summarize {{ record }} in one line.",
        "{{ record }}",
        "{{ record.name }}",
        "{{ record.name.upper() }}",
        "",
        "{% if %}",
    ]
)


@fuzz_settings(BATCH_EXAMPLES)
@given(
    records=RECORDS,
    template=TEMPLATES,
    as_messages=st.booleans(),
    limits=st.lists(st.sampled_from(sorted(LIMITS)), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: LIMITS[name] for name in names})
    ),
    params=OPERATOR_PARAMS,
    extra_body=EXTRA_BODY,
)
def test_batch_operator_sends_only_valid_requests_or_names_the_bad_argument(
    records, template, as_messages, limits, params, extra_body
):
    from airflow_provider_aiml.exceptions import AimlBatchError

    template_args = {"messages": [{"role": "user", "content": template}]} if as_messages else {"prompt": template}

    def create_and_run() -> object:  # a wrong literal argument already fails when the operator is created
        operator = AimlBatchChatCompletionOperator(
            task_id="fuzz", inputs=records, extra_body=extra_body, **template_args, **limits, **params
        )
        return operator.execute({"ti": FakeTaskInstance()})

    outcome = attempt(create_and_run)
    given = given_names(params, extra_body) | set(limits) | {"inputs", "record", "prompt", "template"}
    # A budget may stop the batch after valid calls (the task then fails with AimlBatchError, results kept).
    verdict = check(outcome, intended=intended_body([], params, extra_body), given=given, allow=(AimlBatchError,))
    tally("batch operator", verdict)

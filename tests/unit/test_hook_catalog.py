"""The hook with the model catalog (respx): each call is checked against its model's catalog entry and schema
before anything is sent, the reasoning switch becomes the model's own keys, the catalog is read once per process
(revalidated by ETag) and an outage never blocks a call; ``fallback_models`` take over when the first model is
gone, not allowed, or keeps failing, and never for a fault of the request, the key or the rate.

Every test is marked ``catalog``: the unit tests' autouse fixture gives the others the built-in profile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import (
    AimlAuthenticationError,
    AimlBadRequestError,
    AimlNotFoundError,
    AimlParameterError,
    AimlPermissionError,
    AimlRateLimitError,
    AimlServerError,
    AimlTransportError,
)
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import ChatCompletionResult, StreamDelta
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL
from tests.unit.test_catalog_parts import (
    CATALOG_HOST,
    CLAUDE,
    DEEPSEEK_V4,
    GLM_45,
    GPT_4O,
    GPT_5,
    GROK_4,
    IMAGE_MESSAGES,
    JSON_SCHEMA_FORMAT,
    OPENAI_PARAMETERS,
    QWEN3_32B,
    TEXT_MESSAGES,
    TOOL,
    catalog_item,
    doc_of,
    docs_json,
)

pytestmark = pytest.mark.catalog

ROOT = TEST_BASE_URL.removesuffix("/v1")  # https://api.test.invalid: the catalog is read from the connection's host
CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
GPT_4O_MINI = ("openai/gpt-4o-mini", OPENAI_PARAMETERS, True)
Spec = tuple[str, dict[str, Any], bool]


def entry_url(model: str) -> str:
    return f"{ROOT}/model/{model}?include=all"


def hook_for(monkeypatch: pytest.MonkeyPatch, conn_id: str = "aiml_catalog", **extra: Any) -> AimlApiHook:
    conn = {
        "conn_type": "aimlapi",
        "password": TEST_API_KEY,
        "host": TEST_BASE_URL,
        "extra": {"max_retries": 1, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return AimlApiHook(aiml_conn_id=conn_id)


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def completion(model: str, content: str = "ok") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model.split("/")[-1],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def stream_of(model: str, *pieces: str) -> httpx.Response:
    name = model.split("/")[-1]
    chunks = [
        {"id": "c1", "model": name, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
        for p in pieces
    ]
    chunks.append({"id": "c1", "model": name, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(
        {
            "id": "c1",
            "model": name,
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )
    text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})


def error(status_code: int, message: str) -> httpx.Response:
    return httpx.Response(
        status_code,
        json={"message": message, "path": "/v1/chat/completions", "statusCode": str(status_code), "requestId": "r-1"},
    )


class Chat:
    """``POST /v1/chat/completions``, answering per model: a planned answer (a response, an exception, or a
    callable making one) or a completion; records each request's model, body and client request id."""

    def __init__(self, api: respx.MockRouter) -> None:
        self.plan: dict[str, list[Any]] = {}
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self.route = api.post(CHAT_URL).mock(side_effect=self)

    def answer(self, model: str, *answers: Any) -> None:
        """What ``model`` answers, in turn; the last answer repeats."""
        self.plan[model] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        model = sent["model"]
        self.calls.append((model, sent, request.headers.get("x-client-request-id")))
        queue = self.plan.get(model)
        if not queue:
            return httpx.Response(200, json=completion(model))
        planned = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(planned, Exception):
            raise planned
        if isinstance(planned, httpx.Response):  # a new response each time: one is read only once
            return httpx.Response(planned.status_code, content=planned.content, headers=planned.headers)
        return planned()

    @property
    def models(self) -> list[str]:
        return [model for model, _, _ in self.calls]

    @property
    def last_body(self) -> dict[str, Any]:
        return self.calls[-1][1]


class Catalog:
    """The catalog's routes on the connection's host: ``GET /model/{id}?include=all`` and the docsJson schema."""

    def __init__(self, api: respx.MockRouter) -> None:
        self.api = api
        self.entries: dict[str, respx.Route] = {}
        self.schemas: dict[str, respx.Route] = {}
        # the catalog's items name api.aimlapi.com; nothing may be read from there
        self.elsewhere = api.route(host=CATALOG_HOST.removeprefix("https://")).mock(return_value=httpx.Response(599))

    def serve(self, spec: Spec, revalidated: bool = False, **item: Any) -> None:
        """Serve ``spec``'s entry and schema (with ``revalidated``: a 200, then 304s)."""
        model = spec[0]
        body = {"object": "model", "data": catalog_item(model, **item)}
        entry = httpx.Response(200, json=body, headers={"etag": f'W/"entry-{model}"'})
        schema = httpx.Response(200, json=doc_of(spec), headers={"etag": f'W/"schema-{model}"'})
        if revalidated:
            self.entries[model] = self.api.get(entry_url(model)).mock(side_effect=[entry, *[httpx.Response(304)] * 3])
            self.schemas[model] = self.api.get(docs_json(model, host=ROOT)).mock(
                side_effect=[schema, *[httpx.Response(304)] * 3]
            )
            return
        self.entries[model] = self.api.get(entry_url(model)).mock(return_value=entry)
        self.schemas[model] = self.api.get(docs_json(model, host=ROOT)).mock(return_value=schema)

    def fail(self, model: str, *answers: Any) -> respx.Route:
        self.entries[model] = self.api.get(entry_url(model)).mock(side_effect=list(answers) or [httpx.Response(503)])
        return self.entries[model]


@pytest.fixture
def api() -> Any:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def chat(api: respx.MockRouter) -> Chat:
    return Chat(api)


@pytest.fixture
def catalog(api: respx.MockRouter) -> Any:
    made = Catalog(api)
    yield made
    assert made.elsewhere.call_count == 0


class OffsetClock:
    """``time.time`` moved forward on demand (and otherwise running): catalog ages without sleeping."""

    def __init__(self, real: Callable[[], float]) -> None:
        self.real = real
        self.offset = 0.0

    def __call__(self) -> float:
        return self.real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> OffsetClock:
    fake = OffsetClock(time.time)
    monkeypatch.setattr(time, "time", fake)
    return fake


NO_VISION = ("streaming", "tools", "structured_output")


# --- checks before anything is sent -----------------------------------------------------------------------------


def test_images_to_a_model_without_vision_are_refused_and_nothing_is_sent(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(QWEN3_32B, capabilities=NO_VISION)
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError) as raised:
        hook.chat_completion(IMAGE_MESSAGES, model="alibaba/qwen3-32b")
    assert "'alibaba/qwen3-32b' does not take images" in str(raised.value)
    assert "'vision'" in str(raised.value)
    assert chat.route.call_count == 0
    assert catalog.entries["alibaba/qwen3-32b"].call_count == 1
    assert catalog.schemas["alibaba/qwen3-32b"].call_count == 1  # read from the connection's own host
    hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b")
    assert chat.models == ["alibaba/qwen3-32b"]


@pytest.mark.parametrize(
    ("params", "capability"),
    [
        ({"tools": [TOOL]}, "'tools'"),
        ({"response_format": JSON_SCHEMA_FORMAT}, "'structured_output'"),
    ],
    ids=["tools", "json_schema"],
)
def test_what_the_catalog_says_a_model_lacks_is_refused_before_sending(
    monkeypatch, api, chat, catalog, params, capability
) -> None:
    catalog.serve(GPT_4O, capabilities=("streaming",), input_modalities=("text", "image"))
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError) as raised:
        hook.chat_completion(TEXT_MESSAGES, model="openai/gpt-4o", **params)
    assert "'openai/gpt-4o' does not take" in str(raised.value)
    assert capability in str(raised.value)
    assert chat.route.call_count == 0
    hook.chat_completion(IMAGE_MESSAGES, model="openai/gpt-4o", response_format={"type": "json_object"})
    assert chat.last_body["response_format"] == {"type": "json_object"}


def test_tools_and_a_json_schema_go_to_a_model_that_takes_them(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(GPT_4O, capabilities=("streaming", "tools", "structured_output", "vision"))
    hook = hook_for(monkeypatch)
    hook.chat_completion(
        IMAGE_MESSAGES,
        model="openai/gpt-4o",
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        response_format=JSON_SCHEMA_FORMAT,
    )
    assert chat.last_body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert chat.last_body["response_format"]["type"] == "json_schema"


def test_a_value_out_of_the_models_own_range_is_refused(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(CLAUDE)
    catalog.serve(GPT_4O)
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError) as raised:
        hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", temperature=1.5)
    assert str(raised.value) == "'temperature' must be a number from 0 to 1 for 'anthropic/claude-sonnet-4.5', got 1.5"
    assert chat.route.call_count == 0
    # the model's own ranges replace the seed model's: 1.5 is fine for gpt-4o (0-2), top_p 0 for Claude (0-1)
    hook.chat_completion(TEXT_MESSAGES, model="openai/gpt-4o", temperature=1.5)
    hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", top_p=0.0, max_tokens=1024)
    assert [body.get("temperature", body.get("top_p")) for _, body, _ in chat.calls] == [1.5, 0.0]


def test_a_parameter_the_model_does_not_take_is_refused_but_extra_body_keys_pass(
    monkeypatch, api, chat, catalog
) -> None:
    catalog.serve(GPT_5)
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError) as raised:
        hook.chat_completion(TEXT_MESSAGES, model="openai/gpt-5", temperature=0.2)
    message = str(raised.value)
    assert message.startswith("'openai/gpt-5' does not take 'temperature'; its schema's parameters are ")
    assert "reasoning_effort" in message
    assert chat.route.call_count == 0
    hook.chat_completion(TEXT_MESSAGES, model="openai/gpt-5", extra_body={"verbosity": "low"})
    assert chat.last_body["verbosity"] == "low"


# --- the reasoning switch ------------------------------------------------------------------------------------------


QWEN_OMNI = ("qwen3.5-omni-plus", *QWEN3_32B[1:])
"""A Qwen model with qwen3-32b's schema that thinks on plain calls too (qwen3-32b itself only when streamed)."""


def test_the_reasoning_switch_on_qwen3_32b_needs_a_stream(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(QWEN3_32B)
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError, match="'alibaba/qwen3-32b' thinks only on streamed calls"):
        hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", reasoning_budget_tokens=512)
    with pytest.raises(AimlParameterError, match="thinks only on streamed calls"):
        hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", extra_body={"enable_thinking": True})
    assert chat.route.call_count == 0
    hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", extra_body={"enable_thinking": False})
    assert chat.last_body["enable_thinking"] is False


@pytest.mark.parametrize(
    ("spec", "params", "expected"),
    [
        (GPT_5, {"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        (GROK_4, {"reasoning_effort": "low"}, {"reasoning": {"effort": "low"}}),
        (GROK_4, {"reasoning_budget_tokens": 2048}, {"reasoning": {"max_tokens": 2048}}),
        (QWEN_OMNI, {"reasoning_budget_tokens": 1024}, {"enable_thinking": True, "thinking_budget": 1024}),
        (
            CLAUDE,
            {"reasoning_budget_tokens": 2048, "max_tokens": 8192},
            {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 8192},
        ),
        (DEEPSEEK_V4, {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
    ],
    ids=["openai", "grok-effort", "grok-budget", "qwen", "anthropic", "deepseek"],
)
def test_the_reasoning_switch_sends_each_familys_own_keys(monkeypatch, api, chat, catalog, spec, params, expected):
    catalog.serve(spec)
    hook = hook_for(monkeypatch)
    hook.chat_completion(TEXT_MESSAGES, model=spec[0], **params)
    sent = chat.last_body
    assert {key: sent.get(key) for key in expected} == expected
    assert "reasoning_budget_tokens" not in sent
    reasoning_keys = {"reasoning_effort", "reasoning", "thinking", "enable_thinking", "thinking_budget"}
    assert set(sent) & reasoning_keys == set(expected) & reasoning_keys  # nothing else is added


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        (CLAUDE, {"reasoning_effort": "high"}, "has no reasoning effort setting"),
        (
            CLAUDE,
            {"reasoning_budget_tokens": 4096, "max_tokens": 4096},
            r"needs reasoning_budget_tokens \(4,096\) below max_tokens \(4,096\)",
        ),
        (CLAUDE, {"reasoning_budget_tokens": 512, "max_tokens": 4096}, "at least 1,024, got 512"),
        (GLM_45, {"reasoning_effort": "low"}, "only thinking on/off"),
        (GPT_5, {"reasoning_budget_tokens": 1000}, "has no reasoning token budget"),
        (GROK_4, {"reasoning_effort": "low", "reasoning_budget_tokens": 100}, "not both"),
        (GPT_4O, {"reasoning_effort": "low"}, "takes no reasoning parameter"),
    ],
    ids=[
        "effort-to-budget-only",
        "budget-not-below-max",
        "anthropic-minimum",
        "toggle-only",
        "budget-to-effort",
        "both",
        "none",
    ],
)
def test_a_switch_the_model_cannot_take_is_refused_before_sending(
    monkeypatch, api, chat, catalog, spec, params, message
) -> None:
    catalog.serve(spec)
    with pytest.raises(AimlParameterError, match=message) as raised:
        hook_for(monkeypatch).chat_completion(TEXT_MESSAGES, model=spec[0], **params)
    assert repr(spec[0]) in str(raised.value)
    assert chat.route.call_count == 0


def test_extra_body_merges_with_the_switch_and_a_clash_raises(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(GROK_4)
    catalog.serve(QWEN3_32B)
    hook = hook_for(monkeypatch)
    hook.chat_completion(TEXT_MESSAGES, model="x-ai/grok-4", reasoning_effort="high", extra_body={"provider": "xai"})
    assert chat.last_body["reasoning"] == {"effort": "high"}
    assert chat.last_body["provider"] == "xai"
    with pytest.raises(AimlParameterError, match="extra_body sets 'reasoning', which the reasoning switch sets too"):
        hook.chat_completion(
            TEXT_MESSAGES, model="x-ai/grok-4", reasoning_effort="high", extra_body={"reasoning": {"exclude": True}}
        )
    with pytest.raises(AimlParameterError, match="extra_body sets 'enable_thinking'"):
        hook.chat_completion(
            TEXT_MESSAGES, model="alibaba/qwen3-32b", reasoning_budget_tokens=64, extra_body={"enable_thinking": True}
        )
    assert chat.route.call_count == 1


# --- reading the catalog ------------------------------------------------------------------------------------------


def test_the_catalog_is_read_once_per_process(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(CLAUDE)
    for _ in range(2):
        hook = hook_for(monkeypatch)  # a new hook, as each task has
        hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", max_tokens=100)
        hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", temperature=0.5)
    assert catalog.entries["anthropic/claude-sonnet-4.5"].call_count == 1
    assert catalog.schemas["anthropic/claude-sonnet-4.5"].call_count == 1
    assert chat.route.call_count == 4
    request = catalog.entries["anthropic/claude-sonnet-4.5"].calls.last.request
    assert request.url.params["include"] == "all"


def test_after_catalog_ttl_the_copy_is_revalidated_by_etag(monkeypatch, api, chat, catalog, clock) -> None:
    catalog.serve(CLAUDE, revalidated=True)
    model = "anthropic/claude-sonnet-4.5"
    entry, schema = catalog.entries[model], catalog.schemas[model]
    hook = hook_for(monkeypatch, catalog_ttl=60)
    hook.chat_completion(TEXT_MESSAGES, model=model)
    clock.advance(30)
    hook.chat_completion(TEXT_MESSAGES, model=model)
    assert (entry.call_count, schema.call_count) == (1, 1)
    clock.advance(31)
    with pytest.raises(AimlParameterError, match="must be a number from 0 to 1"):  # the renewed schema still applies
        hook.chat_completion(TEXT_MESSAGES, model=model, temperature=1.5)
    assert (entry.call_count, schema.call_count) == (2, 2)
    assert entry.calls.last.request.headers["if-none-match"] == f'W/"entry-{model}"'
    assert schema.calls.last.request.headers["if-none-match"] == f'W/"schema-{model}"'
    assert "if-none-match" not in entry.calls[0].request.headers
    hook.chat_completion(TEXT_MESSAGES, model=model)
    assert (entry.call_count, schema.call_count) == (2, 2)  # renewed: fresh for another minute
    assert chat.route.call_count == 3


@pytest.mark.parametrize(
    "failure",
    [lambda: httpx.Response(503, text="Service unavailable"), lambda: httpx.ConnectError("no route to host")],
    ids=["503", "connect-error"],
)
def test_a_catalog_outage_lets_the_call_go_ahead_with_the_built_in_checks_logged_once(
    monkeypatch, api, chat, catalog, clock, capsys, failure
) -> None:
    route = catalog.fail("alibaba/qwen3-32b", failure(), failure())
    hook = hook_for(monkeypatch)
    for _ in range(3):
        hook.chat_completion(IMAGE_MESSAGES, model="alibaba/qwen3-32b")  # no entry: nothing is refused for it
    assert route.call_count == 1  # not asked again moments after it failed
    with pytest.raises(AimlParameterError, match="'temperature': Input should be less than or equal to 2"):  # seed
        hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", temperature=2.5)
    clock.advance(61)
    hook_for(monkeypatch).chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b")
    assert route.call_count == 2  # asked again a minute later, and down again
    assert chat.route.call_count == 4
    text = logged(capsys)
    assert text.count("The model catalog could not be read for alibaba/qwen3-32b") == 1
    assert "the call goes ahead with the built-in checks" in text


def test_the_built_in_reasoning_families_apply_during_an_outage(monkeypatch, api, chat, catalog) -> None:
    catalog.fail("anthropic/claude-sonnet-4.5", httpx.Response(502))
    hook = hook_for(monkeypatch)
    hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", reasoning_budget_tokens=2048)
    assert chat.last_body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    with pytest.raises(AimlParameterError, match="at least 1,024"):
        hook.chat_completion(TEXT_MESSAGES, model="anthropic/claude-sonnet-4.5", reasoning_budget_tokens=100)


def test_a_schema_outage_keeps_the_catalogs_capability_checks(monkeypatch, api, chat, catalog, capsys) -> None:
    catalog.serve(QWEN3_32B, capabilities=NO_VISION)
    catalog.schemas["alibaba/qwen3-32b"].mock(return_value=httpx.Response(500))
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlParameterError, match="does not take images"):
        hook.chat_completion(IMAGE_MESSAGES, model="alibaba/qwen3-32b")
    hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", temperature=1.9)  # seed range without schema
    hook.chat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b")
    assert chat.route.call_count == 2
    text = logged(capsys)
    assert text.count("The request schema of alibaba/qwen3-32b could not be read (HTTP 500)") == 1


def test_a_model_the_catalog_does_not_list_is_sent_and_logged_once(monkeypatch, api, chat, catalog, capsys) -> None:
    route = catalog.fail("vendor/private-model", httpx.Response(404, json={"message": "Not found"}))
    hook = hook_for(monkeypatch)
    hook.chat_completion(IMAGE_MESSAGES, model="vendor/private-model")
    hook.chat_completion(TEXT_MESSAGES, model="vendor/private-model")
    assert route.call_count == 1  # the 404 is remembered
    assert chat.models == ["vendor/private-model"] * 2
    assert logged(capsys).count("vendor/private-model is not in the model catalog") == 1


def test_catalog_checks_off_sends_no_catalog_request(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(QWEN3_32B, capabilities=NO_VISION)
    any_get = api.get(url__regex=r".*").mock(return_value=httpx.Response(500))
    hook = hook_for(monkeypatch, catalog_checks=False)
    hook.chat_completion(IMAGE_MESSAGES, model="alibaba/qwen3-32b")  # not refused: the catalog is not read
    assert chat.route.call_count == 1
    assert catalog.entries["alibaba/qwen3-32b"].call_count == 0
    assert any_get.call_count == 0
    assert not hook.model_profile("alibaba/qwen3-32b").checks_parameters


def test_get_model_matches_an_alias_and_is_cached(monkeypatch, api, catalog) -> None:
    item = catalog_item("openai/gpt-4o", aliases=("gpt-4o",), context_length=128_000)
    route = api.get(entry_url("gpt-4o")).mock(return_value=httpx.Response(200, json={"object": "model", "data": item}))
    hook = hook_for(monkeypatch)
    entry = hook.get_model("gpt-4o")
    assert entry is not None
    assert entry.id == "openai/gpt-4o"
    assert "gpt-4o" in entry.names()
    assert entry.context_length == 128_000
    assert hook.get_model("gpt-4o") == entry
    assert route.call_count == 1


def test_get_model_of_an_unlisted_model_is_none_and_an_outage_raises(monkeypatch, api, catalog, clock) -> None:
    unlisted = catalog.fail("vendor/nothing", httpx.Response(404))
    down = catalog.fail("openai/gpt-4o", httpx.Response(503), httpx.Response(503))
    hook = hook_for(monkeypatch)
    assert hook.get_model("vendor/nothing") is None
    assert hook.get_model("vendor/nothing") is None
    assert unlisted.call_count == 1
    for _ in range(2):  # also in the quiet minute after the failure: "cannot tell", never "not listed"
        with pytest.raises(AimlTransportError, match=r"could not be read \(the catalog entry of openai/gpt-4o\)"):
            hook.get_model("openai/gpt-4o")
    assert down.call_count == 1


def test_list_models_sends_include_and_filters_and_revalidates_by_etag(monkeypatch, api, clock) -> None:
    items = [catalog_item("openai/gpt-4o", input_modalities=("text", "image"))]
    route = api.get(f"{TEST_BASE_URL}/models").mock(
        side_effect=[
            httpx.Response(200, json={"object": "list", "data": items}, headers={"etag": 'W/"list-1"'}),
            httpx.Response(304),
        ]
    )
    hook = hook_for(monkeypatch)
    assert hook.list_models(include=["pricing"], capabilities="vision") == items
    params = route.calls.last.request.url.params
    assert (params["include"], params["capabilities"]) == ("pricing", "vision")
    assert hook.list_models(include=["pricing"], capabilities="vision") == items
    assert route.call_count == 1
    clock.advance(3601)  # the default catalog_ttl
    assert hook.list_models(include=["pricing"], capabilities="vision") == items
    assert route.call_count == 2
    assert route.calls.last.request.headers["if-none-match"] == 'W/"list-1"'


def test_list_models_ors_a_list_of_values_and_raises_when_the_catalog_is_down(monkeypatch, api) -> None:
    route = api.get(f"{TEST_BASE_URL}/models").mock(
        side_effect=[httpx.Response(200, json={"object": "list", "data": []}), httpx.Response(503)]
    )
    hook = hook_for(monkeypatch)
    assert hook.list_models(include="all", capabilities=["vision", "tools"], type="openai/chat-completions") == []
    params = route.calls.last.request.url.params
    assert params.get_list("capabilities") == ["vision", "tools"]
    assert params["include"] == "all"
    assert params["type"] == "openai/chat-completions"
    with pytest.raises(AimlTransportError, match="the model list"):
        hook.list_models(include=["pricing"])


# --- the async path -------------------------------------------------------------------------------------------------


async def test_the_async_path_makes_the_same_checks(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(QWEN3_32B, capabilities=NO_VISION)
    catalog.serve(GROK_4)
    hook = hook_for(monkeypatch)
    try:
        with pytest.raises(AimlParameterError, match="'alibaba/qwen3-32b' does not take images"):
            await hook.achat_completion(IMAGE_MESSAGES, model="alibaba/qwen3-32b")
        with pytest.raises(AimlParameterError, match="'temperature' must be a number from 0 to 2 for 'alibaba/qwen3"):
            await hook.achat_completion(TEXT_MESSAGES, model="alibaba/qwen3-32b", temperature=2.5)
        assert chat.route.call_count == 0
        await hook.achat_completion(TEXT_MESSAGES, model="x-ai/grok-4", reasoning_budget_tokens=300)
        assert chat.last_body["reasoning"] == {"max_tokens": 300}
        entry = await hook.aget_model("x-ai/grok-4")
        assert entry is not None
        assert entry.id == "x-ai/grok-4"
    finally:
        await hook.aclose()
    assert catalog.entries["x-ai/grok-4"].call_count == 1  # aget_model used the copy the call read
    assert catalog.entries["alibaba/qwen3-32b"].call_count == 1


# --- fallback models ---------------------------------------------------------------------------------------------


@pytest.fixture
def two_models(catalog: Catalog) -> Catalog:
    catalog.serve(GPT_4O)
    catalog.serve(GPT_4O_MINI)
    return catalog


def ask_with_fallback(monkeypatch: pytest.MonkeyPatch, **params: Any) -> ChatCompletionResult:
    return hook_for(monkeypatch).chat_completion(
        TEXT_MESSAGES,
        model="openai/gpt-4o",
        fallback_models=["openai/gpt-4o-mini"],
        client_request_id="trace-fb",
        **params,
    )


def test_a_deprecated_model_falls_back_to_the_next(monkeypatch, api, chat, two_models, capsys) -> None:
    chat.answer("openai/gpt-4o", error(404, "Model is deprecated"))
    result = ask_with_fallback(monkeypatch)
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert [request_id for _, _, request_id in chat.calls] == ["trace-fb", "trace-fb:f1"]
    assert result.requested_model == "openai/gpt-4o-mini"
    assert result.fallback_from == ["openai/gpt-4o"]
    assert result.client_request_id == "trace-fb:f1"
    summary = result.response_summary()
    assert (summary["requested_model"], summary["model"]) == ("openai/gpt-4o-mini", "gpt-4o-mini")
    assert summary["fallback_from"] == ["openai/gpt-4o"]
    text = logged(capsys)
    assert "openai/gpt-4o failed (the model is deprecated" in text
    assert "falling back to openai/gpt-4o-mini" in text


def test_a_scope_refusal_falls_back(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", error(403, "Your API key's scopes do not allow this model (model:chat)"))
    result = ask_with_fallback(monkeypatch)
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert result.fallback_from == ["openai/gpt-4o"]


@pytest.mark.parametrize(
    ("answer", "error_type", "tries"),
    [
        (error(403, "You've run out of credits. Please top up your balance"), AimlPermissionError, 1),
        (error(400, "Body validation error! Expected number, received string"), AimlBadRequestError, 1),
        (error(401, "This request requires a valid API key."), AimlAuthenticationError, 1),
        (error(429, "Too Many Requests"), AimlRateLimitError, 2),  # retried, then raised: never passed on
        (error(404, "Model not found"), AimlNotFoundError, 1),
    ],
    ids=["403-credits", "400", "401", "429", "404-not-deprecated"],
)
def test_no_fallback_for_the_faults_of_the_request_the_key_or_the_rate(
    monkeypatch, api, chat, two_models, answer, error_type, tries
) -> None:
    chat.answer("openai/gpt-4o", answer)
    with pytest.raises(error_type):
        ask_with_fallback(monkeypatch)
    assert chat.models == ["openai/gpt-4o"] * tries  # the fallback was never called


def test_a_server_error_falls_back_once_its_retries_are_spent(monkeypatch, api, chat, two_models, retry_waits) -> None:
    chat.answer("openai/gpt-4o", error(503, "Service unavailable"))
    result = ask_with_fallback(monkeypatch)
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o", "openai/gpt-4o-mini"]  # max_retries=1: two tries
    assert len(retry_waits) == 1
    assert result.fallback_from == ["openai/gpt-4o"]


def test_a_transport_failure_falls_back_once_its_retries_are_spent(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", httpx.ConnectError("connection reset"))
    result = ask_with_fallback(monkeypatch)
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o", "openai/gpt-4o-mini"]
    assert result.requested_model == "openai/gpt-4o-mini"


def test_the_last_models_failure_is_raised(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", error(500, "Internal server error"))
    chat.answer("openai/gpt-4o-mini", error(502, "Bad Gateway"))
    with pytest.raises(AimlServerError) as raised:
        ask_with_fallback(monkeypatch)
    assert raised.value.status_code == 502
    assert chat.models == ["openai/gpt-4o"] * 2 + ["openai/gpt-4o-mini"] * 2


def test_a_fallback_that_cannot_take_the_request_fails_before_anything_is_sent(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(GPT_4O, capabilities=("vision", "tools"), input_modalities=("text", "image"))
    catalog.serve(QWEN3_32B, capabilities=NO_VISION)
    with pytest.raises(AimlParameterError, match="'alibaba/qwen3-32b' does not take images"):
        hook_for(monkeypatch).chat_completion(
            IMAGE_MESSAGES, model="openai/gpt-4o", fallback_models=["alibaba/qwen3-32b"]
        )
    assert chat.route.call_count == 0


def test_each_fallback_gets_its_own_reasoning_keys(monkeypatch, api, chat, catalog) -> None:
    catalog.serve(GPT_5)
    catalog.serve(GROK_4)
    chat.answer("openai/gpt-5", error(404, "Model is deprecated"))
    hook_for(monkeypatch).chat_completion(
        TEXT_MESSAGES, model="openai/gpt-5", fallback_models=["x-ai/grok-4"], reasoning_effort="high"
    )
    (_, first, _), (_, second, _) = chat.calls
    assert first["reasoning_effort"] == "high"
    assert "reasoning" not in first
    assert second["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in second


def test_a_stream_falls_back_too(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", error(503, "Service unavailable"))
    chat.answer("openai/gpt-4o-mini", lambda: stream_of("openai/gpt-4o-mini", "Hel", "lo"))
    hook = hook_for(monkeypatch)
    items = list(
        hook.stream_chat_completion(
            TEXT_MESSAGES, model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini"], client_request_id="s-1"
        )
    )
    deltas, result = items[:-1], items[-1]
    assert all(isinstance(delta, StreamDelta) for delta in deltas)
    assert "".join(delta.content for delta in deltas) == "Hello"
    assert isinstance(result, ChatCompletionResult)
    assert result.content == "Hello"
    assert result.fallback_from == ["openai/gpt-4o"]
    assert result.requested_model == "openai/gpt-4o-mini"
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o", "openai/gpt-4o-mini"]
    assert chat.calls[-1][2] == "s-1:f1"
    assert all(body["stream"] is True for _, body, _ in chat.calls)


def test_a_stream_does_not_fall_back_after_a_bad_request(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", error(400, "Body validation error!"))
    hook = hook_for(monkeypatch)
    with pytest.raises(AimlBadRequestError):
        list(hook.stream_chat_completion(TEXT_MESSAGES, model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini"]))
    assert chat.models == ["openai/gpt-4o"]


async def test_the_async_call_and_stream_fall_back(monkeypatch, api, chat, two_models) -> None:
    chat.answer("openai/gpt-4o", error(404, "404 Model is deprecated"))
    chat.answer("openai/gpt-4o-mini", lambda: httpx.Response(200, json=completion("openai/gpt-4o-mini", "async")))
    hook = hook_for(monkeypatch)
    try:
        result = await hook.achat_completion(
            TEXT_MESSAGES, model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini"], client_request_id="a-1"
        )
        assert (result.content, result.fallback_from, result.client_request_id) == (
            "async",
            ["openai/gpt-4o"],
            "a-1:f1",
        )
        chat.answer("openai/gpt-4o-mini", lambda: stream_of("openai/gpt-4o-mini", "A", "B"))
        items = [
            item
            async for item in hook.astream_chat_completion(
                TEXT_MESSAGES, model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini"]
            )
        ]
    finally:
        await hook.aclose()
    assert items[-1].content == "AB"
    assert items[-1].fallback_from == ["openai/gpt-4o"]
    assert chat.models == ["openai/gpt-4o", "openai/gpt-4o-mini"] * 2


def test_a_fallback_without_a_given_request_id_is_traced_under_the_first_calls_id(
    monkeypatch, api, chat, two_models
) -> None:
    chat.answer("openai/gpt-4o", error(404, "Model is deprecated"))
    hook_for(monkeypatch).chat_completion(TEXT_MESSAGES, model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini"])
    (_, _, first), (_, _, second) = chat.calls
    assert second == f"{first}:f1"


# --- the key ------------------------------------------------------------------------------------------------------


def test_the_key_is_in_no_log_line_or_error(monkeypatch, api, chat, catalog, capsys, caplog) -> None:
    caplog.set_level("DEBUG")
    echo = f"key {TEST_API_KEY} rejected"
    catalog.fail("openai/gpt-4o", httpx.Response(500, text=echo))
    catalog.fail("openai/gpt-4o-mini", httpx.ConnectError("connection refused"))
    chat.answer("openai/gpt-4o", error(404, f"Model is deprecated ({echo})"))
    chat.answer("openai/gpt-4o-mini", error(401, echo))
    hook = hook_for(monkeypatch)
    texts = []
    with pytest.raises(AimlAuthenticationError) as raised:
        ask_with_fallback(monkeypatch)
    texts += [str(raised.value), repr(raised.value)]
    with pytest.raises(AimlParameterError) as refused:
        hook.chat_completion(TEXT_MESSAGES, model="openai/gpt-4o", reasoning_effort="max")
    texts.append(str(refused.value))
    with pytest.raises(AimlTransportError) as unread:
        hook.get_model("openai/gpt-4o-mini")
    texts.append(str(unread.value))
    text = logged(capsys)
    texts += [text, caplog.text]
    assert "falling back to openai/gpt-4o-mini" in text  # the fallback's warning was logged, with the key blanked
    assert not [t for t in texts if TEST_API_KEY in t]

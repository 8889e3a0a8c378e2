"""Request building: parameter validation, the exact body sent, message shapes, headers and client request ids."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from airflow_provider_aiml import __version__
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.hooks.building import (
    CLIENT_REQUEST_ID_MAX,
    build_chat_body,
    call_headers,
    client_headers,
    client_request_id,
    extend_messages,
    new_client_request_id,
    validate_messages,
)
from airflow_provider_aiml.models import GENERATION_PARAMETERS

MODEL = "alibaba/qwen3-vl-32b-thinking"
MESSAGES = [{"role": "user", "content": "Hi! What do you think about mankind?"}]
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def tool(name: str = "get_weather", **function: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            **function,
        },
    }


def body_for(params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_chat_body(MODEL, MESSAGES, params, stream=kwargs.pop("stream", False), **kwargs)


# --- every documented parameter, sent as given ---------------------------------------------------------------

ALL_VALID_PARAMS: dict[str, Any] = {
    "max_completion_tokens": 2048,
    "max_tokens": 1024,
    "temperature": 0.7,
    "top_p": 0.9,
    "stop": ["\n\n", "END"],
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "seed": 42,
    "repetition_penalty": 1.1,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True, "description": "d"},
    },
    "tools": [tool(description="Weather by city", strict=None)],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "Hello"},
    "stream_options": {"include_usage": True},
}


def test_all_valid_params_cover_every_generation_parameter():
    assert set(ALL_VALID_PARAMS) == set(GENERATION_PARAMETERS)


def test_every_valid_parameter_is_sent_with_exactly_the_callers_value():
    params = copy.deepcopy(ALL_VALID_PARAMS)

    body = body_for(params)

    assert body == {"model": MODEL, "messages": MESSAGES, **ALL_VALID_PARAMS}
    # The json_schema keeps the wire name "schema" (the model's field is schema_ internally).
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert "schema_" not in body["response_format"]["json_schema"]
    # Nullable-but-set keys inside nested objects stay as the caller wrote them.
    assert body["tools"][0]["function"]["strict"] is None


def test_none_values_are_not_sent():
    params = dict.fromkeys(GENERATION_PARAMETERS)
    params["temperature"] = 0.2

    body = body_for(params)

    assert body == {"model": MODEL, "messages": MESSAGES, "temperature": 0.2}


def test_no_params_gives_only_model_and_messages():
    assert body_for({}) == {"model": MODEL, "messages": MESSAGES}


def test_stream_flag_is_sent_only_when_streaming():
    assert "stream" not in body_for({"temperature": 1.0})
    assert body_for({"temperature": 1.0}, stream=True) == {
        "model": MODEL,
        "messages": MESSAGES,
        "temperature": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    own = body_for({"stream_options": {"include_usage": False}}, stream=True)
    assert own["stream_options"] == {"include_usage": False}


def test_values_keep_their_type():
    body = body_for({"temperature": 1, "top_p": 1, "frequency_penalty": -2, "max_tokens": 5})

    assert body["temperature"] == 1
    assert type(body["temperature"]) is int
    assert type(body["top_p"]) is int
    assert type(body["max_tokens"]) is int


def test_messages_are_sent_unchanged():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Describe"}]},
    ]
    body = build_chat_body(MODEL, messages, {}, stream=False)

    assert body["messages"] == messages
    assert body["messages"] is not messages  # a copy of the list: later edits by the caller do not leak in


# --- valid edge values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0),
        ("temperature", 2),
        ("temperature", 0.0),
        ("temperature", 2.0),
        ("top_p", 0.01),
        ("top_p", 1),
        ("stop", ["a", "b", "c", "d"]),
        ("stop", "###"),
        ("stop", ["only"]),
        ("seed", 1),
        ("max_tokens", 1),
        ("max_completion_tokens", 1),
        ("frequency_penalty", -2),
        ("frequency_penalty", 2),
        ("presence_penalty", -2),
        ("presence_penalty", 2),
        ("repetition_penalty", 0.01),
        ("repetition_penalty", 5),
        ("tools", [tool(f"fn_{i}") for i in range(128)]),
        ("tools", [tool("a" * 64)]),
        ("tools", [tool("A-z_0-9")]),
        ("tool_choice", "none"),
        ("tool_choice", "auto"),
        ("tool_choice", "required"),
        ("response_format", {"type": "text"}),
        ("response_format", {"type": "json_object"}),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x"}}),
        ("parallel_tool_calls", True),
        ("parallel_tool_calls", False),
        ("prediction", {"type": "content", "content": [{"type": "text", "text": "x"}]}),
        ("stream_options", {"include_usage": False}),
    ],
)
def test_valid_edge_value_is_sent_as_given(name, value):
    body = body_for({name: copy.deepcopy(value)})

    assert body == {"model": MODEL, "messages": MESSAGES, name: value}


# --- invalid values: rejected before sending, naming the parameter ------------------------------------------

BAD_VALUES = [
    ("temperature", -0.1, "greater than or equal to 0"),
    ("temperature", 2.1, "less than or equal to 2"),
    ("temperature", "0.5", "valid number"),
    ("temperature", True, "valid number"),
    ("temperature", float("nan"), "finite"),
    ("temperature", float("inf"), "finite"),
    ("top_p", 0, "greater than or equal to 0.01"),
    ("top_p", 1.5, "less than or equal to 1"),
    ("stop", ["a", "b", "c", "d", "e"], "at most 4"),
    ("stop", [], "at least 1"),
    ("stop", [1], "valid string"),
    ("seed", 0, "greater than or equal to 1"),
    ("seed", 1.5, "valid integer"),
    ("seed", True, "valid integer"),
    ("max_tokens", 0, "greater than or equal to 1"),
    ("max_tokens", 0.5, "valid integer"),
    ("max_tokens", 10.5, "valid integer"),  # a fraction of a token was sent before
    ("max_tokens", 10.0, "valid integer"),  # strict: a float is not a whole number of tokens
    ("max_completion_tokens", 0, "greater than or equal to 1"),
    ("max_completion_tokens", 1.5, "valid integer"),
    ("frequency_penalty", 2.5, "less than or equal to 2"),
    ("frequency_penalty", -2.5, "greater than or equal to -2"),
    ("presence_penalty", 2.5, "less than or equal to 2"),
    ("presence_penalty", -2.5, "greater than or equal to -2"),
    ("repetition_penalty", 0, "greater than 0"),
    ("repetition_penalty", -1, "greater than 0"),
    ("tools", [{"type": "function", "function": {"name": "f"}}], "tools[0].function.parameters: Field required"),
    ("tools", [tool("bad name")], "tools[0].function.name"),
    ("tools", [tool("a" * 65)], "tools[0].function.name"),
    ("tools", [tool(f"fn_{i}") for i in range(129)], "at most 128"),
    ("tools", [], "at least 1"),
    ("tools", [{"type": "code", "function": tool()["function"]}], "tools[0].type"),
    ("tools", [tool(unexpected=1)], "tools[0].function.unexpected"),
    ("tool_choice", "sometimes", "'none', 'auto' or 'required'"),
    ("tool_choice", {"type": "function", "function": {"name": "bad name"}}, "tool_choice.function.name"),
    ("response_format", {"type": "xml"}, "type must be one of 'text', 'json_object', 'json_schema'"),
    ("response_format", "json", "type must be one of"),
    (
        "response_format",
        {"type": "json_schema", "json_schema": {"name": "bad name", "schema": {}}},
        "response_format.json_schema.name",
    ),
    ("response_format", {"type": "json_schema"}, "response_format.json_schema: Field required"),
    (
        "response_format",
        {"type": "json_schema", "json_schema": {"name": "x", "schema": "not a dict"}},
        "response_format.json_schema.schema: Input should be a valid dictionary",
    ),
    ("tool_choice", {"type": "function"}, "tool_choice.function: Field required"),
    ("parallel_tool_calls", "yes", "valid boolean"),
    ("parallel_tool_calls", 1, "valid boolean"),
    ("prediction", {"type": "other", "content": "x"}, "prediction.type"),
    ("stream_options", {}, "stream_options.include_usage: Field required"),
]


@pytest.mark.parametrize(
    ("name", "value", "detail"),
    BAD_VALUES,
    ids=[f"{name}={value!r}"[:60] for name, value, _ in BAD_VALUES],
)
def test_bad_value_is_rejected_naming_the_parameter(name, value, detail):
    with pytest.raises(AimlParameterError) as caught:
        body_for({name: value})

    message = str(caught.value)
    assert message.startswith(f"Invalid request parameter {name!r}: ")
    assert detail in message


@pytest.mark.parametrize(("name", "value", "detail"), BAD_VALUES[:8])
def test_bad_value_in_extra_body_is_validated_too(name, value, detail):
    with pytest.raises(AimlParameterError) as caught:
        body_for({}, extra_body={name: value})

    assert f"{name!r}" in str(caught.value)
    assert detail in str(caught.value)


def test_misspelt_schema_key_is_named_as_written():
    # "schema_" is not the wire name: it must be rejected, and the message must name the key the caller wrote,
    # not the documented "schema" key (which is allowed).
    with pytest.raises(AimlParameterError) as caught:
        body_for({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema_": {}}}})

    message = str(caught.value)
    assert "Extra inputs are not permitted" in message
    assert "response_format.json_schema.schema_:" in message


def test_parameter_error_is_a_value_error():
    with pytest.raises(ValueError, match="'seed'"):
        body_for({"seed": 0})


def test_error_reports_the_bad_value_shortened():
    with pytest.raises(AimlParameterError) as caught:
        body_for({"tools": [tool(f"fn_{i}") for i in range(129)]})

    got = str(caught.value).split("(got ", 1)[1]
    assert got.endswith("...)")
    assert len(got) <= 81


def test_two_bad_parameters_are_both_named():
    with pytest.raises(AimlParameterError) as caught:
        body_for({"temperature": 3, "seed": 0})

    assert "'temperature'" in str(caught.value)
    assert "'seed'" in str(caught.value)


# --- unknown parameters, extra_body, reserved keys -----------------------------------------------------------


def test_unknown_parameter_is_rejected_and_points_to_extra_body():
    with pytest.raises(AimlParameterError) as caught:
        body_for({"temprature": 0.5, "enable_thinking": True})

    message = str(caught.value)
    assert message.startswith("Unknown parameter(s) 'enable_thinking', 'temprature'.")
    assert "extra_body" in message
    for name in GENERATION_PARAMETERS:
        assert name in message


def test_extra_body_keys_are_merged_into_the_body():
    body = body_for(
        {"temperature": 0.3},
        extra_body={"enable_thinking": False, "reasoning_effort": "high", "reasoning": {"effort": "low"}},
    )

    assert body == {
        "model": MODEL,
        "messages": MESSAGES,
        "temperature": 0.3,
        "enable_thinking": False,
        "reasoning_effort": "high",
        "reasoning": {"effort": "low"},
    }


def test_a_parameter_given_twice_is_an_error():
    with pytest.raises(AimlParameterError, match="'temperature' given both as a parameter and in extra_body"):
        body_for({"temperature": 0.3}, extra_body={"temperature": 1.5})
    assert body_for({}, extra_body={"temperature": 1.5})["temperature"] == 1.5


def test_tuples_are_sent_as_lists():
    assert body_for({"stop": ("a", "b")})["stop"] == ["a", "b"]


def test_none_values_in_extra_body_are_not_sent():
    body = body_for({}, extra_body={"enable_thinking": None, "provider": "auto"})

    assert body == {"model": MODEL, "messages": MESSAGES, "provider": "auto"}


def test_unset_key_in_extra_body_does_not_erase_the_callers_parameter():
    # None means "not set" everywhere else; an unset extra_body key must not silently drop a parameter the
    # caller did set.
    body = body_for({"temperature": 0.5}, extra_body={"temperature": None})

    assert body["temperature"] == 0.5


@pytest.mark.parametrize("key", ["model", "messages", "stream"])
def test_extra_body_may_not_set_reserved_keys(key):
    with pytest.raises(AimlParameterError, match=f"extra_body may not set '{key}'"):
        body_for({}, extra_body={key: "x"})


def test_extra_body_reserved_keys_are_all_named():
    with pytest.raises(AimlParameterError) as caught:
        body_for({}, extra_body={"stream": False, "model": "other"})

    assert str(caught.value).startswith("extra_body may not set 'model', 'stream'")


@pytest.mark.parametrize("extra", [["enable_thinking"], "enable_thinking", 3])
def test_extra_body_must_be_a_mapping(extra):
    with pytest.raises(AimlParameterError, match=f"extra_body must be a mapping, got {type(extra).__name__}"):
        body_for({}, extra_body=extra)


@pytest.mark.parametrize("model", ["", "   ", None, 5])
def test_model_must_be_a_non_empty_string(model):
    with pytest.raises(AimlParameterError, match="model must be a non-empty string"):
        build_chat_body(model, MESSAGES, {}, stream=False)


def test_messages_are_validated_by_build_chat_body():
    with pytest.raises(AimlParameterError, match="messages must not be empty"):
        build_chat_body(MODEL, [], {}, stream=False)


# --- message shapes ------------------------------------------------------------------------------------------

VALID_MESSAGE_LISTS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, {"role": "user", "content": "hi"}],
    [{"role": "developer", "content": "x"}, {"role": "user", "content": "hi"}],
    [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "http://example.com/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg", "detail": "auto"}},
            ],
        }
    ],
    [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    ],
    [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}],
    ({"role": "user", "content": "a tuple is a sequence"},),
]


@pytest.mark.parametrize("messages", VALID_MESSAGE_LISTS)
def test_valid_messages_pass(messages):
    validate_messages(messages)
    without_nulls = [{key: value for key, value in message.items() if value is not None} for message in messages]
    assert build_chat_body(MODEL, messages, {}, stream=False)["messages"] == without_nulls


def test_null_message_keys_are_not_sent():
    messages = [{"role": "user", "content": "hi", "name": None}]
    assert build_chat_body(MODEL, messages, {}, stream=False)["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([{"role": "system", "content": "x", "extra": 1}], "takes only role, content and name; got ['extra']"),
        ([{"role": "tool", "content": ["sunny"], "tool_call_id": "c"}], "(role 'tool') must be a string"),
        (
            [{"role": "user", "content": "weather?"}, {"role": "tool", "content": "sunny", "tool_call_id": "c1"}],
            "messages[1].tool_call_id 'c1' answers no tool call of an earlier assistant message (the calls asked "
            "for: none)",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
                },
                {"role": "tool", "content": "sunny", "tool_call_id": "c2"},
            ],
            "tool_call_id 'c2' answers no tool call of an earlier assistant message (the calls asked for: c1)",
        ),
    ],
)
def test_schema_rules_of_system_and_tool_messages(messages, fragment):
    with pytest.raises(AimlParameterError) as caught:
        validate_messages(messages)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ("hello", "messages must be a list of message objects, got str"),
        (b"hello", "got bytes"),
        ({"role": "user", "content": "x"}, "got dict"),
        (None, "got NoneType"),
        ([], "messages must not be empty"),
        (["hi"], "messages[0] must be an object with 'role' and 'content'"),
        ([{"content": "hi"}], "messages[0].role must be one of"),
        ([{"role": "bot", "content": "hi"}], "got 'bot'"),
        ([{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}], "messages[1] (role 'tool')"),
        ([{"role": "assistant", "content": None}], "messages[0] (role 'assistant') needs content or tool_calls"),
        ([{"role": "assistant"}], "needs content or tool_calls"),
        ([{"role": "user", "content": None}], "messages[0].content must be a string or a non-empty list"),
        ([{"role": "user", "content": []}], "non-empty list of parts"),
        ([{"role": "user", "content": 5}], "messages[0].content must be"),
        ([{"role": "user", "content": [{"type": "video_url"}]}], "messages[0].content[0].type must be one of"),
        ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}], "'system'"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text must be a string"),
        ([{"role": "user", "content": [{"type": "text", "text": 3}]}], "text must be a string"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/tmp/a.png"}}]}],
            "messages[0].content[0].image_url.url must be an http(s) URL or a data:image/...;base64 URI",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,eA=="}}]}],
            "image_url.url must be",
        ),
        ([{"role": "user", "content": [{"type": "image_url"}]}], "image_url.url must be"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "medium"}}],
                }
            ],
            "messages[0].content[0].image_url.detail must be 'low', 'high' or 'auto', got 'medium'",
        ),
        ([{"role": "tool", "content": [{"type": "refusal"}], "tool_call_id": "c"}], "(role 'tool') must be a string"),
    ],
)
def test_bad_messages_are_rejected_with_their_location(messages, fragment):
    with pytest.raises(AimlParameterError) as caught:
        validate_messages(messages)

    assert fragment in str(caught.value)


# --- headers -------------------------------------------------------------------------------------------------


def test_headers_are_exactly_these():
    assert client_headers("sk-abc") == {
        "Authorization": "Bearer sk-abc",
        "User-Agent": f"airflow-provider-aiml/{__version__}",
        "Accept": "application/json",
    }
    assert call_headers("dag:task:run:1") == {
        "Content-Type": "application/json",
        "X-Client-Request-Id": "dag:task:run:1",
    }


# --- client request ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ("my_dag", "my_task", "manual__2026-01-01T00:00:00+00:00", 1),
            "my_dag:my_task:manual__2026-01-01T00:00:00_00:00:1",
        ),
        (("dag id", "task/x", 3), "dag_id:task_x:3"),
        (("a.b-c:d",), "a.b-c:d"),
        (("tâche", "ünïcode"), "t_che:n_code"),
        (("!!!", "ok"), "_:ok"),
        (("__x__",), "x"),
        (("a", "", "b"), "a:b"),
        (("run id", 0), "run_id:0"),
    ],
)
def test_client_request_id_is_sanitised(parts, expected):
    result = client_request_id(*parts)

    assert result == expected
    assert ID_PATTERN.match(result)


@pytest.mark.parametrize("parts", [(), ("",), ("", "")])
def test_client_request_id_without_parts_is_a_fresh_uuid(parts):
    first = client_request_id(*parts)
    second = client_request_id(*parts)

    assert re.fullmatch(r"airflow-aiml:[0-9a-f]{32}", first)
    assert first != second


def test_client_request_id_of_exactly_the_limit_is_kept():
    value = "x" * CLIENT_REQUEST_ID_MAX
    assert client_request_id(value) == value


def test_long_client_request_id_is_cut_and_hashed():
    long_a = "dag:" + "a" * 300 + ":1"
    long_b = "dag:" + "a" * 300 + ":2"

    id_a = client_request_id(long_a)
    id_b = client_request_id(long_b)

    assert CLIENT_REQUEST_ID_MAX == 128
    assert len(id_a) == 128
    assert ID_PATTERN.match(id_a)
    assert id_a.startswith("dag:aaaa")
    assert re.fullmatch(r".{111}\.[0-9a-f]{16}", id_a)
    assert id_a != id_b  # the hash of the whole keeps ids unique although their kept starts are equal
    assert id_a[:111] == id_b[:111]
    assert client_request_id(long_a) == id_a  # deterministic


def test_long_id_with_bad_characters_is_still_valid():
    result = client_request_id("dag with spaces " * 20, "task/ü" * 10)

    assert len(result) == 128
    assert ID_PATTERN.match(result)


def test_new_client_request_id_is_valid_and_unique():
    first, second = new_client_request_id(), new_client_request_id()

    assert re.fullmatch(r"airflow-aiml:[0-9a-f]{32}", first)
    assert first != second


def test_a_conversation_is_extended_with_only_its_new_messages_checked():
    turn = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
    }
    first = build_chat_body(MODEL, [*MESSAGES, turn], {}, stream=False)
    longer = [*MESSAGES, turn, {"role": "tool", "content": "sunny", "tool_call_id": "c1", "name": None}]

    extended = extend_messages(first, longer, checked=2)

    assert extended == build_chat_body(MODEL, longer, {}, stream=False)  # as if built whole
    unpaired = [*MESSAGES, turn, {"role": "tool", "content": "sunny", "tool_call_id": "c9"}]
    with pytest.raises(AimlParameterError, match=r"'c9' answers no tool call .* asked for: c1"):
        extend_messages(first, unpaired, checked=2)  # the earlier turns' calls still count
    with pytest.raises(AimlParameterError, match=r"messages\[2\].role"):
        extend_messages(first, [*MESSAGES, turn, {"role": "robot", "content": "x"}], checked=2)
    with pytest.raises(ValueError, match="holds 2 messages, not the 1"):
        extend_messages(first, longer, checked=1)

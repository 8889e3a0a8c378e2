"""AimlChatTrigger (serialization, events, errors) and the typed-output helpers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import BaseModel

from airflow_provider_aiml.exceptions import AimlOutputParseError, AimlParameterError, AimlRateLimitError
from airflow_provider_aiml.structured import (
    AimlOutputValidationError,
    check_output_type,
    parse_output,
    reask_messages,
    response_format_for,
)
from airflow_provider_aiml.triggers.aiml import AimlChatTrigger, result_from_event
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

MESSAGES = [{"role": "user", "content": "Hi"}]


def make_trigger(**extra: Any) -> AimlChatTrigger:
    return AimlChatTrigger(
        aiml_conn_id="aiml_default",
        messages=MESSAGES,
        model="alibaba/qwen3-vl-32b-thinking",
        client_request_id="d:t:r:-1:1",
        extra_body={"enable_thinking": True},
        resume_state={"request_id": "d:t:r:-1:1", "attempt": 0},
        temperature=0.3,
        **extra,
    )


def first_event(trigger: AimlChatTrigger) -> dict[str, Any]:
    async def _first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(_first())


def test_trigger_serializes_to_a_rebuildable_form_without_the_key():
    classpath, kwargs = make_trigger().serialize()
    assert classpath == "airflow_provider_aiml.triggers.aiml.AimlChatTrigger"
    assert TEST_API_KEY not in json.dumps(kwargs)
    rebuilt = AimlChatTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["temperature"] == 0.3


def test_trigger_makes_the_call_and_echoes_what_the_task_needs():
    with respx.mock:
        route = respx.post(f"{TEST_BASE_URL}/chat/completions").mock(
            return_value=httpx.Response(
                200,
                json={
                    "id": "c1",
                    "model": "m",
                    "choices": [{"finish_reason": "stop", "message": {"content": "Hello", "reasoning_content": "hm"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                },
            )
        )
        event = first_event(make_trigger())
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "model": "alibaba/qwen3-vl-32b-thinking",
        "messages": MESSAGES,
        "temperature": 0.3,
        "enable_thinking": True,
    }
    assert route.calls.last.request.headers["x-client-request-id"] == "d:t:r:-1:1"
    assert event["status"] == "success"
    assert "messages" not in event  # the resumed task rebuilds them; the event stays small
    assert event["resume_state"] == {"request_id": "d:t:r:-1:1", "attempt": 0}
    result = result_from_event(event)
    assert (result.content, result.reasoning, result.usage.total_tokens) == ("Hello", "hm", 3)
    assert "raw" not in event["result"]


def test_trigger_errors_are_raised_again_with_their_type(retry_waits):
    with respx.mock:
        respx.post(f"{TEST_BASE_URL}/chat/completions").mock(
            return_value=httpx.Response(429, json={"message": "Too Many Requests", "requestId": "r-1"})
        )
        event = first_event(make_trigger())
    assert event["status"] == "error"
    with pytest.raises(AimlRateLimitError, match="Too Many Requests") as raised:
        result_from_event(event)
    assert raised.value.status_code == 429
    assert raised.value.api_request_id == "r-1"
    assert len(retry_waits) == 2  # the trigger retried like any direct call


class Person(BaseModel):
    """A person."""

    name: str
    age: int


class Team(BaseModel):
    lead: Person
    members: list[Person]


def test_response_format_from_a_model_is_strict_and_closed_on_every_object():
    spec = response_format_for(Team)["json_schema"]
    assert spec["name"] == "Team"
    assert spec["strict"] is True
    assert "description" not in spec
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["$defs"]["Person"]["additionalProperties"] is False
    assert response_format_for(Person)["json_schema"]["description"] == "A person."


def test_parse_output_validates_into_the_model():
    assert parse_output('{"name": "Ada", "age": 36}', response_format=None, output_type=Person) == {
        "name": "Ada",
        "age": 36,
    }
    with pytest.raises(AimlOutputValidationError, match="age: Input should be a valid integer"):
        parse_output('{"name": "Ada", "age": "old"}', response_format=None, output_type=Person)
    with pytest.raises(AimlOutputParseError):
        parse_output("not json", response_format=None, output_type=Person)
    assert parse_output("plain text", response_format=None, output_type=None) is None
    assert parse_output('{"a": 1}', response_format={"type": "json_object"}, output_type=None) == {"a": 1}


def test_output_type_checks():
    check_output_type(Person, None)
    with pytest.raises(AimlParameterError, match="not both"):
        check_output_type(Person, {"type": "json_object"})
    with pytest.raises(AimlParameterError, match="pydantic BaseModel subclass"):
        check_output_type(dict, None)


def test_reask_shows_the_answer_and_the_problem():
    messages = reask_messages(MESSAGES, '{"name": 1}', AimlOutputParseError("name: Input should be a valid string"))
    assert messages[:1] == MESSAGES
    assert messages[1] == {"role": "assistant", "content": '{"name": 1}'}
    assert messages[2]["role"] == "user"
    assert "name: Input should be a valid string" in messages[2]["content"]

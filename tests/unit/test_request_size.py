"""A request that cannot fit is refused before it is sent: the body-size cap, and the model's context length read
from the catalog (``GET /model/{id}``) only for long prompts, with the seed model's documented default when the
catalog cannot be read. Deferred calls keep large requests out of the trigger table."""

from __future__ import annotations

import asyncio
import base64
import json
from unittest import mock

import httpx
import pytest
import respx
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.sizing import CHARS_PER_TOKEN_AT_MOST, prompt_tokens_at_least
from airflow_provider_aiml.models import DEFAULT_MODEL
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

CHAT_URL = f"{TEST_BASE_URL}/chat/completions"
CATALOG_URL = f"{TEST_BASE_URL.removesuffix('/v1')}/model/{DEFAULT_MODEL}"
FIVE_MB_PROMPT = "word " * 1_000_000
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "qwen3-vl-32b-thinking",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def hook_for(monkeypatch: pytest.MonkeyPatch, **extra: object) -> AimlApiHook:
    conn = {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_SIZE", json.dumps(conn))
    return AimlApiHook(aiml_conn_id="aiml_size")


def catalog_entry(context_length: int) -> httpx.Response:
    return httpx.Response(
        200, json={"object": "model", "data": {"id": DEFAULT_MODEL, "info": {"contextLength": context_length}}}
    )


def test_a_five_megabyte_prompt_is_refused_against_the_catalogs_context_length(monkeypatch):
    hook = hook_for(monkeypatch)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_entry(131_072))
        with pytest.raises(AimlParameterError) as raised:
            hook.chat_completion([{"role": "user", "content": FIVE_MB_PROMPT}])
        assert chat.call_count == 0
        assert catalog.call_count == 1
    assert "at least 625,000 tokens" in str(raised.value)
    assert f"131,072-token context length of {DEFAULT_MODEL!r}" in str(raised.value)


def test_the_completion_budget_counts_and_the_catalog_is_read_once_per_hook(monkeypatch):
    hook = hook_for(monkeypatch)
    prompt = "x" * (20_000 * CHARS_PER_TOKEN_AT_MOST)  # at least 20,000 tokens
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_entry(32_768))
        hook.chat_completion([{"role": "user", "content": prompt}], max_completion_tokens=8_000)  # 28,000 fit
        with pytest.raises(AimlParameterError, match=r"20,000 tokens plus 16,000 reserved for the answer, over"):
            hook.chat_completion([{"role": "user", "content": prompt}], max_completion_tokens=16_000)
        assert (chat.call_count, catalog.call_count) == (1, 1)


def test_a_short_prompt_makes_no_catalog_request(monkeypatch):
    hook = hook_for(monkeypatch)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_entry(10))
        hook.chat_completion([{"role": "user", "content": "Hi " * 1000}], max_completion_tokens=100_000)
    assert (chat.call_count, catalog.call_count) == (1, 0)


@pytest.mark.parametrize(
    "catalog_answer",
    [httpx.Response(503), httpx.Response(200, text="not json"), httpx.ConnectError("down")],
    ids=["503", "not-json", "unreachable"],
)
def test_without_the_catalog_the_seed_models_documented_default_applies(monkeypatch, capsys, catalog_answer):
    hook = hook_for(monkeypatch)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        api.get(CATALOG_URL).mock(side_effect=[catalog_answer])
        with pytest.raises(AimlParameterError, match="131,072-token context length"):
            hook.chat_completion([{"role": "user", "content": FIVE_MB_PROMPT}])
    assert chat.call_count == 0
    assert "checking against the documented 131,072 tokens" in logged(capsys)


def test_another_model_the_catalog_does_not_know_is_sent_unchecked(monkeypatch, capsys):
    hook = hook_for(monkeypatch)
    prompt = "x" * (200_000 * CHARS_PER_TOKEN_AT_MOST)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        api.get(url__regex=r".*/model/").mock(return_value=httpx.Response(404, json={"message": "Not found"}))
        hook.chat_completion([{"role": "user", "content": prompt}], model="vendor/long-context")
    assert chat.call_count == 1  # an outage or gap of the catalog never blocks a call
    assert "no context length for vendor/long-context (HTTP 404); the prompt's length is not checked" in logged(capsys)


def test_the_async_path_refuses_it_too(monkeypatch):
    hook = hook_for(monkeypatch)

    async def ask() -> None:
        try:
            await hook.achat_completion([{"role": "user", "content": FIVE_MB_PROMPT}])
        finally:
            await hook.aclose()

    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        api.get(CATALOG_URL).mock(return_value=catalog_entry(131_072))
        with pytest.raises(AimlParameterError, match="context length"):
            asyncio.run(ask())
    assert chat.call_count == 0


def test_the_body_size_cap_refuses_big_images_before_sending(monkeypatch):
    hook = hook_for(monkeypatch, max_request_mb=1)
    messages = _png_message(900_000)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        with pytest.raises(
            AimlParameterError, match=r"request body is 1\.1 MiB, over the 1 MiB cap .*'max_request_mb'"
        ):
            hook.chat_completion(messages)
        hook.chat_completion([{"role": "user", "content": "What is it?"}])
    assert chat.call_count == 1
    assert prompt_tokens_at_least(messages) == 1  # images count nothing in the lower bound: "What is it?" // 8


def test_a_bad_max_request_mb_is_a_configuration_error(monkeypatch):
    from airflow_provider_aiml.exceptions import AimlConfigurationError

    with pytest.raises(AimlConfigurationError, match="'max_request_mb' must be a number"):
        _ = hook_for(monkeypatch, max_request_mb="big").settings


def _deferring_operator(**kwargs: object) -> AimlChatCompletionOperator:
    return AimlChatCompletionOperator(task_id="chat", deferrable=True, aiml_conn_id="aiml_size", **kwargs)


def _png_message(raw_bytes: int) -> list[dict[str, object]]:
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(raw_bytes)).decode()
    parts = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": image}}]
    return [{"role": "user", "content": parts}]


def _context() -> dict[str, object]:
    ti = mock.Mock(dag_id="dag", task_id="chat", run_id="run", map_index=-1, try_number=1)
    return {"ti": ti}


def test_a_small_call_defers_and_a_large_one_runs_on_the_worker(monkeypatch, capsys):
    hook_for(monkeypatch)
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        with pytest.raises(TaskDeferred) as deferred:
            _deferring_operator(prompt="Summarize the notes.").execute(_context())
        assert chat.call_count == 0
        assert deferred.value.trigger.messages[0]["content"] == "Summarize the notes."

        large = _png_message(1_200_000)  # 1.5 MiB once encoded: over the 1 MiB a trigger may carry
        assert _deferring_operator(messages=large).execute(_context()) == "ok"
        assert chat.call_count == 1
    assert "Not deferring: the request is 1.5 MiB, over the 1.0 MiB a trigger may carry" in logged(capsys)


def test_a_refused_call_is_not_logged_as_sent(monkeypatch, capsys):
    hook_for(monkeypatch)
    operator = AimlChatCompletionOperator(
        task_id="chat", prompt="Hi", aiml_conn_id="aiml_size", extra_body={"stream": True}
    )
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        with pytest.raises(AimlParameterError, match="extra_body may not set 'stream'"):
            operator.execute(_context())
        assert chat.call_count == 0
    assert "Calling the AI/ML API" not in logged(capsys)
    operator.extra_body = None
    with respx.mock(assert_all_called=False) as api:
        api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        operator.execute(_context())
    assert "Calling the AI/ML API (client request id dag:chat:run:-1:1)" in logged(capsys)


def test_a_batch_record_too_long_is_refused_before_any_call(monkeypatch):
    from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

    hook_for(monkeypatch)
    operator = AimlBatchChatCompletionOperator(
        task_id="chat", inputs=["short", FIVE_MB_PROMPT], prompt="{{ record }}", aiml_conn_id="aiml_size"
    )
    with respx.mock(assert_all_called=False) as api:
        chat = api.post(CHAT_URL).mock(return_value=httpx.Response(200, json=ANSWER))
        api.get(CATALOG_URL).mock(return_value=catalog_entry(131_072))
        with pytest.raises(AimlParameterError, match=r"^record 1: The prompt is at least 625,000 tokens"):
            operator.execute(_context())
    assert chat.call_count == 0

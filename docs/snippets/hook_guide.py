"""The samples of the hook guide (docs/hook.md): one function per sample, the guide shows their bodies.

The test suite calls each function against the emulator (``aiml_default`` pointed at it), so every sample on
the page is code that runs. Run it by hand the same way: ``python docs/snippets/hook_guide.py`` with
``AIRFLOW_CONN_AIML_DEFAULT`` set.
"""

from __future__ import annotations

import asyncio
from typing import Any

# --8<-- [start:import]
from airflow_provider_aiml.hooks.aiml import AimlApiHook

# --8<-- [end:import]
from airflow_provider_aiml.models import ChatCompletionResult

MESSAGES = [{"role": "user", "content": "Name one use of Apache Airflow."}]


def one_try_only() -> AimlApiHook:
    # --8<-- [start:retry-policy]
    from airflow_provider_aiml.hooks.retry import RetryPolicy

    hook = AimlApiHook(retry_policy=RetryPolicy(max_retries=0))  # one try only, whatever the connection says
    # --8<-- [end:retry-policy]
    return hook


def ask() -> ChatCompletionResult:
    # --8<-- [start:chat-completion]
    hook = AimlApiHook()
    result = hook.chat_completion(
        [{"role": "user", "content": "Name one use of Apache Airflow."}],
        temperature=0.3,
        max_completion_tokens=1024,
    )
    print(result.content)
    print(result.reasoning)
    print(result.usage.total_tokens, result.usage.usd_spent)
    # --8<-- [end:chat-completion]
    return result


def embed_texts() -> list[list[float]]:
    # --8<-- [start:embeddings]
    hook = AimlApiHook()
    result = hook.embed(["a red kettle", "a blue kettle", "an oak desk"], dimensions=256)
    print(len(result.vectors), result.dimensions, result.usage.total_tokens, result.usage.usd_spent)
    # --8<-- [end:embeddings]
    return result.vectors


def chart_messages() -> list[dict[str, Any]]:
    # --8<-- [start:build-messages]
    from airflow_provider_aiml.messages import build_messages

    messages = build_messages(
        prompt="What does this chart show?",
        messages=None,
        system_prompt=None,
        images=["images/bar_chart.png"],  # read from disk and sent inline; a URL is passed as it is
        base_dirs=["/opt/airflow/dags"],  # where relative paths are looked up first, then the working directory
    )
    # --8<-- [end:build-messages]
    return messages


def request_id() -> str:
    # --8<-- [start:client-request-id]
    from airflow_provider_aiml.hooks.building import client_request_id

    cid = client_request_id("nightly_batch", "2026-03-14", 17)  # 'nightly_batch:2026-03-14:17'
    # --8<-- [end:client-request-id]
    return cid


def stream(hook: AimlApiHook, messages: list[dict[str, Any]]) -> ChatCompletionResult:
    # --8<-- [start:stream]
    from airflow_provider_aiml.models import StreamDelta

    for item in hook.stream_chat_completion(messages, max_completion_tokens=4096):
        if isinstance(item, StreamDelta):
            print(item.reasoning or item.content, end="", flush=True)
        else:
            result = item  # ChatCompletionResult
    # --8<-- [end:stream]
    return result


async def astream(hook: AimlApiHook, messages: list[dict[str, Any]]) -> ChatCompletionResult:
    # --8<-- [start:astream]
    async for item in hook.astream_chat_completion(messages):
        if isinstance(item, ChatCompletionResult):
            result = item
    # --8<-- [end:astream]
    return result


def model_ids(hook: AimlApiHook) -> list[str]:
    # --8<-- [start:list-models]
    models = hook.list_models()  # list of dicts, as the API returns them; list_models(timeout=10.0) waits less
    ids = [m["id"] for m in models]
    # --8<-- [end:list-models]
    return ids


def check(hook: AimlApiHook) -> tuple[bool, str]:
    # --8<-- [start:test-connection]
    ok, message = hook.test_connection()
    # --8<-- [end:test-connection]
    return ok, message


def ask_or_report(hook: AimlApiHook, messages: list[dict[str, Any]]) -> ChatCompletionResult | None:
    result = None
    # --8<-- [start:errors]
    from airflow_provider_aiml.exceptions import AimlRateLimitError

    try:
        result = hook.chat_completion(messages)
    except AimlRateLimitError as error:
        print(error.status_code, error.retry_after, error.client_request_id)
    # --8<-- [end:errors]
    return result


def answer_or_reason(hook: AimlApiHook, messages: list[dict[str, Any]]) -> str:
    # --8<-- [start:catch-all]
    from airflow_provider_aiml.exceptions import AimlApiError

    try:
        answer = hook.chat_completion(messages).content
    except AimlApiError as error:  # every failure the provider raises
        answer = f"(no answer: {error})"
    # --8<-- [end:catch-all]
    return answer


async def tour(messages: list[dict[str, Any]]) -> tuple[bool, str]:
    """The README's tour of the hook."""
    # --8<-- [start:tour]
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    hook = AimlApiHook(aiml_conn_id="aiml_default")
    result = hook.chat_completion([{"role": "user", "content": "Hello"}], temperature=0.3)
    print(result.content, result.reasoning, result.usage.total_tokens, result.usage.usd_spent)

    result = await hook.achat_completion(messages)  # the same, from async code
    for item in hook.stream_chat_completion(messages):  # StreamDelta pieces, then the ChatCompletionResult
        print(item)
    models = hook.list_models()
    ok, message = hook.test_connection()  # no billed call
    # --8<-- [end:tour]
    return ok, f"{message} ({len(models)} models)"


if __name__ == "__main__":
    hook = AimlApiHook()
    print(ask().content, chart_messages()[0]["role"], request_id(), stream(hook, MESSAGES).content)
    print(asyncio.run(astream(hook, MESSAGES)).content)
    print(model_ids(hook), check(hook), ask_or_report(one_try_only(), MESSAGES))

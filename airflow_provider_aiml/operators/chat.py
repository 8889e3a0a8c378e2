"""``AimlChatCompletionOperator``: one chat completion per task, answer and reasoning and usage to XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.hooks.building import client_request_id
from airflow_provider_aiml.messages import ImageSource, build_messages
from airflow_provider_aiml.models import GENERATION_PARAMETERS, ChatCompletionResult, StreamDelta
from airflow_provider_aiml.operators._stream_log import StreamLogWriter
from airflow_provider_aiml.output import decode_json, wants_json

if TYPE_CHECKING:
    from airflow.sdk import Context

OPERATOR_PARAMETERS = tuple(name for name in GENERATION_PARAMETERS if name not in ("prediction", "stream_options"))
"""Generation parameters the operator takes as keyword arguments (by their API names)."""


class AimlChatCompletionOperator(BaseOperator):
    """Ask an AI/ML API chat model one question and hand the answer to downstream tasks.

    Give exactly one of ``prompt`` (a user message; ``system_prompt`` is put before it and ``images`` are
    attached to it) or ``messages`` (a full OpenAI-style list, image parts included).

    XCom: ``return_value`` and ``content`` hold the answer text, ``reasoning`` the model's thinking ("" when it
    gives none), ``usage`` the token counts and cost, ``response`` the ids and finish reason, and ``parsed`` the
    decoded JSON when ``response_format`` asks for JSON.

    :param aiml_conn_id: connection of type ``aimlapi``.
    :param model: model id; the connection's default model when not set. Templated.
    :param prompt: the user's message, or the path of a ``.j2``/``.jinja2``/``.txt`` template file. Templated.
    :param system_prompt: instructions put before the prompt. Templated.
    :param images: image URLs or local file paths (sent inline as base64), or ``{"url"|"path", "detail"}``
        mappings, attached to the prompt. Templated.
    :param messages: a full message list instead of ``prompt``. Templated.
    :param response_format: ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}`` to
        get JSON (decoded into XCom ``parsed``). Templated.
    :param stream: stream the answer, logging reasoning and answer while they arrive.
    :param extra_body: model-specific keys merged into the request (``enable_thinking``, ``thinking_budget``,
        ``reasoning_effort``, ...). Templated.

    The generation parameters (``max_completion_tokens``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``,
    ``frequency_penalty``, ``presence_penalty``, ``seed``, ``repetition_penalty``, ``tools``, ``tool_choice``,
    ``parallel_tool_calls``) keep their API names and are checked against the documented ranges before the call.
    """

    template_fields: Sequence[str] = (
        "prompt",
        "system_prompt",
        "messages",
        "images",
        "model",
        "response_format",
        "extra_body",
    )
    template_ext: Sequence[str] = (".j2", ".jinja2", ".txt")
    template_fields_renderers = {
        "prompt": "md",
        "system_prompt": "md",
        "messages": "json",
        "response_format": "json",
        "extra_body": "json",
    }
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        aiml_conn_id: str = AimlApiHook.default_conn_name,
        model: str | None = None,
        prompt: str | None = None,
        system_prompt: str | None = None,
        images: ImageSource | Sequence[ImageSource] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        response_format: Mapping[str, Any] | None = None,
        stream: bool = False,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        repetition_penalty: float | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiml_conn_id = aiml_conn_id
        self.model = model
        self.prompt = prompt
        self.system_prompt = system_prompt
        self.images = images
        self.messages = messages
        self.response_format = response_format
        self.stream = stream
        self.extra_body = extra_body
        self.max_completion_tokens = max_completion_tokens
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.stop = stop
        self.frequency_penalty = frequency_penalty
        self.presence_penalty = presence_penalty
        self.seed = seed
        self.repetition_penalty = repetition_penalty
        self.tools = tools
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls

    @cached_property
    def hook(self) -> AimlApiHook:
        """The hook of this task (one HTTP client per task)."""
        return AimlApiHook(aiml_conn_id=self.aiml_conn_id)

    def generation_params(self) -> dict[str, Any]:
        """The generation parameters that are set, by their API names."""
        params = {name: getattr(self, name) for name in OPERATOR_PARAMETERS}
        params["response_format"] = self.response_format
        return {name: value for name, value in params.items() if value is not None}

    def build_messages(self) -> list[dict[str, Any]]:
        """The message list of this task, from ``prompt`` (+ system prompt and images) or ``messages``."""
        base_dirs = [self.dag.folder] if self.has_dag() else []
        return build_messages(
            prompt=self.prompt,
            messages=self.messages,
            system_prompt=self.system_prompt,
            images=self.images,
            base_dirs=base_dirs,
        )

    def execute(self, context: Context) -> str:
        messages = self.build_messages()
        request_id = task_client_request_id(context)
        self.log.info("Calling the AI/ML API (client request id %s)", request_id)
        call_args: dict[str, Any] = {
            "model": self.model or None,
            "client_request_id": request_id,
            "extra_body": self.extra_body,
            **self.generation_params(),
        }
        result = self._stream(messages, call_args) if self.stream else self.hook.chat_completion(messages, **call_args)
        self.push_result(context, result)
        return result.content

    def _stream(self, messages: list[dict[str, Any]], call_args: dict[str, Any]) -> ChatCompletionResult:
        writer = StreamLogWriter(self.log)
        for item in self.hook.stream_chat_completion(messages, **call_args):
            if isinstance(item, StreamDelta):
                writer.write(item)
            else:
                writer.flush()
                return item
        raise AssertionError("the stream ended without a result")  # pragma: no cover - the hook always yields one

    def push_result(self, context: Context, result: ChatCompletionResult) -> None:
        """Push ``content``, ``reasoning``, ``usage``, ``response`` (and ``parsed``) to XCom.

        The raw answer is pushed before the JSON is decoded, so a task that fails on bad JSON keeps it.
        """
        values = result_xcom_values(result)
        if self.do_xcom_push:
            ti = context["ti"]
            for key, value in values.items():
                ti.xcom_push(key=key, value=value)
        if wants_json(self.response_format):
            parsed = decode_json(result.content)
            if self.do_xcom_push:
                context["ti"].xcom_push(key="parsed", value=parsed)


def result_xcom_values(result: ChatCompletionResult) -> dict[str, Any]:
    """The XCom values of one answer, keyed as the operators push them."""
    return {
        "content": result.content,
        "reasoning": result.reasoning,
        "usage": result.usage.model_dump(),
        "response": result.response_summary(),
    }


def task_client_request_id(context: Context) -> str:
    """The ``X-Client-Request-Id`` of a task's calls: DAG, task, run, map index and try, in the API's alphabet."""
    ti = context["ti"]
    return client_request_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number)

"""``AimlChatCompletionOperator``: one chat completion per task, answer and reasoning and usage to XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import conf

from airflow_provider_aiml.operators._arguments import check_flag
from airflow_provider_aiml.operators._base import AimlBaseOperator, result_xcom_values, task_client_request_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.hooks.aiml import PreparedChat
    from airflow_provider_aiml.models import ChatCompletionResult, Usage


class AimlChatCompletionOperator(AimlBaseOperator):
    """Ask an AI/ML API chat model one question and hand the answer to downstream tasks.

    Give exactly one of ``prompt`` (a user message; ``system_prompt`` is put before it and ``images`` are
    attached to it) or ``messages`` (a full OpenAI-style list, image parts included).

    XCom: ``return_value`` and ``content`` hold the answer text, ``reasoning`` the model's thinking ("" when it
    gives none), ``usage`` the token counts and cost, ``response`` the ids and finish reason, and ``parsed`` the
    decoded JSON when ``response_format`` asks for JSON or ``output_type`` is set.

    :param prompt: the user's message, or the path of a ``.j2``/``.jinja2``/``.txt`` template file. Templated.
    :param messages: a full message list instead of ``prompt``. Templated.
    :param stream: stream the answer, logging reasoning and answer while they arrive.
    :param deferrable: release the worker slot while the model thinks: the call runs in the triggerer and the
        task resumes to push the same XCom values. When not given, ``[operators] default_deferrable`` decides, as
        read when the task runs.

    Every other argument (connection, model, images, response format, typed output, generation parameters,
    ``extra_body``) is described on :class:`~airflow_provider_aiml.operators._base.AimlBaseOperator`.
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
    resume_with_messages = False
    """Carry the whole conversation through the triggerer (for prompts a resumed task cannot rebuild)."""
    max_deferred_request_bytes = 1024 * 1024
    """A call whose body is larger runs on the worker instead of deferring: a trigger's arguments (the messages,
    inline images included) are written to the metadata database."""

    def __init__(
        self,
        *,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        stream: bool = False,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.messages = messages
        self.stream = stream
        self.deferrable = deferrable
        self.check_arguments()

    def check_arguments(self) -> None:
        super().check_arguments()
        check_flag(self, "stream")
        check_flag(self, "deferrable", optional=True)

    def defers(self) -> bool:
        """Whether the call goes to the triggerer: ``deferrable``, or when it is not given, ``[operators]
        default_deferrable`` as read now (when the task runs or resumes, not on every parse of the DAG file)."""
        if self.deferrable is None:
            return conf.getboolean("operators", "default_deferrable", fallback=False)
        return self.deferrable

    def build_messages(self) -> list[dict[str, Any]]:
        """The message list of this task, from ``prompt`` (+ system prompt and images) or ``messages``."""
        from airflow_provider_aiml.messages import build_messages

        return build_messages(
            prompt=self.prompt,
            messages=self.messages,
            system_prompt=self.system_prompt,
            images=self.images,
            media=self.media_options() if self.images else None,
        )

    def execute(self, context: Context) -> Any:
        from airflow_provider_aiml.models import Usage

        self.check_output_settings()
        messages = self.build_messages()
        request_id = task_client_request_id(context)
        try:
            result = self._ask(messages, request_id, attempt=0, spent=Usage())
            return self._conclude(context, messages, request_id, result, attempt=0, spent=Usage())
        finally:
            self.hook.close()

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the triggerer made the call: push the same XCom values as a direct call."""
        from airflow_provider_aiml.models import Usage
        from airflow_provider_aiml.triggers.aiml import result_from_event

        state = event.get("resume_state") or {}
        result = result_from_event(event)
        # The conversation is rebuilt from the task's own fields rather than carried through the metadata DB.
        messages = event.get("messages") or self.build_messages() + list(state.get("follow_up") or [])
        return self._conclude(context, messages, state["request_id"], result, state["attempt"], Usage(**state["spent"]))

    # --- the call and its outcome ---------------------------------------------------------------------------

    def _ask(
        self, messages: list[dict[str, Any]], request_id: str, *, attempt: int, spent: Usage
    ) -> ChatCompletionResult:
        """Check the call (nothing is sent, nor logged as sent, when it is wrong), then hand it to the triggerer
        when deferring, or make it here."""
        from airflow_provider_aiml.models import StreamDelta
        from airflow_provider_aiml.operators._stream_log import StreamLogWriter

        deferring = self.defers()
        call = self.hook.prepare_chat(
            messages,
            self.model or None,
            _attempt_id(request_id, attempt),
            self.extra_body,
            self.generation_params(),
            stream=self.stream and not deferring,
            fallback_models=self.fallback_models or (),
        )
        if attempt == 0:
            self._log_estimate(call)
        if deferring:
            size = len(call.payload or b"")
            if size <= self.max_deferred_request_bytes:
                self._defer(messages, request_id, attempt=attempt, spent=spent)
            self.log.warning(
                "Not deferring: the request is %.1f MiB, over the %.1f MiB a trigger may carry (its arguments are "
                "stored in the metadata database); calling the API from this worker instead",
                size / 2**20,
                self.max_deferred_request_bytes / 2**20,
            )
        self.log.info("Calling the AI/ML API (client request id %s)", call.client_request_id)
        if not call.body.get("stream"):
            return self.hook.send_chat(call)
        writer = StreamLogWriter(self.log)
        for item in self.hook.send_chat_stream(call):
            if isinstance(item, StreamDelta):
                writer.write(item)
            else:
                writer.flush()
                return item
        raise AssertionError("the stream ended without a result")  # pragma: no cover - the hook always yields one

    def _log_estimate(self, call: PreparedChat) -> None:
        """One line with the call's cost range, from its body and the catalog entry checking it already read."""
        from airflow_provider_aiml.batch.costs import call_estimate_line

        entry = self.hook.model_profile(call.model).entry
        self.log.info("%s", call_estimate_line("the call", call.model, call.body, entry))

    def _defer(self, messages: list[dict[str, Any]], request_id: str, *, attempt: int, spent: Usage) -> NoReturn:
        from airflow_provider_aiml.structured import TURNS_PER_REASK
        from airflow_provider_aiml.triggers.aiml import AimlChatTrigger

        if self.stream:
            self.log.warning("stream=True has no effect on a deferred call: the triggerer waits for the whole answer")
        self.log.info("Deferring the AI/ML API call %s to the triggerer", request_id)
        # The resumed task gets this back in the trigger's event (dag.test() drops defer kwargs). Only the
        # turns added by validation re-asks travel; the task rebuilds the rest from its fields.
        state: dict[str, Any] = {"request_id": request_id, "attempt": attempt, "spent": spent.model_dump()}
        if self.resume_with_messages:
            state["echo_messages"] = True  # the trigger sends its messages back; they are stored only once
        elif attempt:
            state["follow_up"] = messages[-TURNS_PER_REASK * attempt :]
        trigger = AimlChatTrigger(
            aiml_conn_id=self.aiml_conn_id,
            messages=messages,
            resume_state=state,
            model=self.model or None,
            client_request_id=_attempt_id(request_id, attempt),
            extra_body=self.extra_body,
            **self.generation_params(),
            **({"fallback_models": list(self.fallback_models)} if self.fallback_models else {}),
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def _conclude(
        self,
        context: Context,
        messages: list[dict[str, Any]],
        request_id: str,
        result: ChatCompletionResult,
        attempt: int,
        spent: Usage,
    ) -> Any:
        """Push the answer, then decode it; an invalid typed answer is re-asked while retries remain."""
        from airflow_provider_aiml.exceptions import AimlOutputParseError
        from airflow_provider_aiml.operators._spend import TaskSpend, push_spend
        from airflow_provider_aiml.structured import reask_messages

        total = spent + result.usage
        self.spend = TaskSpend(result.requested_model, (result.model,), total, calls=attempt + 1)
        self.push_result(context, result, total)
        if self.do_xcom_push:
            push_spend(context, self.spend, self.aiml_conn_id)
        try:
            parsed = self.parse_answer(result.content)
        except AimlOutputParseError as problem:
            if attempt >= self.max_validation_retries:
                raise
            self.log.warning(
                "Answer rejected (%s); asking again (validation retry %d of %d)",
                problem.message,
                attempt + 1,
                self.max_validation_retries,
            )
            follow_up = reask_messages(messages, result.content, problem)
            retried = self._ask(follow_up, request_id, attempt=attempt + 1, spent=total)
            return self._conclude(context, follow_up, request_id, retried, attempt + 1, total)
        if parsed is not None and self.do_xcom_push:
            context["ti"].xcom_push(key="parsed", value=parsed)
        return self.return_value(result, parsed)

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """What the task returns (XCom ``return_value``): the answer text."""
        return result.content

    def push_result(self, context: Context, result: ChatCompletionResult, total: Usage | None = None) -> None:
        """Push ``content``, ``reasoning``, ``usage`` and ``response`` (before any decoding can fail)."""
        if not self.do_xcom_push:
            return
        values = result_xcom_values(result)
        if total is not None:
            values["usage"] = total.model_dump()
        ti = context["ti"]
        for key, value in values.items():
            ti.xcom_push(key=key, value=value)


def _attempt_id(request_id: str, attempt: int) -> str:
    """The client request id of a validation re-ask: the task's id with ``:v<n>``, so each billed call is traced."""
    return f"{request_id}:v{attempt}" if attempt else request_id

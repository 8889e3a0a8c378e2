"""``AimlAgentOperator``: a model that calls Python tools (or a SQL toolset) until it can answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_aiml.operators._arguments import check_count, check_positive
from airflow_provider_aiml.operators._base import AimlBaseOperator, result_xcom_values, task_client_request_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.agents.loop import AgentRun
    from airflow_provider_aiml.agents.record import StepRecord
    from airflow_provider_aiml.agents.tools import Tool, Toolset
    from airflow_provider_aiml.catalog.entry import ModelEntry
    from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat
    from airflow_provider_aiml.models import ChatCompletionResult


class AimlAgentOperator(AimlBaseOperator):
    """Ask a model that may call tools: each step is a chat call; the tool calls it asks for run (concurrently
    when it asks for several) and their results go back to it, until it answers without tool calls.

    A tool is a Python function (sync or async) whose name, docstring and type hints describe it to the model,
    or a toolset such as :class:`~airflow_provider_aiml.agents.sql.SqlToolset`. The model's arguments are
    validated before a function runs; a validation error or an exception goes back to the model as the tool's
    answer, so it can correct itself, and counts against ``max_tool_errors``.

    With ``checkpoint_path`` every model step and tool result is recorded as it completes; a retried task
    replays them without calling the API or running any tool again and goes on from the first step not done.
    The record is keyed by a fingerprint of the model, the messages, the tools and the parameters: when any
    changed, nothing is replayed (the log says so).

    XCom: ``return_value`` and ``content`` hold the final answer, ``reasoning`` the final step's, ``usage`` the
    totals of every step, ``steps`` each step's tool calls (name, arguments, result preview, error, duration) and
    usage, ``response`` the final call's ids, and ``parsed`` the decoded answer with ``output_type``. A run that
    stops (``max_steps``, ``max_tool_errors``, a budget) still pushes ``steps`` and ``usage`` before failing.

    :param tools: functions, :class:`~airflow_provider_aiml.agents.tools.Tool` objects or toolsets.
    :param prompt: the user's message. Templated.
    :param messages: a full message list instead of ``prompt``. Templated.
    :param max_steps: model steps at most (default 10); reaching it with the model still calling tools fails.
    :param max_tool_errors: tool calls that may fail (bad arguments, an exception, an unknown name) before the
        task fails (default 3).
    :param max_tool_calls: tool calls at most, across all steps (and tries, with ``checkpoint_path``).
    :param max_total_tokens: tokens at most across all steps (and tries, with ``checkpoint_path``); no step
        starts past it.
    :param max_cost_usd: USD at most across all steps (and tries, with ``checkpoint_path``); no step starts past
        it. When the API reports no cost the run stops after its first step, as the budget cannot be enforced.
    :param max_parallel_tools: tool calls of one step run at once at most (default 4).
    :param checkpoint_path: a local path or storage URL (templated, e.g. with ``{{ run_id }}``) where the steps
        are recorded; without it a retried task starts the run afresh.
    :param preview_chars: how much of each tool's arguments and result ``steps`` and the log keep (default 300).

    Every other argument (connection, model, system prompt, images, output type, generation parameters,
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
        "checkpoint_path",
    )
    template_fields_renderers = {
        "prompt": "md",
        "system_prompt": "md",
        "messages": "json",
        "response_format": "json",
        "extra_body": "json",
    }
    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        tools: Sequence[Callable[..., Any] | Tool | Toolset],
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        max_steps: int = 10,
        max_tool_errors: int = 3,
        max_tool_calls: int | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_parallel_tools: int = 4,
        checkpoint_path: str | None = None,
        preview_chars: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tools = tools  # type: ignore[assignment]  # callables and toolsets here; specs are built in execute
        self.prompt = prompt
        self.messages = messages
        self.max_steps = max_steps
        self.max_tool_errors = max_tool_errors
        self.max_tool_calls = max_tool_calls
        self.max_total_tokens = max_total_tokens
        self.max_cost_usd = max_cost_usd
        self.max_parallel_tools = max_parallel_tools
        self.checkpoint_path = checkpoint_path
        self.preview_chars = preview_chars
        self.check_arguments()

    def check_arguments(self) -> None:
        super().check_arguments()
        for name in ("max_steps", "max_parallel_tools", "preview_chars"):
            check_positive(self, name, whole=True, optional=False)
        check_count(self, "max_tool_errors")
        for name in ("max_tool_calls", "max_total_tokens"):
            check_positive(self, name, whole=True, optional=True)
        check_positive(self, "max_cost_usd", whole=False, optional=True)

    def make_hook(self) -> AimlApiHook:
        """The task's hook, without a summary line per call: each step's log line says all of it. It logs the cost
        estimate of the first step it prepares (one not replayed from the record), before that step is sent."""
        return _agent_hook_class()(
            aiml_conn_id=self.aiml_conn_id, log_calls=False, on_first_call=self._log_first_step_estimate
        )

    def _log_first_step_estimate(self, call: PreparedChat, entry: ModelEntry | None) -> None:
        from airflow_provider_aiml.batch.costs import call_estimate_line

        what = "the first agent step (per step: each further one resends the conversation, tool results included)"
        self.log.info("%s", call_estimate_line(what, call.model, call.body, entry))

    def generation_params(self) -> dict[str, Any]:
        """The generation parameters, with the tools' specs as ``tools``."""
        params = super().generation_params()
        params.pop("tools", None)
        return params

    def execute(self, context: Context) -> Any:
        from airflow_provider_aiml.agents.loop import AgentLimits, AgentRun
        from airflow_provider_aiml.agents.record import StepRecord, run_fingerprint
        from airflow_provider_aiml.agents.tools import as_tools
        from airflow_provider_aiml.messages import build_messages
        from airflow_provider_aiml.operators.batch import run_coroutine

        self.check_output_settings()
        tools = as_tools(cast("Sequence[Callable[..., Any] | Tool | Toolset]", self.tools))
        messages = build_messages(
            prompt=self.prompt,
            messages=self.messages,
            system_prompt=self.system_prompt,
            images=self.images,
            media=self.media_options() if self.images else None,
        )
        params = {**self.generation_params(), "tools": [tool.spec() for tool in tools]}
        ti = context["ti"]
        task = f"{ti.dag_id}.{ti.task_id}[{ti.map_index}]"
        fingerprint = run_fingerprint(self.model, messages, params["tools"], params, self.extra_body, task=task)
        if not self.checkpoint_path and self.retries and self._has_budget():
            self.log.warning(
                "The budgets (max_tool_calls, max_total_tokens, max_cost_usd) count only this try: without a "
                "checkpoint_path a retry starts the run afresh, with its whole budget"
            )
        record = StepRecord(self.checkpoint_path or None, fingerprint, conn_id=self.storage_conn_id)
        record.open()
        self._log_record(record)
        limits = AgentLimits(
            max_steps=self.max_steps,
            max_tool_errors=self.max_tool_errors,
            max_tool_calls=self.max_tool_calls,
            max_total_tokens=self.max_total_tokens,
            max_cost_usd=self.max_cost_usd,
            max_parallel_tools=self.max_parallel_tools,
        )
        run = AgentRun(
            self.hook, tools, messages, self.model or None, params, self.extra_body,
            task_client_request_id(context), limits, record, self.log, self.fallback_models or (),
        )  # fmt: skip
        try:
            answer, parsed = run_coroutine(self._run(run))
        except Exception:
            self._push_outcome(context, run)  # a run that stopped or failed keeps what it got
            raise
        finally:
            record.close()
            self.hook.close()
        return self._conclude(context, run, answer, parsed)

    async def _run(self, run: AgentRun) -> tuple[ChatCompletionResult, Any]:
        """The loop, then the answer decoded; an invalid typed answer is re-asked as a further step while
        ``max_validation_retries`` allow (replayed like any step by a retried task)."""
        from airflow_provider_aiml.exceptions import AimlOutputParseError
        from airflow_provider_aiml.structured import reask_messages

        try:
            answer = await run.run()
            for retry in range(1, self.max_validation_retries + 1):
                try:
                    return answer, self.parse_answer(answer.content)
                except AimlOutputParseError as problem:
                    self.log.warning(
                        "Answer rejected (%s); asking again (validation retry %d of %d)",
                        problem.message,
                        retry,
                        self.max_validation_retries,
                    )
                    run.messages[:] = reask_messages(run.messages, answer.content, problem)
                    answer = await run.run()
            return answer, self.parse_answer(answer.content)
        finally:
            await self.hook.aclose()

    def _has_budget(self) -> bool:
        return any(limit is not None for limit in (self.max_tool_calls, self.max_total_tokens, self.max_cost_usd))

    def _log_record(self, record: StepRecord) -> None:
        if record.location is None:
            return
        if record.ignored:
            self.log.info(
                "The step record %s has %d entries of another run (the model, messages, tools or parameters "
                "changed since): they are not replayed",
                record.location,
                record.ignored,
            )
        if record.replayable:
            self.log.info("Replaying %d recorded entries from %s", record.replayable, record.location)

    def _push_outcome(self, context: Context, run: AgentRun) -> None:
        """Push ``steps`` and ``usage``, and the final answer when there is one (even a rejected one)."""
        self._push_steps(context, run)
        answer = run.final_answer
        if answer is not None and self.do_xcom_push:
            self._push_answer(context, run, answer)

    def _push_answer(self, context: Context, run: AgentRun, answer: ChatCompletionResult) -> None:
        values = result_xcom_values(answer)
        values["usage"] = run.usage.model_dump()
        for key, value in values.items():
            context["ti"].xcom_push(key=key, value=value)

    def _push_steps(self, context: Context, run: AgentRun) -> None:
        from airflow_provider_aiml.operators._spend import TaskSpend, push_spend

        if run.steps:
            models = tuple(dict.fromkeys(step.answer.model for step in run.steps))
            self.spend = TaskSpend(run.steps[0].answer.requested_model, models, run.usage, calls=len(run.steps))
        if not self.do_xcom_push:
            return
        ti = context["ti"]
        ti.xcom_push(key="steps", value=[step.as_xcom(self.preview_chars) for step in run.steps])
        ti.xcom_push(key="usage", value=run.usage.model_dump())
        push_spend(context, self.spend, self.aiml_conn_id)

    def _conclude(self, context: Context, run: AgentRun, answer: ChatCompletionResult, parsed: Any) -> Any:
        self._push_steps(context, run)
        if self.do_xcom_push:
            self._push_answer(context, run, answer)
        self.log.info(
            "Agent answered after %d steps and %d tool calls: tokens %d, cost %s",
            len(run.steps),
            run.tool_calls_made,
            run.usage.total_tokens,
            f"${run.usage.usd_spent:.6f}" if run.usage.usd_spent is not None else "unknown",
        )
        if parsed is not None and self.do_xcom_push:
            context["ti"].xcom_push(key="parsed", value=parsed)
        return self.return_value(answer, parsed)

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """What the task returns (XCom ``return_value``): the final answer text."""
        return result.content


@cache
def _agent_hook_class() -> type[AimlApiHook]:
    """The agent's hook class, made when a task first runs (a DAG file importing the operator loads no hook)."""
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    class AgentHook(AimlApiHook):
        """An ``AimlApiHook`` that hands the first call it prepares, and its catalog entry, to ``on_first_call``."""

        def __init__(
            self, *, on_first_call: Callable[[PreparedChat, ModelEntry | None], None] | None = None, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.on_first_call = on_first_call

        async def aprepare_chat(self, *args: Any, **kwargs: Any) -> PreparedChat:
            call = await super().aprepare_chat(*args, **kwargs)
            note, self.on_first_call = self.on_first_call, None
            if note is not None:
                note(call, (await self.amodel_profile(call.model)).entry)  # cached: preparing the call read it
            return call

    return AgentHook

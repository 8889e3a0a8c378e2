"""The agent loop: ask the model with the tools, run the calls it asks for, and repeat until it answers.

One model step is one chat call. When the answer asks for tools, they run concurrently (at most
``max_parallel_tools`` at once), their results are appended as ``tool`` messages in the order the model asked,
and the next step is asked. Budgets (tokens, cost, tool calls) are checked across every step, recorded ones
included, so a retried task cannot spend a budget twice. Each step and each tool result is written to the
:class:`~airflow_provider_aiml.agents.record.StepRecord` as it completes and replayed from it by a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_aiml.agents.threads import ToolThreads
from airflow_provider_aiml.exceptions import AimlAgentError
from airflow_provider_aiml.models import ChatCompletionResult, ToolCall, Usage

if TYPE_CHECKING:
    import logging

    from airflow_provider_aiml.agents.record import StepRecord
    from airflow_provider_aiml.agents.tools import Tool
    from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat

PREVIEW_CHARS = 300
"""How much of a tool's arguments and result the step report and the log show."""
INTERRUPTED = (
    "This tool call was started in an earlier try of the task that stopped before it returned. It was not run "
    "again, as it may already have taken effect; check before calling it again."
)


@dataclass(frozen=True)
class AgentLimits:
    """How far one run may go, across every step and every try of the task."""

    max_steps: int = 10
    max_tool_errors: int = 3
    max_tool_calls: int | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    max_parallel_tools: int = 4


@dataclass
class ToolCallReport:
    """One tool call of a step, as XCom ``steps`` shows it."""

    call_id: str
    name: str
    arguments: str
    result: str
    error: str | None
    duration_s: float
    replayed: bool = False

    def as_xcom(self, preview_chars: int) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "name": self.name,
            "arguments": _clip(self.arguments, preview_chars),
            "result": _clip(self.result, preview_chars),
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "replayed": self.replayed,
        }


@dataclass
class StepReport:
    """One model step: what the model said and the tools it called."""

    number: int
    answer: ChatCompletionResult
    replayed: bool
    tool_calls: list[ToolCallReport] = field(default_factory=list)

    def as_xcom(self, preview_chars: int) -> dict[str, Any]:
        return {
            "step": self.number,
            "model": self.answer.model,
            "content": _clip(self.answer.content, preview_chars),
            "finish_reason": self.answer.finish_reason,
            "usage": self.answer.usage.model_dump(),
            "latency_s": round(self.answer.latency_s, 3),
            "replayed": self.replayed,
            "tool_calls": [call.as_xcom(preview_chars) for call in self.tool_calls],
        }


@dataclass
class AgentRun:
    """One run of the loop; ``steps``, ``usage`` and ``messages`` stay readable when it fails."""

    hook: AimlApiHook
    tools: Sequence[Tool]
    messages: list[dict[str, Any]]
    model: str | None
    params: Mapping[str, Any]
    extra_body: Mapping[str, Any] | None
    request_id: str
    limits: AgentLimits
    record: StepRecord
    log: logging.Logger | Any
    fallback_models: Sequence[str] = ()
    steps: list[StepReport] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    tool_calls_made: int = 0
    tool_errors: int = 0
    _last_call: PreparedChat | None = field(default=None, repr=False)
    """The last step's request: the next one extends it, so each message is checked once."""

    async def run(self) -> ChatCompletionResult:
        """Loop until the model answers without tool calls; returns that answer.

        Called again after appending to ``messages`` (a re-ask), it goes on from the next step number, within
        the same ``max_steps``."""
        by_name = {tool.name: tool for tool in self.tools}
        threads = ToolThreads(self.limits.max_parallel_tools)
        try:
            return await self._loop(by_name, threads)
        finally:
            threads.close()

    async def _loop(self, by_name: Mapping[str, Tool], threads: ToolThreads) -> ChatCompletionResult:
        for number in range(len(self.steps) + 1, self.limits.max_steps + 1):
            self._check_budgets(number)
            answer, replayed = await self._model_step(number)
            answer = _with_call_ids(answer, number)
            step = StepReport(number, answer, replayed)
            self.steps.append(step)
            self.usage = self.usage + answer.usage
            self._log_step(step)
            if not answer.tool_calls:
                return answer
            self._check_tool_calls(len(answer.tool_calls))
            self.messages.append(_assistant_turn(answer))
            step.tool_calls = await self._run_tools(number, answer.tool_calls, by_name, threads)
            for call in step.tool_calls:
                self.messages.append({"role": "tool", "tool_call_id": call.call_id, "content": call.result})
            self._check_tool_errors(step)
        last = self.steps[-1].tool_calls if self.steps else []
        doing = (
            f"still calling tools (last step called {', '.join(call.name for call in last)})"
            if last
            else ("answers still rejected")
        )
        raise AimlAgentError(
            f"The agent reached max_steps={self.limits.max_steps} with the model {doing}; raise max_steps, or "
            "change the prompt or tools so it can answer"
        )

    @property
    def final_answer(self) -> ChatCompletionResult | None:
        """The last step's answer when it called no tools (an answer, accepted or not), else ``None``."""
        if self.steps and not self.steps[-1].answer.tool_calls:
            return self.steps[-1].answer
        return None

    # --- model steps ------------------------------------------------------------------------------------------

    async def _model_step(self, number: int) -> tuple[ChatCompletionResult, bool]:
        recorded = self.record.model_step(number)
        if recorded is not None:
            return ChatCompletionResult.model_validate(recorded["answer"]), True
        request_id = f"{self.request_id}:s{number}"
        if self._last_call is None:
            call = await self.hook.aprepare_chat(
                self.messages,
                self.model,
                request_id,
                self.extra_body,
                self.params,
                stream=False,
                fallback_models=self.fallback_models,
            )
        else:
            call = await self.hook.aextend_chat(self._last_call, self.messages, request_id)
        self._last_call = call
        answer = await self.hook.asend_chat(call)
        self.record.add_model_step(number, answer)
        return answer, False

    def _check_budgets(self, number: int) -> None:
        limits, usage = self.limits, self.usage
        if limits.max_total_tokens is not None and usage.total_tokens >= limits.max_total_tokens:
            raise AimlAgentError(
                f"The agent stopped before step {number}: {usage.total_tokens:,} tokens used, max_total_tokens="
                f"{limits.max_total_tokens:,} (earlier tries of the task included)"
            )
        if limits.max_cost_usd is not None and number > 1 and usage.usd_spent is None:
            raise AimlAgentError(
                f"The agent stopped before step {number}: max_cost_usd={limits.max_cost_usd} is set but the API "
                "reported no cost for the steps so far, so the budget cannot be enforced"
            )
        if limits.max_cost_usd is not None and (usage.usd_spent or 0.0) >= limits.max_cost_usd:
            raise AimlAgentError(
                f"The agent stopped before step {number}: ${usage.usd_spent or 0.0:.6f} spent, max_cost_usd="
                f"{limits.max_cost_usd} (earlier tries of the task included)"
            )

    # --- tools ------------------------------------------------------------------------------------------------

    def _check_tool_calls(self, asked: int) -> None:
        limit = self.limits.max_tool_calls
        if limit is not None and self.tool_calls_made + asked > limit:
            raise AimlAgentError(
                f"The model asked for {asked} more tool call{'s' if asked != 1 else ''} after "
                f"{self.tool_calls_made}, over max_tool_calls={limit}"
            )
        self.tool_calls_made += asked

    def _check_tool_errors(self, step: StepReport) -> None:
        failed = [call for call in step.tool_calls if call.error is not None]
        self.tool_errors += len(failed)
        if failed and self.tool_errors > self.limits.max_tool_errors:
            last = failed[-1]
            raise AimlAgentError(
                f"{self.tool_errors} tool calls failed, over max_tool_errors={self.limits.max_tool_errors}; the "
                f"last: {last.name}: {_clip(last.error or '', PREVIEW_CHARS)}"
            )

    async def _run_tools(
        self, number: int, calls: Sequence[ToolCall], by_name: Mapping[str, Tool], threads: ToolThreads
    ) -> list[ToolCallReport]:
        if len(calls) == 1:  # the common step: nothing else runs meanwhile, no semaphore or gather to go through
            report = await self._run_tool(number, calls[0], by_name, threads, exclusive=True)
            self._log_tool(report)
            return [report]
        slots = asyncio.Semaphore(self.limits.max_parallel_tools)

        async def one(call: ToolCall) -> ToolCallReport:
            async with slots:
                report = await self._run_tool(number, call, by_name, threads)
            self._log_tool(report)
            return report

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def _run_tool(
        self, number: int, call: ToolCall, by_name: Mapping[str, Tool], threads: ToolThreads, exclusive: bool = False
    ) -> ToolCallReport:
        name, arguments = call.function.name, call.function.arguments
        recorded = self.record.tool_result(number, call.id)
        if recorded is not None:
            outcome = recorded["outcome"]
            return ToolCallReport(call.id, name, arguments, outcome["content"], outcome["error"], 0.0, replayed=True)
        tool = by_name.get(name)
        if tool is None:
            known = ", ".join(sorted(by_name)) or "none"
            message = f"There is no tool named {name!r}; the tools are: {known}."
            report = ToolCallReport(call.id, name, arguments, message, f"unknown tool {name!r}", 0.0)
        elif self.record.tool_started(number, call.id) and tool.side_effects:
            report = ToolCallReport(call.id, name, arguments, INTERRUPTED, "interrupted in an earlier try", 0.0)
        else:
            self.record.add_tool_start(number, call.id, name)
            outcome = await tool.run(arguments, threads, exclusive=exclusive)
            report = ToolCallReport(call.id, name, arguments, outcome.content, outcome.error, outcome.duration_s)
        self.record.add_tool_result(number, call.id, {"content": report.result, "error": report.error})
        return report

    # --- logs -------------------------------------------------------------------------------------------------

    def _log_step(self, step: StepReport) -> None:
        """The step's one line, which is also its call's summary (the operator's hook logs none of its own)."""
        answer, usage = step.answer, step.answer.usage
        asked = ", ".join(call.function.name for call in answer.tool_calls)
        self.log.info(
            "Agent step %d%s: %s -> %s %s; finish=%s, tokens %d (reasoning %d), cost %s, %.2fs, client request id %s",
            step.number,
            " (replayed from the record)" if step.replayed else "",
            answer.requested_model,
            answer.model,
            f"calls {asked}" if asked else f"answered ({len(answer.content):,} characters)",
            answer.finish_reason,
            usage.total_tokens,
            usage.reasoning_tokens,
            f"${usage.usd_spent:.6f}" if usage.usd_spent is not None else "unknown",
            answer.latency_s,
            answer.client_request_id,
        )
        if answer.finish_reason == "length" and not step.replayed:
            self.log.warning(
                "Step %d was cut off at the token limit: raise max_completion_tokens (it includes the reasoning "
                "tokens of a thinking model).",
                step.number,
            )

    def _log_tool(self, report: ToolCallReport) -> None:
        outcome = f"failed: {_clip(report.error, 120)}" if report.error else f"{len(report.result):,} characters"
        self.log.info(
            "Tool %s(%s)%s: %s, %.2fs",
            report.name,
            _clip(report.arguments, 120),
            " replayed" if report.replayed else "",
            outcome,
            report.duration_s,
        )


def _assistant_turn(answer: ChatCompletionResult) -> dict[str, Any]:
    """The model's tool-calling answer as the assistant message the next step sends back."""
    return {
        "role": "assistant",
        "content": answer.content or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in answer.tool_calls
        ],
    }


def _with_call_ids(answer: ChatCompletionResult, number: int) -> ChatCompletionResult:
    """The answer with its own id on every tool call: a few models send none, or one id twice, and the record
    and the tool messages need one per call. The ids given are the same on every try, so a replay matches."""
    ids = [call.id for call in answer.tool_calls]
    if all(ids) and len(set(ids)) == len(ids):
        return answer
    seen: set[str] = set()
    calls = []
    for i, call in enumerate(answer.tool_calls):
        if not call.id or call.id in seen:
            call = call.model_copy(update={"id": f"s{number}_{i}"})
        seen.add(call.id)
        calls.append(call)
    return answer.model_copy(update={"tool_calls": calls})


def _clip(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"

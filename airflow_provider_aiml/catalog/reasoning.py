"""One reasoning switch for every family: ``reasoning_effort`` and ``reasoning_budget_tokens``, turned into the
wire keys the chosen model takes.

The families differ (``../shared`` API notes, section 2): ``reasoning_effort``; ``reasoning: {effort |
max_tokens}``; ``enable_thinking`` + ``thinking_budget``; Anthropic's ``thinking: {type: "enabled",
budget_tokens}``; GLM's ``thinking: {type}`` on/off. Each switch is turned into a key only where the model's
schema has one that means exactly that; anything else is a clear error, never a silent approximation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_aiml.catalog.schema import ParameterRule
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.parameters import REASONING_EFFORTS

EFFORTS = REASONING_EFFORTS
SWITCHES = ("reasoning_effort", "reasoning_budget_tokens")
"""The provider's own arguments: never sent as they are (``reasoning_effort`` may become the wire key of the
same name, for the families that take it)."""

EffortKey = Literal["reasoning_effort", "reasoning.effort"]
BudgetKey = Literal["reasoning.max_tokens", "thinking_budget", "thinking.budget_tokens"]
ToggleKey = Literal["enable_thinking", "thinking.type"]


@dataclass(frozen=True)
class ReasoningControl:
    """The reasoning keys one model takes."""

    effort_key: EffortKey | None = None
    efforts: tuple[str, ...] = EFFORTS
    budget_key: BudgetKey | None = None
    budget_min: int = 1
    toggle_key: ToggleKey | None = None

    def describe(self) -> str:
        """What the model takes, in words, for errors and the parameters page."""
        parts = []
        if self.effort_key:
            parts.append(f"an effort ({'|'.join(self.efforts)}) as {self.effort_key}")
        if self.budget_key:
            parts.append(f"a token budget (>= {self.budget_min}) as {self.budget_key}")
        if self.toggle_key and not parts:
            parts.append(f"only thinking on/off, as {self.toggle_key}")
        return "; ".join(parts) or "no reasoning control"


def control_from(parameters: Mapping[str, ParameterRule]) -> ReasoningControl | None:
    """The reasoning control a schema's parameters describe, or ``None`` when it has none."""
    effort_key: EffortKey | None = None
    budget_key: BudgetKey | None = None
    toggle_key: ToggleKey | None = None
    efforts: tuple[str, ...] = EFFORTS
    budget_min = 1
    if "reasoning_effort" in parameters:
        effort_key = "reasoning_effort"
        efforts = _efforts(parameters["reasoning_effort"])
    reasoning = parameters.get("reasoning")
    if reasoning is not None:
        if effort_key is None and "effort" in reasoning.fields:
            effort_key, efforts = "reasoning.effort", _efforts(reasoning.fields["effort"])
        if "max_tokens" in reasoning.fields:
            budget_key, budget_min = "reasoning.max_tokens", _minimum(reasoning.fields["max_tokens"])
    if "enable_thinking" in parameters:
        toggle_key = "enable_thinking"
        if "thinking_budget" in parameters and budget_key is None:
            budget_key, budget_min = "thinking_budget", _minimum(parameters["thinking_budget"])
    thinking = parameters.get("thinking")
    if thinking is not None:
        if "budget_tokens" in thinking.fields and budget_key is None:
            budget_key, budget_min = "thinking.budget_tokens", _minimum(thinking.fields["budget_tokens"])
        elif "type" in thinking.fields and toggle_key is None:
            toggle_key = "thinking.type"
    if effort_key is None and budget_key is None and toggle_key is None:
        return None
    return ReasoningControl(effort_key, efforts, budget_key, budget_min, toggle_key)


def _efforts(rule: ParameterRule) -> tuple[str, ...]:
    values = tuple(v for v in rule.enum or () if isinstance(v, str))
    return values or EFFORTS


def _minimum(rule: ParameterRule) -> int:
    bound = rule.range.ge if rule.range is not None and rule.range.ge is not None else 1
    return max(1, int(bound))


KNOWN_FAMILIES: tuple[tuple[str, ReasoningControl], ...] = (
    ("openai/gpt-5*", ReasoningControl(effort_key="reasoning_effort")),
    ("openai/o[134]*", ReasoningControl(effort_key="reasoning_effort")),
    ("openai/gpt-oss-*", ReasoningControl(effort_key="reasoning_effort")),
    ("anthropic/claude-*", ReasoningControl(budget_key="thinking.budget_tokens", budget_min=1024)),
    ("x-ai/grok-4*", ReasoningControl("reasoning.effort", EFFORTS, "reasoning.max_tokens")),
    ("alibaba/qwen3-32b", ReasoningControl(budget_key="thinking_budget", toggle_key="enable_thinking")),
    ("zhipu/glm-4.5*", ReasoningControl(toggle_key="thinking.type")),
)
"""Used only when a model's schema cannot be read (a catalog outage): the documented shapes of well-known
families, matched on the model id. A model matching none gets a clear error for a reasoning switch."""


STREAMED_THINKING_ONLY: tuple[str, ...] = ("alibaba/qwen3-32b", "qwen3-32b")
"""Models that think only on streamed calls: their page says ``enable_thinking`` "must be set to false for
non-streaming calls" (``../shared`` API notes, section 2)."""


def thinks_only_streamed(model: str) -> bool:
    """Whether ``model`` (its id, or its alias when the catalog could not be read) refuses ``enable_thinking:
    true`` on a non-streamed call."""
    return model.lower() in STREAMED_THINKING_ONLY


def known_family(model: str) -> ReasoningControl | None:
    """The documented reasoning control of ``model``'s family, when the id matches a known one."""
    lowered = model.lower()
    return next((control for pattern, control in KNOWN_FAMILIES if fnmatch.fnmatchcase(lowered, pattern)), None)


def reasoning_keys(
    model: str,
    control: ReasoningControl | None,
    effort: Any = None,
    budget_tokens: Any = None,
    max_tokens: Any = None,
) -> dict[str, Any]:
    """The wire keys for the switches that are set (``{}`` when neither is); raises naming the model and what it
    takes when it has no such control."""
    if effort is None and budget_tokens is None:
        return {}
    if effort is not None and effort not in EFFORTS:
        raise AimlParameterError(f"'reasoning_effort' must be one of {', '.join(map(repr, EFFORTS))}, got {effort!r}")
    if budget_tokens is not None and (
        isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 1
    ):
        raise AimlParameterError(f"'reasoning_budget_tokens' must be a whole number >= 1, got {budget_tokens!r}")
    if control is None:
        raise AimlParameterError(
            f"{model!r} takes no reasoning parameter (its schema has none): remove reasoning_effort and "
            "reasoning_budget_tokens, or put the model's own key in extra_body"
        )
    keys: dict[str, Any] = {}
    if effort is not None:
        keys.update(_effort_keys(model, control, effort))
    if budget_tokens is not None:
        _merge(keys, _budget_keys(model, control, budget_tokens, max_tokens))
    if isinstance(keys.get("reasoning"), dict) and {"effort", "max_tokens"} <= keys["reasoning"].keys():
        raise AimlParameterError(
            f"{model!r} takes reasoning.effort or reasoning.max_tokens, not both: set reasoning_effort or "
            "reasoning_budget_tokens"
        )
    return keys


def _effort_keys(model: str, control: ReasoningControl, effort: str) -> dict[str, Any]:
    if control.effort_key is None:
        hint = "set reasoning_budget_tokens instead" if control.budget_key else _toggle_hint(control)
        raise AimlParameterError(f"{model!r} has no reasoning effort setting (it takes {control.describe()}): {hint}")
    if effort not in control.efforts:
        raise AimlParameterError(
            f"{model!r} takes reasoning_effort {', '.join(map(repr, control.efforts))}, not {effort!r}"
        )
    if control.effort_key == "reasoning_effort":
        return {"reasoning_effort": effort}
    return {"reasoning": {"effort": effort}}


def _budget_keys(model: str, control: ReasoningControl, budget: int, max_tokens: Any) -> dict[str, Any]:
    if control.budget_key is None:
        hint = "set reasoning_effort instead" if control.effort_key else _toggle_hint(control)
        raise AimlParameterError(f"{model!r} has no reasoning token budget (it takes {control.describe()}): {hint}")
    if budget < control.budget_min:
        raise AimlParameterError(
            f"{model!r} takes a reasoning_budget_tokens of at least {control.budget_min:,}, got {budget:,}"
        )
    if control.budget_key == "reasoning.max_tokens":
        return {"reasoning": {"max_tokens": budget}}
    if control.budget_key == "thinking_budget":
        return {"enable_thinking": True, "thinking_budget": budget}
    if isinstance(max_tokens, int) and budget >= max_tokens:
        raise AimlParameterError(
            f"{model!r} needs reasoning_budget_tokens ({budget:,}) below max_tokens ({max_tokens:,}): the thinking "
            "is part of the answer's tokens"
        )
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}


def _toggle_hint(control: ReasoningControl) -> str:
    if control.toggle_key == "thinking.type":
        return "turn thinking on with extra_body={'thinking': {'type': 'enabled'}}"
    if control.toggle_key == "enable_thinking":
        return "turn thinking on with extra_body={'enable_thinking': True}"
    return "use extra_body for the model's own keys"


def _merge(keys: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(keys.get(key), dict):
            keys[key] = {**keys[key], **value}
        else:
            keys[key] = value

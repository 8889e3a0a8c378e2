"""The documented ranges of the seed model's numeric generation parameters, in plain Python.

The wire models (:class:`~airflow_provider_aiml.models.GenerationParams`) build their constraints from this
table, and the operators check literal arguments with it while a DAG file is parsed, which must not pay for
importing and building the pydantic models. One table, so the two checks cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NumericRange:
    """A parameter's type (``int``: whole numbers only) and bounds; ``None`` means unbounded on that side."""

    kind: type[int] | type[float]
    ge: float | None = None
    le: float | None = None
    gt: float | None = None

    def describe(self) -> str:
        """The range in words, e.g. "a number from 0 to 2" or "a whole number >= 1"."""
        noun = "a whole number" if self.kind is int else "a number"
        if self.ge is not None and self.le is not None:
            return f"{noun} from {_number(self.ge)} to {_number(self.le)}"
        bounds = [
            f">= {_number(self.ge)}" if self.ge is not None else "",
            f"> {_number(self.gt)}" if self.gt is not None else "",
        ]
        bounds.append(f"<= {_number(self.le)}" if self.le is not None else "")
        return " ".join([noun, *filter(None, bounds)])

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has the right type (``True`` is not a number, ``10.5`` not a whole one) and range."""
        if isinstance(value, bool) or not isinstance(value, int if self.kind is int else int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (
            (self.ge is None or value >= self.ge)
            and (self.le is None or value <= self.le)
            and (self.gt is None or value > self.gt)
        )


NUMERIC_PARAMETERS: dict[str, NumericRange] = {
    "max_completion_tokens": NumericRange(int, ge=1),
    "max_tokens": NumericRange(int, ge=1),
    "temperature": NumericRange(float, ge=0, le=2),
    "top_p": NumericRange(float, ge=0.01, le=1),
    "frequency_penalty": NumericRange(float, ge=-2, le=2),
    "presence_penalty": NumericRange(float, ge=-2, le=2),
    "seed": NumericRange(int, ge=1),
    "repetition_penalty": NumericRange(float, gt=0),
}
"""Numeric generation parameters by API name, with the seed model's documented ranges."""

STOP_SEQUENCES_MAX = 4
REASONING_EFFORTS = ("low", "medium", "high")
"""The values of the provider's reasoning switch ``reasoning_effort``, for every model family."""


def literal_parameter_problem(name: str, value: Any) -> str | None:
    """What is wrong with a generation parameter given as a literal value, or ``None`` when it is fine (or is
    checked only when the task runs: tools, formats and tool choice are validated against the full schema)."""
    if value is None:
        return None
    numeric = NUMERIC_PARAMETERS.get(name)
    if numeric is not None and not numeric.accepts(value):
        return f"{name!r} must be {numeric.describe()}, got {value!r}"
    if name == "reasoning_effort" and value not in REASONING_EFFORTS:
        return f"{name!r} must be one of {', '.join(map(repr, REASONING_EFFORTS))}, got {value!r}"
    if name == "reasoning_budget_tokens" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        return f"{name!r} must be a whole number >= 1, got {value!r}"
    if name == "parallel_tool_calls" and not isinstance(value, bool):
        return f"{name!r} must be True or False, got {value!r}"
    if name == "stop" and not _is_stop(value):
        return f"{name!r} must be a string or a list of 1 to {STOP_SEQUENCES_MAX} strings, got {value!r}"
    return None


def _is_stop(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return (
        isinstance(value, list | tuple)
        and 1 <= len(value) <= STOP_SEQUENCES_MAX
        and all(isinstance(item, str) for item in value)
    )


def _number(value: float | None) -> str:
    return f"{value:g}"

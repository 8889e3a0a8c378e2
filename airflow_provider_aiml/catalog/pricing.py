"""Prices from the catalog, and cost estimates made with them before anything is sent.

A catalog price is ``{name, measure, price, per}``: ``price`` USD for ``per`` units. The ``per`` differs across
models (``1000000`` for most token rates, ``1000`` for some), so every price is turned into USD per single
token here, once, and nothing else reads ``price`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aiml.models import format_usd, round_usd

_MEASURES = {"input": "input", "prompt": "input", "output": "output", "completion": "output"}
_CACHED_MEASURES = frozenset({"cached_input", "cache_read", "cached"})


@dataclass(frozen=True)
class TokenPricing:
    """USD per token of prompt (``input``) and of completion (``output``, thinking included)."""

    input: float
    output: float
    cached_input: float | None = None

    @classmethod
    def from_catalog(cls, pricing: Any) -> TokenPricing | None:
        """The token rates of a catalog ``pricing`` block, or ``None`` when it quotes none per token (a
        ``variants`` or ``variable`` price, another unit, or a malformed block)."""
        if not isinstance(pricing, Mapping) or pricing.get("kind") != "fixed":
            return None
        if str(pricing.get("currency") or "USD").upper() != "USD":
            return None
        units = pricing.get("units")
        if not isinstance(units, list):
            return None
        rates: dict[str, float] = {}
        for unit in units:
            rate = _per_token(unit)
            if rate is None:
                continue
            measure = str(unit.get("measure") or "")
            if measure in _CACHED_MEASURES:
                rates.setdefault("cached_input", rate)
            elif measure in _MEASURES:
                rates.setdefault(_MEASURES[measure], rate)
        if "input" not in rates or "output" not in rates:
            return None
        return cls(rates["input"], rates["output"], rates.get("cached_input"))

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for that many tokens (cached prompt tokens counted at the full prompt rate: an upper bound)."""
        return prompt_tokens * self.input + completion_tokens * self.output

    def describe(self) -> str:
        """E.g. ``$1.25 in / $10 out per 1M tokens``."""
        return f"${self.input * 1e6:g} in / ${self.output * 1e6:g} out per 1M tokens"


def _per_token(unit: Any) -> float | None:
    if not isinstance(unit, Mapping) or unit.get("name") != "token":
        return None
    price, per = unit.get("price"), unit.get("per")  # a price without its ``per`` means nothing
    if not isinstance(price, int | float) or not isinstance(per, int | float) or isinstance(price, bool):
        return None
    if isinstance(per, bool) or per <= 0 or price < 0:
        return None
    return float(price) / float(per)


@dataclass(frozen=True)
class CostEstimate:
    """What some calls will cost, as a range: ``low_usd`` is certain to be spent (the prompt's lower-bound tokens
    and one completion token each), ``high_usd`` is the most (upper-bound prompt and every completion token
    allowed), ``None`` when no bound is known (no price, or no completion limit)."""

    calls: int = 0
    prompt_tokens_low: int = 0
    prompt_tokens_high: int = 0
    completion_tokens_high: int | None = 0
    low_usd: float | None = 0.0
    high_usd: float | None = 0.0

    def __add__(self, other: CostEstimate) -> CostEstimate:
        def add(a: float | int | None, b: float | int | None) -> Any:
            return None if a is None or b is None else a + b

        low, high = add(self.low_usd, other.low_usd), add(self.high_usd, other.high_usd)
        return CostEstimate(
            calls=self.calls + other.calls,
            prompt_tokens_low=self.prompt_tokens_low + other.prompt_tokens_low,
            prompt_tokens_high=self.prompt_tokens_high + other.prompt_tokens_high,
            completion_tokens_high=add(self.completion_tokens_high, other.completion_tokens_high),
            low_usd=None if low is None else round_usd(low),
            high_usd=None if high is None else round_usd(high),
        )

    def describe(self) -> str:
        """E.g. ``$0.0012 to $0.0450 for 3 calls (prompt 120-480 tokens, completion up to 6,000)``."""
        if self.low_usd is None:
            cost = "unknown cost (no catalog price)"
        elif self.high_usd is None:
            cost = f"at least {format_usd(self.low_usd)} (no completion limit set)"
        else:
            cost = f"{format_usd(self.low_usd)} to {format_usd(self.high_usd)}"
        completion = (
            f", completion up to {self.completion_tokens_high:,}" if self.completion_tokens_high is not None else ""
        )
        return (
            f"{cost} for {self.calls:,} call{'' if self.calls == 1 else 's'} (prompt "
            f"{self.prompt_tokens_low:,}-{self.prompt_tokens_high:,} tokens{completion})"
        )

    def summary(self) -> dict[str, Any]:
        """The estimate as a plain dict (XCom, logs)."""
        return {
            "calls": self.calls,
            "prompt_tokens_low": self.prompt_tokens_low,
            "prompt_tokens_high": self.prompt_tokens_high,
            "completion_tokens_high": self.completion_tokens_high,
            "low_usd": self.low_usd,
            "high_usd": self.high_usd,
        }

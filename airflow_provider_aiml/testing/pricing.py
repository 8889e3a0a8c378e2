"""What a request costs: token rates read from a catalog ``pricing`` block, turned into whole credits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CREDITS_PER_USD = 2_000_000
"""The documented rate: $1 = 2,000,000 credits."""
TOKENS_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class TokenRates:
    """USD per single prompt (``input``) and completion (``output``) token."""

    input: float
    output: float

    @classmethod
    def from_pricing(cls, pricing: Any) -> TokenRates | None:
        """The token rates of a ``{kind: "fixed", units: [...]}`` block (each ``price`` read with its ``per``), or
        ``None`` when it quotes no input and output token price."""
        if not isinstance(pricing, Mapping) or pricing.get("kind") != "fixed":
            return None
        rates: dict[str, float] = {}
        for unit in pricing.get("units") or ():
            if not isinstance(unit, Mapping) or unit.get("name") != "token":
                continue
            price, per = unit.get("price"), unit.get("per", 1)
            if isinstance(price, int | float) and _is_number(price) and _is_number(per) and per > 0:
                rates.setdefault(str(unit.get("measure")), float(price) / float(per))
        if "input" not in rates:
            return None
        return cls(input=rates["input"], output=rates.get("output", 0.0))

    def credits(self, input_tokens: int, output_tokens: int) -> int:
        """Whole credits for that many tokens, rounded up."""
        return credits_for(input_tokens * self.input + output_tokens * self.output)


def credits_for(usd: float) -> int:
    """Whole credits of a USD amount, rounded up (at least one for any paid call)."""
    return math.ceil(round(usd * CREDITS_PER_USD, 6)) if usd > 0 else 0


def credits_to_usd(credits: int) -> float:
    """Convert credits to USD at the documented rate."""
    return round(credits / CREDITS_PER_USD, 9)


def token_pricing(
    input_usd: float, output_usd: float | None = None, *, per: int = TOKENS_PER_MILLION, cached_usd: float | None = None
) -> dict[str, Any]:
    """A ``fixed`` catalog pricing block: ``input_usd`` / ``output_usd`` per ``per`` tokens."""
    units: list[dict[str, Any]] = [{"name": "token", "measure": "input", "price": input_usd, "per": per}]
    if cached_usd is not None:
        units.append({"name": "token", "measure": "cached_input", "price": cached_usd, "per": per})
    if output_usd is not None:
        units.append({"name": "token", "measure": "output", "price": output_usd, "per": per})
    return {"kind": "fixed", "currency": "USD", "units": units}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""What calls will cost, estimated before they are sent, from the catalog's price of the model.

:mod:`airflow_provider_aiml.catalog.estimate` gives the range of one call (its prompt's tokens between a lower and
an upper bound, one completion token at least and the request's completion limit at most). This module adds
them up over a batch's records, bounds the file records whose attachment is read only when its turn comes, and
writes the one log line each operator shows before its first call.

A file record's prompt is only its text until the file is read: that text gives its *low* estimate (so the low
estimate of a batch stays certain). Its *high* estimate takes the prompt to be as long as the model's context
length, the most a billed call can send; without a context length in the catalog it has no upper bound. A dry
run reads every file, so its estimate counts the pages and images too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_aiml.catalog.entry import ModelEntry
from airflow_provider_aiml.catalog.estimate import estimate_call, estimate_calls
from airflow_provider_aiml.catalog.pricing import CostEstimate, TokenPricing
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.models import format_usd, round_usd


def price_text(model: str, entry: ModelEntry | None) -> str:
    """``at $1.25 in / $10 out per 1M tokens``, or why there is no price."""
    if entry is None:
        return f"no price: the catalog does not list {model} or could not be read"
    if entry.pricing is None:
        return f"no price: the catalog gives no per-token price for {model}"
    return f"at {entry.pricing.describe()}"


def call_estimate_line(what: str, model: str, body: Mapping[str, Any], entry: ModelEntry | None) -> str:
    """The log line of one call's estimate: ``Cost estimate of <what> to <model>: <range>, <price>``."""
    return f"Cost estimate of {what} to {model}: {estimate_call(body, entry).describe()}, {price_text(model, entry)}"


def unread_file_estimate(text_body: Mapping[str, Any], entry: ModelEntry | None) -> tuple[CostEstimate, bool]:
    """The range of a file record not read yet, from its text alone, and whether it has an upper bound.

    Its low end is its text's (the attachment only adds to it); its high end takes the prompt to be the model's
    whole context length, the most a call that is billed can send.
    """
    text = estimate_call(text_body, entry)
    context = entry.context_length if entry is not None else None
    if context is None:
        return CostEstimate(
            1, text.prompt_tokens_low, text.prompt_tokens_high, text.completion_tokens_high, text.low_usd, None
        ), False
    pricing = entry.pricing if entry is not None else None
    completion = text.completion_tokens_high
    prompt_high = max(context, text.prompt_tokens_low)
    high = None
    if pricing is not None and completion is not None:
        high = round_usd(pricing.cost(prompt_high, completion))
    return CostEstimate(1, text.prompt_tokens_low, prompt_high, completion, text.low_usd, high), True


@dataclass(frozen=True)
class BatchEstimate:
    """The estimate of the records a batch still has to ask (those resumed from a checkpoint are not asked)."""

    model: str
    estimate: CostEstimate
    entry: ModelEntry | None
    resumed: int = 0
    unread_files: int = 0
    """File records counted from their text alone (their attachment is read when their turn comes)."""
    unbounded_files: int = 0
    """Those of them with no upper bound (the catalog gives no context length)."""

    @classmethod
    def of(
        cls,
        model: str,
        entry: ModelEntry | None,
        bodies: Sequence[Mapping[str, Any]],
        unread_text_bodies: Sequence[Mapping[str, Any]] = (),
        *,
        resumed: int = 0,
        estimates: Iterable[CostEstimate] = (),
    ) -> BatchEstimate:
        """The estimate of the records whose ``bodies`` are built, plus the file records known by their text
        (``unread_text_bodies``) and the records estimated already (``estimates``: files a dry run read)."""
        total = estimate_calls(bodies, entry)
        for estimate in estimates:
            total = total + estimate
        unbounded = 0
        for body in unread_text_bodies:
            unread, bounded = unread_file_estimate(body, entry)
            total = total + unread
            unbounded += not bounded
        return cls(model, total, entry, resumed, len(unread_text_bodies), unbounded)

    @property
    def records(self) -> int:
        return self.estimate.calls

    @property
    def pricing(self) -> TokenPricing | None:
        return self.entry.pricing if self.entry is not None else None

    def describe(self) -> str:
        """The range, as :meth:`CostEstimate.describe` words it, or with the file records that bound nothing."""
        estimate = self.estimate
        if not self.unbounded_files:
            return estimate.describe()
        low = estimate.low_usd
        cost = "unknown cost (no catalog price)" if low is None else f"at least {format_usd(low)}"
        completion = (
            f", completion up to {estimate.completion_tokens_high:,}"
            if estimate.completion_tokens_high is not None
            else ""
        )
        return (
            f"{cost} for {estimate.calls:,} call{'' if estimate.calls == 1 else 's'} (prompt at least "
            f"{estimate.prompt_tokens_low:,} tokens{completion})"
        )

    def log_line(self) -> str:
        """The one line logged before the batch starts."""
        records = f"{self.records:,} record{'' if self.records == 1 else 's'}"
        resumed = f" ({self.resumed:,} more resumed from the checkpoint)" if self.resumed else ""
        line = f"Cost estimate of {records} to {self.model}{resumed}: {self.describe()}, "
        line += price_text(self.model, self.entry)
        if self.unread_files:
            files = f"{self.unread_files:,} file record{'' if self.unread_files == 1 else 's'}"
            if self.unbounded_files:
                line += (
                    f"; the attachments of {files} are not read yet and the catalog gives no context length to "
                    "bound them: no upper bound (dry_run=True reads them)"
                )
            else:
                context = self.entry.context_length if self.entry is not None else None
                line += (
                    f"; the attachments of {files} are not read yet: each prompt is counted from its text up to the "
                    f"model's {context:,}-token context length (dry_run=True reads them)"
                )
        return line

    def summary(self) -> dict[str, Any]:
        """For XCom: :meth:`CostEstimate.summary` with the model, the records and the price per 1M tokens."""
        pricing = self.pricing
        return {
            **self.estimate.summary(),
            "model": self.model,
            "records": self.records,
            "resumed": self.resumed,
            "price_per_1m_input_usd": _per_million(pricing.input) if pricing is not None else None,
            "price_per_1m_output_usd": _per_million(pricing.output) if pricing is not None else None,
        }

    def check_budget(self, max_cost_usd: float | None, spent_usd: float = 0.0) -> None:
        """Refuse a batch whose low estimate, with what resumed records already spent, passes ``max_cost_usd``:
        the budget would be passed for certain. Nothing is refused without a price."""
        low = self.estimate.low_usd
        if max_cost_usd is None or low is None or round_usd(low + spent_usd) <= max_cost_usd:
            return
        records = f"{self.records:,} record{'' if self.records == 1 else 's'}"
        spent = (
            f" plus ${spent_usd:.6f} already spent on the {self.resumed:,} records resumed from the checkpoint"
            if spent_usd
            else ""
        )
        raise AimlParameterError(
            f"The batch would pass max_cost_usd=${max_cost_usd:g} for certain: the {records} to run cost at least "
            f"${low:.6f} (the low estimate, {price_text(self.model, self.entry)}){spent}. Nothing was sent. "
            "Raise max_cost_usd, or send fewer or shorter records."
        )


def _per_million(per_token: float) -> float:
    return round(per_token * 1_000_000, 9)

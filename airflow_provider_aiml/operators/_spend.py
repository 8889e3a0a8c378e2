"""``TaskSpend``: what a task spent on the API, kept on the operator for OpenLineage and pushed as XCom
``aiml_spend`` for the Airflow UI's spend page (:mod:`airflow_provider_aiml.spend`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.models import Usage

SPEND_XCOM_KEY = "aiml_spend"
"""The XCom key of a task's compact spend record: one per task instance, read by the spend page with SQL."""


@dataclass(frozen=True)
class TaskSpend:
    """What a task spent on the API, as its XCom ``usage`` reports it; OpenLineage reads it after the task."""

    requested_model: str
    response_models: tuple[str, ...]
    """The model names the API reported, in order of first appearance."""
    usage: Usage
    calls: int
    """Answers received, each one billed: validation re-asks included, failed tries (not billed) not."""
    records_succeeded: int | None = None
    """Batch only: records with a result."""
    records_failed: int | None = None
    """Batch only: records with an ``error`` (not run ones included)."""

    def as_xcom(self, conn_id: str) -> dict[str, Any]:
        """The ``aiml_spend`` value: flat and small, so the spend page can sum its fields in SQL."""
        usage = self.usage
        return {
            "model": self.requested_model,
            "models": list(self.response_models),
            "conn_id": conn_id,
            "calls": self.calls,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "total_tokens": usage.total_tokens,
            "usd": usage.usd_spent,
        }


def push_spend(context: Context, spend: TaskSpend | None, conn_id: str) -> None:
    """Push XCom ``aiml_spend`` next to ``usage`` (the callers check ``do_xcom_push``); nothing before the
    API answered."""
    if spend is not None:
        context["ti"].xcom_push(key=SPEND_XCOM_KEY, value=spend.as_xcom(conn_id))

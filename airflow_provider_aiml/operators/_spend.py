"""``TaskSpend``: what a task spent on the API, kept on the operator for the OpenLineage methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_aiml.models import Usage


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

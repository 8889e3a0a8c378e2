"""The OpenLineage run facet ``aiml_usage``: which model a task asked, the tokens it used and what they cost.

This module needs ``apache-airflow-providers-openlineage``, which the provider does not depend on. Only the
operators' ``get_openlineage_facets_on_*`` methods import it, and only the OpenLineage provider calls them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define
from openlineage.client.facet_v2 import RunFacet

if TYPE_CHECKING:
    from airflow_provider_aiml.operators._spend import TaskSpend

FACET_KEY = "aiml_usage"
"""The key of the facet in the event's ``run.facets``."""

PROVIDER = "aimlapi"


@define(kw_only=True)
class AimlUsageRunFacet(RunFacet):
    """Usage and cost of the AI/ML API calls of one task run, the same numbers as its XCom ``usage``.

    The OpenLineage serializer leaves out the fields that are ``None``: ``creditsUsed`` and ``usdSpent`` when
    the API reported no cost, ``responseModel`` when no call was answered, the ``records*`` counts outside
    batches.
    """

    provider: str = PROVIDER
    requestModel: str
    """The model id the task asked for."""
    responseModel: str | None = None
    """The model name the API reported (often without the vendor prefix); several are joined with ", "."""
    promptTokens: int
    completionTokens: int
    """Generated tokens, the reasoning tokens included."""
    reasoningTokens: int
    cachedTokens: int
    """Prompt tokens served from the provider's prompt cache, part of ``promptTokens``."""
    totalTokens: int
    creditsUsed: int | None = None
    usdSpent: float | None = None
    calls: int
    """Answers received, each billed: validation re-asks and batch records included; failed tries are not."""
    recordsTotal: int | None = None
    recordsSucceeded: int | None = None
    recordsFailed: int | None = None


def usage_run_facet(spend: TaskSpend) -> AimlUsageRunFacet:
    """The facet of what a task spent."""
    usage = spend.usage
    succeeded, failed = spend.records_succeeded, spend.records_failed
    return AimlUsageRunFacet(
        requestModel=spend.requested_model,
        responseModel=", ".join(spend.response_models) or None,
        promptTokens=usage.prompt_tokens,
        completionTokens=usage.completion_tokens,
        reasoningTokens=usage.reasoning_tokens,
        cachedTokens=usage.cached_tokens,
        totalTokens=usage.total_tokens,
        creditsUsed=usage.credits_used,
        usdSpent=usage.usd_spent,
        calls=spend.calls,
        recordsTotal=None if succeeded is None or failed is None else succeeded + failed,
        recordsSucceeded=succeeded,
        recordsFailed=failed,
    )


def operator_lineage(spend: TaskSpend | None) -> OperatorLineage:
    """What the task reports to OpenLineage: the usage facet, or nothing when no call was answered."""
    if spend is None:
        return OperatorLineage()
    return OperatorLineage(run_facets={FACET_KEY: usage_run_facet(spend)})

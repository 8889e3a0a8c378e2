"""The ``aiml_usage`` OpenLineage run facet: how it is built, who reports it, and life without OpenLineage."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from openlineage.client.facet_v2 import RunFacet
from openlineage.client.serde import Serde

from airflow_provider_aiml.decorators.aiml import _AimlDecoratedOperator
from airflow_provider_aiml.decorators.aiml_batch import _AimlBatchDecoratedOperator
from airflow_provider_aiml.lineage import FACET_KEY, AimlUsageRunFacet, operator_lineage, usage_run_facet
from airflow_provider_aiml.models import Usage
from airflow_provider_aiml.operators._base import AimlBaseOperator
from airflow_provider_aiml.operators._spend import TaskSpend
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

USAGE = Usage(
    prompt_tokens=19,
    completion_tokens=1241,
    total_tokens=1260,
    reasoning_tokens=654,
    cached_tokens=16,
    credits_used=2480,
    usd_spent=0.00124,
)
CHAT = TaskSpend("alibaba/qwen3-vl-32b-thinking", ("qwen3-vl-32b-thinking",), USAGE, calls=2)
BATCH = TaskSpend(
    "alibaba/qwen3-vl-32b-thinking",
    ("qwen3-vl-32b-thinking",),
    USAGE,
    calls=5,
    records_succeeded=4,
    records_failed=2,
)


def serialized(facet: RunFacet) -> dict[str, Any]:
    """The facet as it goes out in an event (the OpenLineage client drops ``None`` fields)."""
    return json.loads(Serde.to_json(facet))


def test_the_chat_facet_carries_models_tokens_cost_and_calls():
    facet = serialized(usage_run_facet(CHAT))

    assert {key: value for key, value in facet.items() if not key.startswith("_")} == {
        "provider": "aimlapi",
        "requestModel": "alibaba/qwen3-vl-32b-thinking",
        "responseModel": "qwen3-vl-32b-thinking",
        "promptTokens": 19,
        "completionTokens": 1241,
        "reasoningTokens": 654,
        "cachedTokens": 16,
        "totalTokens": 1260,
        "creditsUsed": 2480,
        "usdSpent": 0.00124,
        "calls": 2,
    }
    assert facet["_schemaURL"] == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"
    assert facet["_producer"]


def test_the_batch_facet_adds_the_record_counts():
    facet = serialized(usage_run_facet(BATCH))

    assert (facet["recordsTotal"], facet["recordsSucceeded"], facet["recordsFailed"]) == (6, 4, 2)
    assert facet["calls"] == 5


def test_an_unreported_cost_and_an_unanswered_batch_leave_fields_out():
    spend = TaskSpend("openai/gpt-4o", (), Usage(), calls=0, records_succeeded=0, records_failed=3)
    facet = serialized(usage_run_facet(spend))

    for absent in ("creditsUsed", "usdSpent", "responseModel"):
        assert absent not in facet
    assert facet["totalTokens"] == 0
    assert facet["cachedTokens"] == 0  # a count is always there, 0 when not reported
    assert facet["recordsTotal"] == 3


def test_several_reported_model_names_are_joined():
    spend = TaskSpend("openai/gpt-4o", ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"), USAGE, calls=2)
    assert usage_run_facet(spend).responseModel == "gpt-4o-2024-08-06, gpt-4o-2024-11-20"


def test_the_facet_is_a_run_facet_under_its_own_key():
    lineage = operator_lineage(CHAT)

    assert isinstance(lineage, OperatorLineage)
    assert list(lineage.run_facets) == [FACET_KEY] == ["aiml_usage"]
    assert isinstance(lineage.run_facets[FACET_KEY], AimlUsageRunFacet)
    assert isinstance(lineage.run_facets[FACET_KEY], RunFacet)
    assert (lineage.inputs, lineage.outputs, lineage.job_facets) == ([], [], {})


def test_the_docs_table_explains_every_field():
    page = (Path(__file__).resolve().parents[2] / "docs" / "reasoning-and-costs.md").read_text(encoding="utf-8")
    rows = page.split("<!-- openlineage-fields: aiml_usage -->\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    documented = [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])]
    fields = [field.name for field in attrs.fields(AimlUsageRunFacet) if not field.name.startswith("_")]
    assert sorted(documented) == sorted(fields)


def test_the_facet_survives_the_redaction_of_token_named_fields():
    from airflow.providers.openlineage.utils.utils import OpenLineageRedactor
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    # Airflow hides values under names containing "token"; the counts are numbers, which it leaves alone.
    redacted = OpenLineageRedactor.from_masker(_secrets_masker()).redact(usage_run_facet(CHAT), max_depth=20)
    assert serialized(redacted) == serialized(usage_run_facet(CHAT))


# --- the operators ------------------------------------------------------------------------------------------


def chat_operator() -> AimlChatCompletionOperator:
    return AimlChatCompletionOperator(task_id="chat", prompt="Hello")


def test_the_operators_report_what_execute_recorded():
    operator = chat_operator()
    operator.spend = CHAT

    complete = operator.get_openlineage_facets_on_complete(task_instance=None)
    failure = operator.get_openlineage_facets_on_failure(task_instance=None)

    assert complete is not None
    assert failure is not None
    assert complete.run_facets[FACET_KEY] == failure.run_facets[FACET_KEY] == usage_run_facet(CHAT)


def test_a_task_that_spent_nothing_reports_an_empty_lineage():
    lineage = chat_operator().get_openlineage_facets_on_failure(task_instance=None)
    assert lineage == OperatorLineage()  # not None: the OpenLineage provider logs a warning for None


@pytest.mark.parametrize(
    "operator_class",
    [AimlChatCompletionOperator, AimlBatchChatCompletionOperator, _AimlDecoratedOperator, _AimlBatchDecoratedOperator],
)
def test_every_operator_and_decorator_gets_the_default_extractor(operator_class):
    for method in ("get_openlineage_facets_on_complete", "get_openlineage_facets_on_failure"):
        assert getattr(operator_class, method) is getattr(AimlBaseOperator, method)
    assert not hasattr(operator_class, "get_openlineage_facets_on_start")  # nothing is known before the calls


def test_the_default_extractor_reads_the_facet_on_success_and_on_failure():
    operator = AimlBatchChatCompletionOperator(task_id="batch", inputs=["a"], prompt="{{ record }}")
    operator.spend = BATCH
    assert ExtractorManager().get_extractor_class(operator) is DefaultExtractor
    extractor = DefaultExtractor(operator)

    for lineage in (extractor.extract_on_complete(None), extractor.extract_on_failure(None)):
        assert lineage is not None
        assert lineage.run_facets == {FACET_KEY: usage_run_facet(BATCH)}
    assert extractor.extract() == OperatorLineage()  # the START event


# --- without OpenLineage ------------------------------------------------------------------------------------


def test_without_openlineage_the_methods_return_none(monkeypatch):
    for name in list(sys.modules):
        if name.split(".")[0] == "openlineage" or name.startswith("airflow.providers.openlineage"):
            monkeypatch.setitem(sys.modules, name, None)  # a None entry makes the import fail
    monkeypatch.setitem(sys.modules, "openlineage", None)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)
    monkeypatch.delitem(sys.modules, "airflow_provider_aiml.lineage")
    operator = chat_operator()
    operator.spend = CHAT

    assert operator.get_openlineage_facets_on_complete(task_instance=None) is None
    assert operator.get_openlineage_facets_on_failure(task_instance=None) is None
    assert "airflow_provider_aiml.lineage" not in sys.modules


def test_importing_the_operators_loads_no_openlineage():
    code = (
        "import sys\n"
        "import airflow_provider_aiml.operators.chat, airflow_provider_aiml.operators.batch\n"
        "import airflow_provider_aiml.decorators.aiml\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'openlineage'"
        " or m.startswith(('airflow.providers.openlineage.extractors', 'airflow_provider_aiml.lineage')))\n"
        "print('RESULT', loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "RESULT []" in out.splitlines()

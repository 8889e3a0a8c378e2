"""OpenLineage events of real DAG runs: the ``aiml_usage`` run facet carries what XCom ``usage`` says.

The OpenLineage provider's own listener emits the events, configured the way a deployment configures it
(``[openlineage] transport``, here the OpenLineage client's file transport), and registered on the Task SDK's
listener manager the way the provider's system tests register it. ``execute_in_thread`` keeps the emission
in this process instead of a fork of the pytest process. (The provider reads its settings without caching
them under pytest, so the environment variables take effect at once.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from airflow_provider_aiml.testing.pytest_plugin import EMULATOR_API_KEY
from tests.e2e.test_operator_dags import run, xcom

Events = Callable[..., list[dict[str, Any]]]
PAGE = Path(__file__).resolve().parents[2] / "docs" / "reasoning-and-costs.md"


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


@pytest.fixture
def lineage_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    """Emit the task events of the DAG runs of this test to a file; returns a reader of that file."""
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener
    from airflow.sdk.listener import get_listener_manager

    # Load the plugins first, while OpenLineage is still off: the provider's plugin would register a listener
    # of its own (for the rest of the session) if it were loaded with a transport configured.
    manager = get_listener_manager()
    assert not any(isinstance(plugin, OpenLineageListener) for plugin in manager.pm.get_plugins())
    log_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(log_file), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    listener = OpenLineageListener()
    manager.add_listener(listener)

    def read(task_id: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        lines = log_file.read_text().splitlines() if log_file.exists() else []
        events = [json.loads(line) for line in lines]
        return [
            event
            for event in events
            if (task_id is None or event["job"]["name"].endswith(f".{task_id}"))
            and (event_type is None or event["eventType"] == event_type)
        ]

    yield read
    manager.pm.unregister(listener)


def usage_facet(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``aiml_usage`` facet of the one event given."""
    assert len(events) == 1, [event["eventType"] for event in events]
    return events[0]["run"]["facets"]["aiml_usage"]


def assert_matches_usage(facet: dict[str, Any], usage: dict[str, Any]) -> None:
    assert facet["promptTokens"] == usage["prompt_tokens"] > 0
    assert facet["completionTokens"] == usage["completion_tokens"] > 0
    assert facet["reasoningTokens"] == usage["reasoning_tokens"] > 0
    assert facet["totalTokens"] == usage["total_tokens"]
    assert facet["creditsUsed"] == usage["credits_used"] > 0
    assert facet["usdSpent"] == pytest.approx(usage["usd_spent"])


def test_a_chat_task_reports_model_tokens_and_cost_as_a_run_facet(dagbag, emulator, lineage_events):
    dag_run = run(dagbag, "aiml_lineage_chat")

    assert dag_run.state == "success"
    facet = usage_facet(lineage_events("chat", "COMPLETE"))
    assert_matches_usage(facet, xcom(dag_run, "usage", "chat"))
    response = xcom(dag_run, "response", "chat")
    assert facet["provider"] == "aimlapi"
    assert facet["requestModel"] == response["requested_model"] == "alibaba/qwen3-vl-32b-thinking"
    assert facet["responseModel"] == response["model"] != facet["requestModel"]
    assert facet["calls"] == 1
    assert not any(key.startswith("records") for key in facet)
    assert facet["_schemaURL"].startswith("https://openlineage.io/spec/")
    start = lineage_events("chat", "START")
    assert len(start) == 1
    assert "aiml_usage" not in start[0]["run"]["facets"]  # nothing is spent before the task runs


def test_the_decorated_task_inherits_the_facet(dagbag, emulator, lineage_events):
    dag_run = run(dagbag, "aiml_lineage_chat")

    facet = usage_facet(lineage_events("decorated", "COMPLETE"))
    assert_matches_usage(facet, xcom(dag_run, "usage", "decorated"))
    assert facet["responseModel"] == xcom(dag_run, "response", "decorated")["model"]


def test_a_deferred_chat_task_reports_the_call_made_in_the_triggerer(dagbag, emulator, lineage_events):
    dag_run = run(dagbag, "aiml_lineage_deferred")

    assert dag_run.state == "success"
    facet = usage_facet(lineage_events("chat", "COMPLETE"))
    assert_matches_usage(facet, xcom(dag_run, "usage", "chat"))
    assert facet["responseModel"] == xcom(dag_run, "response", "chat")["model"]
    assert facet["calls"] == 1


def test_a_deferred_task_that_failed_after_a_reask_reports_both_billed_calls(dagbag, emulator, lineage_events):
    emulator.set_reply(content='{"vendor": 5}')  # never a valid invoice: one re-ask, then the task fails
    dag_run = run(dagbag, "aiml_test_deferrable_output_type")

    assert dag_run.state == "failed"
    assert len(emulator.chat_requests) == 2
    facet = usage_facet(lineage_events("chat", "FAIL"))
    assert_matches_usage(facet, xcom(dag_run, "usage", "chat"))
    assert facet["calls"] == 2
    assert not lineage_events("chat", "COMPLETE")


def test_a_batch_task_reports_its_totals_and_record_counts(dagbag, emulator, lineage_events):
    emulator.add_fault(Fault.status(400, message="Body validation error!"), times=1)
    dag_run = run(dagbag, "aiml_lineage_batch")

    assert dag_run.state == "success"
    facet = usage_facet(lineage_events("batch", "COMPLETE"))
    usage = xcom(dag_run, "usage", "batch")
    assert_matches_usage(facet, usage)
    summary = xcom(dag_run, "batch", "batch")
    assert (facet["recordsTotal"], facet["recordsSucceeded"], facet["recordsFailed"]) == (4, 3, 1)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (4, 3, 1)
    assert facet["calls"] == 3  # the 400 was not billed
    assert facet["requestModel"] == emulator.chat_requests[0].json["model"]
    assert facet["responseModel"] == "qwen3-vl-32b-thinking"  # the emulator drops the vendor prefix, as the API does


def test_a_failed_batch_still_reports_what_it_spent(dagbag, emulator, lineage_events):
    emulator.add_fault(Fault.status(400, message="Body validation error!"), times=1)
    dag_run = run(dagbag, "aiml_lineage_batch_fails")

    assert dag_run.state == "failed"
    facet = usage_facet(lineage_events("batch", "FAIL"))
    assert_matches_usage(facet, xcom(dag_run, "usage", "batch"))
    assert (facet["recordsSucceeded"], facet["recordsFailed"]) == (3, 1)


def test_an_unreported_cost_is_left_out_of_the_facet(dagbag, emulator, lineage_events):
    emulator.settings.update({"cost_headers": False, "meta_usage": "tokens_used"})
    dag_run = run(dagbag, "aiml_lineage_chat")

    facet = usage_facet(lineage_events("chat", "COMPLETE"))
    usage = xcom(dag_run, "usage", "chat")
    assert usage["usd_spent"] is None
    assert usage["credits_used"] is None
    assert "usdSpent" not in facet
    assert "creditsUsed" not in facet
    assert facet["totalTokens"] == usage["total_tokens"] > 0


@pytest.mark.parametrize("full_task_info", [False, True])
def test_no_event_carries_the_api_key(dagbag, emulator, lineage_events, monkeypatch, full_task_info):
    # Full task info puts every attribute of the operator in the "airflow" run facet, the task's hook included.
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__INCLUDE_FULL_TASK_INFO", str(full_task_info))
    for dag_id in ("aiml_lineage_chat", "aiml_lineage_deferred", "aiml_lineage_batch"):
        run(dagbag, dag_id)

    events = lineage_events()
    assert len(events) >= 8  # START and COMPLETE of each task
    serialized = json.dumps(events)
    assert EMULATOR_API_KEY not in serialized
    assert emulator.base_url not in serialized
    assert ("'prompt'" in serialized or '"prompt"' in serialized) is full_task_info


# --- docs/reasoning-and-costs.md shows what a real run gives ---------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(line before the fence, info string, body)`` of each fenced block of a page."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        if lines[index].startswith("```"):
            end = lines.index("```", index + 1)
            before = lines[index - 1] if index else ""
            blocks.append((before, lines[index][3:], "\n".join(lines[index + 1 : end])))
            index = end
        index += 1
    return blocks


def documented_blocks() -> tuple[dict[str, Any], list[str]]:
    """The page's facet example (after ``<!-- openlineage: aiml_usage -->``) and its plain blocks, unwrapped."""
    blocks = fenced_blocks(PAGE.read_text(encoding="utf-8"))
    [example] = [body for before, info, body in blocks if before == "<!-- openlineage: aiml_usage -->"]
    plain = [" ".join(body.split()) for _, info, body in blocks if info == ""]
    return json.loads(example), plain


def json_type(value: Any) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively."""
    return {key: shape(item) for key, item in value.items()} if isinstance(value, dict) else json_type(value)


def without_numbers(line: str) -> str:
    return re.sub(r"\d+", "N", line)


def test_the_documented_facet_and_log_lines_are_those_of_a_real_run(dagbag, emulator, lineage_events, capsys):
    example, quoted = documented_blocks()
    run(dagbag, "aiml_lineage_chat")
    run(dagbag, "aiml_lineage_batch")
    out = capsys.readouterr().out

    facet = usage_facet(lineage_events("chat", "COMPLETE"))
    assert shape(example) == {"aiml_usage": shape(facet)}
    assert example["aiml_usage"]["_producer"] == facet["_producer"]  # the OpenLineage provider of the test extra
    summary = re.search(r"AI/ML API \S+ -> .*?client request id aiml_lineage_chat:chat:\S+", out)
    finished = re.search(r"Batch finished: .*?concurrency limit \d+", out)
    assert summary is not None
    assert finished is not None
    assert without_numbers(summary.group(0)) in map(without_numbers, quoted)
    assert without_numbers(finished.group(0)) in map(without_numbers, quoted)

"""XCom ``aiml_spend``: every operator pushes it next to ``usage``, and the spend report sums exactly those.

Real DAG runs (``dag.test()``) against the emulator over real HTTP; the values are read back from the XCom
table, as the plugin reads them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_aiml.operators._spend import SPEND_XCOM_KEY
from airflow_provider_aiml.testing import Fault
from tests.e2e.test_operator_dags import run, state, xcom

SPEND_FIELDS = {
    "model",
    "models",
    "conn_id",
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "total_tokens",
    "usd",
}


pytestmark = pytest.mark.usefixtures("airflow_db")


def spend_of(dag_run: Any, task_id: str) -> dict[str, Any]:
    value = xcom(dag_run, SPEND_XCOM_KEY, task_id)
    assert value is not None, f"{task_id} pushed no {SPEND_XCOM_KEY}"
    assert set(value) == SPEND_FIELDS
    return value


def assert_matches_usage(spend: dict[str, Any], usage: dict[str, Any]) -> None:
    """The record carries the same numbers as the task's ``usage``."""
    for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens"):
        assert spend[name] == usage[name], name
    assert spend["usd"] == usage["usd_spent"]
    assert spend["total_tokens"] > 0


def test_a_chat_task_pushes_its_spend_with_the_requested_and_answered_models(dagbag, aiml_connection):
    dag_run = run(dagbag, "aiml_test_no_stream")

    assert dag_run.state == "success"
    spend = spend_of(dag_run, "chat")
    assert_matches_usage(spend, xcom(dag_run, "usage", "chat"))
    response = xcom(dag_run, "response", "chat")
    assert spend["model"] == response["requested_model"] == "alibaba/qwen3-vl-32b-thinking"
    assert spend["models"] == [response["model"]]
    assert spend["conn_id"] == "aiml_default"
    assert spend["calls"] == len(aiml_connection.chat_requests) == 1
    assert spend["usd"] > 0


def test_a_deferred_chat_task_pushes_it_when_it_resumes(dagbag, aiml_connection):
    dag_run = run(dagbag, "aiml_test_deferrable")

    assert dag_run.state == "success"
    assert_matches_usage(spend_of(dag_run, "chat"), xcom(dag_run, "usage", "chat"))


def test_a_re_asked_chat_task_counts_every_billed_answer(dagbag, aiml_connection):
    from airflow_provider_aiml.testing import ScriptedReply

    # The first answer does not decode; the re-ask does.
    aiml_connection.script(ScriptedReply.text('{"summary": "cut'), ScriptedReply.text('{"summary": "ok"}'))
    dag = dagbag.dags["aiml_test_json_object"]
    dag.task_dict["chat"].max_validation_retries = 1
    try:
        dag_run = dag.test()
    finally:
        dag.task_dict["chat"].max_validation_retries = 0

    assert dag_run.state == "success"
    spend = spend_of(dag_run, "chat")
    assert spend["calls"] == len(aiml_connection.chat_requests) == 2
    assert_matches_usage(spend, xcom(dag_run, "usage", "chat"))


def test_a_chat_task_whose_answer_fails_to_decode_still_pushes_what_it_spent(dagbag, aiml_connection):
    from airflow_provider_aiml.testing import ScriptedReply

    aiml_connection.script(ScriptedReply.text("not json at all"))

    dag_run = run(dagbag, "aiml_test_json_object")

    assert state(dag_run) == "failed"
    assert_matches_usage(spend_of(dag_run, "chat"), xcom(dag_run, "usage", "chat"))


def test_a_batch_task_pushes_its_totals_also_when_it_fails(dagbag, aiml_connection):
    aiml_connection.add_fault(Fault.status(400), times=1)

    dag_run = run(dagbag, "aiml_batch_fail")

    assert state(dag_run, "batch") == "failed"
    spend = spend_of(dag_run, "batch")
    assert_matches_usage(spend, xcom(dag_run, "usage", "batch"))
    assert spend["calls"] == 5  # six records, one refused (not billed)
    assert spend["model"] == "alibaba/qwen3-vl-32b-thinking"


def test_an_agent_task_pushes_the_spend_of_all_its_steps(dagbag, aiml_connection, tmp_path, monkeypatch):
    from airflow_provider_aiml.testing import ScriptedReply

    monkeypatch.setenv("AIML_TEST_TOOL_LOG", str(tmp_path / "tools.log"))
    tool_call = ScriptedReply.tool_calls(("stock_level", {"sku": "A-100"}))
    aiml_connection.script(tool_call, ScriptedReply.from_tool_results())

    dag_run = run(dagbag, "aiml_agent")

    assert dag_run.state == "success"
    spend = spend_of(dag_run, "agent")
    assert spend["calls"] == 2
    assert_matches_usage(spend, xcom(dag_run, "usage", "agent"))


def test_a_branch_task_pushes_it_like_a_chat_task(dagbag, aiml_connection):
    aiml_connection.set_reply(content=json.dumps({"choice": "shipping", "reason": "a lost parcel"}))

    dag_run = run(dagbag, "aiml_branch")

    assert dag_run.state == "success"
    assert_matches_usage(spend_of(dag_run, "route"), xcom(dag_run, "usage", "route"))


def test_an_embedding_task_pushes_its_requests_as_calls(dagbag, aiml_connection):
    dag_run = run(dagbag, "aiml_embed_operator", run_conf={"output_path": None})

    assert dag_run.state == "success"
    spend = spend_of(dag_run, "embed")
    assert_matches_usage(spend, xcom(dag_run, "usage", "embed"))
    assert spend["calls"] == len(aiml_connection.embedding_requests) == 4
    assert spend["model"] == "text-embedding-3-small"
    assert spend["completion_tokens"] == 0


def test_do_xcom_push_false_pushes_no_spend_either(dagbag, aiml_connection):
    dag_run = run(dagbag, "aiml_test_no_xcom")

    assert dag_run.state == "success"
    assert len(aiml_connection.chat_requests) == 1
    assert xcom(dag_run, SPEND_XCOM_KEY, "chat") is None


def test_the_report_counts_the_spend_records_and_not_other_usage_keys(dagbag, aiml_connection):
    """``use`` returns a dict holding ``summarize``'s usage, so Airflow stores an XCom ``usage`` for it too:
    summing every ``usage`` would count that call twice. The report reads ``aiml_spend`` only."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_aiml.spend.report import Period, spend_report

    dag_id = "aiml_decorator_basic"
    dag_run = run(dagbag, dag_id)

    assert dag_run.state == "success"
    usage = xcom(dag_run, "usage", "summarize")
    assert xcom(dag_run, "usage", "use") == usage  # the decoy
    assert xcom(dag_run, SPEND_XCOM_KEY, "use") is None
    assert_matches_usage(spend_of(dag_run, "summarize"), usage)
    with create_session() as session:  # other tests may have run this DAG too: compare with all its records
        values = session.query(XComModel.key, XComModel.value).filter(XComModel.dag_id == dag_id).all()
        report = spend_report(session, Period.last_days(2, datetime.now(UTC).date()), [dag_id, "not_a_dag"])
    spends = [value for key, value in values if key == SPEND_XCOM_KEY]
    usages = [value for key, value in values if key == "usage"]
    assert report.total.tasks == len(spends) >= 1
    assert report.total.usd == round(sum(spend["usd"] for spend in spends), 7)
    assert report.total.total_tokens == sum(spend["total_tokens"] for spend in spends)
    assert sum(item["total_tokens"] for item in usages) == 2 * report.total.total_tokens
    assert [key for key, _ in report.by_task] == [(dag_id, "summarize")]
    assert dag_run.run_id in [run.run_id for run in report.top_runs]

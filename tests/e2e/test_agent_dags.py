"""Agents and model-chosen branches through real DAG runs against the emulator over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.e2e.test_operator_dags import run, sent, state, xcom


@pytest.fixture
def tool_runs(tmp_path, monkeypatch) -> Callable[[], list[str]]:
    """The SKUs the test DAGs' tools ran for, in order (the tools append them to a file)."""
    log = tmp_path / "tools.log"
    monkeypatch.setenv("AIML_TEST_TOOL_LOG", str(log))
    return lambda: log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def test_the_model_chooses_the_branch_and_the_others_are_skipped(dagbag, emulator):
    emulator.set_reply(content=json.dumps({"choice": "shipping", "reason": "a lost parcel"}))

    dag_run = run(dagbag, "aiml_branch")

    assert dag_run.state == "success"
    assert (state(dag_run, "shipping"), state(dag_run, "billing"), state(dag_run, "other")) == (
        "success",
        "skipped",
        "skipped",
    )
    assert xcom(dag_run, "choice", "route") == "shipping"
    assert xcom(dag_run, "reason", "route") == "a lost parcel"
    schema = sent(emulator)["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"]["enum"] == ["shipping", "billing"]
    assert "lost or late parcels" in schema["properties"]["choice"]["description"]
    assert schema["required"] == ["choice", "reason"]


def test_an_answer_outside_the_choices_is_asked_again_then_fails(dagbag, emulator):
    emulator.set_reply(content=json.dumps({"choice": "legal", "reason": "why not"}))

    dag_run = run(dagbag, "aiml_branch")

    assert state(dag_run, "route") == "failed"
    assert len(emulator.chat_requests) == 2  # the question and one re-ask showing the problem
    assert "legal" in json.dumps(sent(emulator, 1)["messages"][-2:])
    assert state(dag_run, "shipping") != "success"


def test_the_branch_decorator_may_choose_several(dagbag, emulator):
    emulator.set_reply(content=json.dumps({"choices": ["shipping_team", "billing_team"], "reason": "both"}))

    dag_run = run(dagbag, "aiml_branch_decorator")

    assert dag_run.state == "success"
    assert (state(dag_run, "shipping_team"), state(dag_run, "billing_team")) == ("success", "success")
    assert xcom(dag_run, "return_value", "route") == ["shipping_team", "billing_team"]
    assert "refund for a lost parcel" in sent(emulator)["messages"][-1]["content"]


def test_the_triage_example_runs_exactly_one_team_with_the_models_reason(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_ticket_triage")

    assert dag_run.state == "success"
    states = {team: state(dag_run, team) for team in ("billing", "shipping", "account")}
    chosen = xcom(dag_run, "choice", "triage")
    assert states[chosen] == "success"
    assert sorted(states.values()) == ["skipped", "skipped", "success"]
    assert xcom(dag_run, "return_value", chosen).startswith(f"{chosen} ticket opened: ")
    assert xcom(dag_run, "return_value", chosen).endswith(xcom(dag_run, "reason", "triage"))
    assert "charged twice" in sent(emulator)["messages"][-1]["content"]


def test_a_deferred_branch_decorator_resumes_and_branches(dagbag, emulator):
    emulator.set_reply(content=json.dumps({"choice": "parcels", "reason": "a lost parcel"}))

    dag_run = run(dagbag, "aiml_branch_deferred")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 1
    assert (state(dag_run, "parcels"), state(dag_run, "payments")) == ("success", "skipped")
    assert xcom(dag_run, "reason", "route_later") == "a lost parcel"


# --- agents -------------------------------------------------------------------------------------------------


def test_the_agent_calls_the_tool_and_answers_from_its_result(dagbag, emulator, tool_runs):
    from airflow_provider_aiml.testing import ScriptedReply

    emulator.script(ScriptedReply.tool_calls(("stock_level", {"sku": "A-100"})), ScriptedReply.from_tool_results())

    dag_run = run(dagbag, "aiml_agent")

    assert dag_run.state == "success"
    assert tool_runs() == ["A-100"]
    content = xcom(dag_run, "content", "agent")
    assert content == 'Based on the tools: stock_level: {"sku":"A-100","units":40}'
    assert xcom(dag_run, "return_value", "agent") == content
    steps = xcom(dag_run, "steps", "agent")
    assert [(step["step"], [call["name"] for call in step["tool_calls"]]) for step in steps] == [
        (1, ["stock_level"]),
        (2, []),
    ]
    usage = xcom(dag_run, "usage", "agent")
    assert usage["total_tokens"] == sum(step["usage"]["total_tokens"] for step in steps)
    assert sent(emulator, 0)["tools"][0]["function"]["name"] == "stock_level"


def test_a_tool_loop_that_never_ends_stops_at_max_steps_with_the_steps_pushed(dagbag, emulator, tool_runs):
    emulator.loop_tool_calls("stock_level", {"sku": "A-100"})

    dag_run = run(dagbag, "aiml_agent")

    assert state(dag_run, "agent") == "failed"
    assert len(emulator.chat_requests) == 10  # max_steps
    assert len(tool_runs()) == 10
    assert len(xcom(dag_run, "steps", "agent")) == 10


def test_a_rerun_replays_the_record_and_a_changed_question_starts_afresh(dagbag, emulator, tool_runs, tmp_path, capsys):
    from airflow_provider_aiml.testing import ScriptedReply

    record = str(tmp_path / "agent.jsonl")
    emulator.script(ScriptedReply.tool_calls(("stock_level", {"sku": "A-100"})), ScriptedReply.from_tool_results())
    first = run(dagbag, "aiml_agent", run_conf={"checkpoint": record})
    assert first.state == "success"
    assert len(emulator.chat_requests) == 2

    again = run(dagbag, "aiml_agent", run_conf={"checkpoint": record})  # the same question: all of it replayed

    assert again.state == "success"
    assert len(emulator.chat_requests) == 2  # nothing asked again
    assert tool_runs() == ["A-100"]  # nor run again
    assert xcom(again, "content", "agent") == xcom(first, "content", "agent")
    assert [step["replayed"] for step in xcom(again, "steps", "agent")] == [True, True]
    assert "Replaying 4 recorded entries" in capsys.readouterr().out

    emulator.script(ScriptedReply.tool_calls(("stock_level", {"sku": "B-200"})), ScriptedReply.from_tool_results())
    changed = run(dagbag, "aiml_agent", run_conf={"checkpoint": record, "question": "Is B-200 in stock?"})

    assert changed.state == "success"
    assert len(emulator.chat_requests) == 4  # a fresh run: both steps asked
    assert tool_runs() == ["A-100", "B-200"]
    assert [step["replayed"] for step in xcom(changed, "steps", "agent")] == [False, False]
    assert "entries of another run (the model, messages, tools or parameters changed since)" in capsys.readouterr().out


def test_a_connection_password_a_tool_reads_never_reaches_the_api(dagbag, emulator, monkeypatch):
    from airflow_provider_aiml.testing import ScriptedReply

    password = "pw-service-e2e-4b1d9a"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIML_TEST_SERVICE",
        json.dumps({"conn_type": "http", "host": "pay.internal", "login": "svc", "password": password}),
    )
    emulator.script(ScriptedReply.tool_calls(("service_config", {})), ScriptedReply.from_tool_results())

    dag_run = run(dagbag, "aiml_agent_secret")

    assert dag_run.state == "success"
    bodies = [request.body.decode() for request in emulator.chat_requests]
    assert len(bodies) == 2
    assert "host=pay.internal user=svc password=***" in bodies[1]
    assert all(password not in body for body in bodies)
    assert password not in json.dumps(xcom(dag_run, "steps", "agent"))
    assert password not in xcom(dag_run, "content", "agent")


_WORKER = """
import os, sys
from airflow.utils import db
db.resetdb()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
bag.dags["aiml_agent_reserve"].test(run_conf={"checkpoint": sys.argv[1]})
"""


def test_a_killed_agent_resumes_without_paying_for_a_finished_step_or_running_a_tool_twice(
    dagbag, emulator, tool_runs, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    from airflow_provider_aiml.testing import ScriptedReply
    from tests.airflow_env import DAGS_FOLDER, REPO

    record, tool_log = tmp_path / "agent.jsonl", tmp_path / "tools.log"
    emulator.script(
        ScriptedReply.tool_calls(("reserve_stock", {"sku": "A-100", "units": 2})),
        ScriptedReply.tool_calls(("reserve_stock", {"sku": "B-200", "units": 1})),
    )
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/worker.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIML_TEST_TOOL_BLOCK": "B-200",
    }
    worker = subprocess.Popen(
        [sys.executable, str(script), str(record)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while "B-200" not in (tool_log.read_text() if tool_log.exists() else "") and time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker ended on its own (exit code {worker.returncode})"
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)  # while reserve_stock("B-200") runs
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    assert len(emulator.chat_requests) == 2  # two model steps were paid for before the kill
    emulator.script(ScriptedReply.from_tool_results())

    dag_run = run(dagbag, "aiml_agent_reserve", run_conf={"checkpoint": str(record)})

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 3  # only the step not done was asked
    assert tool_runs() == ["A-100", "B-200"]  # no tool ran twice
    last = emulator.chat_requests[-1]
    results = [message["content"] for message in last.json["messages"] if message["role"] == "tool"]
    assert results[0] == "reserved 2 x A-100"
    assert "not run again" in results[1]  # B-200 may have taken effect: the model is told, not the tool rerun
    steps = xcom(dag_run, "steps", "agent")
    assert [step["replayed"] for step in steps] == [True, True, False]

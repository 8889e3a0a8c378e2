"""The batch operator in real DAG runs against the emulator: alignment, concurrency, limits, budgets, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.airflow_env import DAGS_FOLDER
from tests.e2e.test_operator_dags import run, xcom

CITIES = [f"city number {i:03d} on the river" for i in range(40)]


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def record_index(request) -> int:
    return int(request.client_request_id.rsplit(":r", 1)[1])


def test_results_are_aligned_with_inputs_under_random_latencies(dagbag, emulator):
    emulator.set_fault_rates({Fault.delay(0.08): 0.3, Fault.delay(0.02): 0.3}, seed=7)
    dag_run = run(dagbag, "aiml_batch_basic")

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "batch")
    assert [item["index"] for item in results] == list(range(40))
    for item, city in zip(results, CITIES, strict=True):
        assert city in item["content"]
        assert item["error"] is None
        assert item["reasoning"]
        assert "parsed" not in item
    assert sorted(record_index(r) for r in emulator.chat_requests) == list(range(40))
    assert emulator.max_in_flight <= 4
    assert emulator.max_in_flight >= 2  # it did run concurrently
    usage = xcom(dag_run, "usage", "batch")
    assert usage["total_tokens"] == sum(item["usage"]["total_tokens"] for item in results)
    assert usage["usd_spent"] == pytest.approx(sum(item["usage"]["usd_spent"] for item in results))
    summary = xcom(dag_run, "batch", "batch")
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["requests"]) == (40, 40, 0, 40)


def test_each_call_is_traceable_to_its_record(dagbag, emulator):
    run(dagbag, "aiml_batch_basic")
    ids = [r.client_request_id for r in emulator.chat_requests]
    assert len(set(ids)) == 40
    assert all(i.startswith("aiml_batch_basic:batch:manual__") for i in ids)


def test_progress_is_logged_at_a_steady_interval(dagbag, emulator, capsys):
    emulator.settings.latency = 0.1
    dag_run = run(dagbag, "aiml_batch_basic")
    lines = [line for line in capsys.readouterr().out.splitlines() if "Batch progress:" in line]
    elapsed = xcom(dag_run, "batch", "batch")["elapsed_s"]  # ~1 s of work, logged every 0.2 s
    assert elapsed / 0.2 - 2 <= len(lines) <= elapsed / 0.2 + 1
    assert "records/s" in lines[-1]
    assert "ETA" in lines[-1]
    assert "tokens" in lines[-1]
    assert "cost $" in lines[-1]


def test_dict_records_and_message_templates_with_json_output(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_dicts")

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "batch")
    assert [json.loads(item["content"]) == item["parsed"] for item in results] == [True, True]
    sent = sorted(r.json["messages"][1]["content"] for r in emulator.chat_requests)
    assert sent == ["Summarize Ada, who is an engineer.", "Summarize Grace, who is an admiral."]


def test_a_rate_limit_slows_the_whole_batch(dagbag, emulator):
    emulator.settings.latency = 0.05
    emulator.add_fault(Fault.status(429, retry_after=0.4))
    dag_run = run(dagbag, "aiml_batch_basic")

    assert dag_run.state == "success"
    requests = sorted(emulator.chat_requests, key=lambda r: r.received_at)
    limited = next(r for r in requests if r.status == 429)
    started_during_pause = [
        r for r in requests if limited.received_at + 0.05 < r.received_at < limited.received_at + 0.35
    ]
    assert started_during_pause == []  # every worker waited, not only the one that got the 429
    assert len(requests) == 41


def test_failed_records_fail_the_task_after_the_batch_settles(dagbag, emulator, capsys):
    emulator.add_fault(Fault.status(400, message="Body validation error! Expected string"), times=1)
    dag_run = run(dagbag, "aiml_batch_fail")

    assert dag_run.state == "failed"
    results = xcom(dag_run, "return_value", "batch")
    assert len(results) == 6
    failed = [item for item in results if item["error"]]
    assert len(failed) == 1
    assert "Body validation error" in failed[0]["error"]
    assert all(item["content"] for item in results if not item["error"])
    assert "1 of 6 records failed" in capsys.readouterr().out


def test_on_error_continue_succeeds_with_the_error_recorded(dagbag, emulator):
    emulator.add_fault(Fault.status(403), times=1)
    dag_run = run(dagbag, "aiml_batch_basic")

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "batch")
    assert sum(1 for item in results if item["error"]) == 1
    assert len(emulator.chat_requests) == 40  # a 403 is not retried


def test_transient_errors_are_retried_per_record(dagbag, emulator):
    emulator.add_fault(Fault.status(503), times=2)
    dag_run = run(dagbag, "aiml_batch_fail")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 8


def test_the_token_budget_stops_new_calls_and_keeps_results(dagbag, emulator, capsys):
    per_call = _tokens_of_one_call(dagbag, emulator)
    emulator.reset()
    dag = dagbag.dags["aiml_batch_budget"]
    dag.task_dict["batch"].max_total_tokens = int(per_call * 5.5)
    dag_run = dag.test()

    assert dag_run.state == "failed"
    results = xcom(dag_run, "return_value", "batch")
    assert len(results) == 12
    assert [bool(item["content"]) for item in results] == [True] * 5 + [False] * 7
    assert all(item["error"].startswith("not run: the token budget") for item in results[5:])
    assert len(emulator.chat_requests) == 5
    assert "Batch stopped: the token budget" in capsys.readouterr().out


def _tokens_of_one_call(dagbag, emulator) -> int:
    dag_run = run(dagbag, "aiml_batch_fail")
    results = xcom(dag_run, "return_value", "batch")
    return results[0]["usage"]["total_tokens"]


def test_the_cost_budget_stops_new_calls(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_cost")

    assert dag_run.state == "failed"
    results = xcom(dag_run, "return_value", "batch")
    done = [item for item in results if item["content"]]
    spent = sum(item["usage"]["usd_spent"] for item in done)
    assert 0 < len(done) < 12
    assert spent <= 0.0005
    assert spent + done[0]["usage"]["usd_spent"] > 0.0005  # one more call would have passed it
    assert len(emulator.chat_requests) == len(done)


@pytest.mark.parametrize(
    ("dag_id", "message"),
    [
        ("aiml_batch_bad_template", "record 1: the template failed to render"),
        ("aiml_batch_not_a_list", "inputs must be a list of records (strings or dicts), got str"),
    ],
)
def test_bad_input_fails_before_any_call(dagbag, emulator, capsys, dag_id, message):
    dag_run = run(dagbag, dag_id)

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert message in capsys.readouterr().out


def test_empty_inputs_succeed_with_an_empty_list(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_empty")

    assert dag_run.state == "success"
    assert xcom(dag_run, "return_value", "batch") == []
    assert emulator.chat_requests == []


def test_a_rerun_with_a_checkpoint_pays_for_no_record_twice(dagbag, emulator, tmp_path, capsys):
    checkpoint = tmp_path / "run.jsonl"
    emulator.add_fault(Fault.status(400), times=1)  # one record fails in the first run
    first = run(dagbag, "aiml_batch_checkpoint", run_conf={"checkpoint": str(checkpoint)})
    assert first.state == "failed"
    kept = [json.loads(line)["usage"] for line in checkpoint.read_text().splitlines()]
    assert len(kept) == 19

    second = run(dagbag, "aiml_batch_checkpoint", run_conf={"checkpoint": str(checkpoint)})

    assert second.state == "success"
    assert len(emulator.chat_requests) == 21  # 20 in the first run, only the failed one again
    results = xcom(second, "return_value", "batch")
    assert all(item["content"] and item["error"] is None for item in results)
    assert xcom(second, "batch", "batch")["resumed"] == 19
    # The last line tells what this try spent from what the whole batch did, the resumed records included.
    usage = xcom(second, "usage", "batch")
    final = [line for line in capsys.readouterr().out.splitlines() if "Batch finished:" in line][-1]
    found = re.search(
        r"this try: 1 calls, tokens (\d+) .*?, cost \$([\d.]+); "
        r"in all, with 19 records resumed from the checkpoint: tokens (\d+) .*?, cost \$([\d.]+);",
        final,
    )
    assert found, final
    this_try, this_try_usd, whole, whole_usd = int(found[1]), float(found[2]), int(found[3]), float(found[4])
    assert this_try == usage["total_tokens"] - sum(u["total_tokens"] for u in kept) > 0
    assert whole == usage["total_tokens"]
    assert whole_usd == pytest.approx(usage["usd_spent"], abs=1e-6)
    assert this_try_usd == pytest.approx(usage["usd_spent"] - sum(u["usd_spent"] for u in kept), abs=1e-6)


_KILLED_RUN = """
import json, os, sys
from airflow.utils import db
db.resetdb()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
bag.dags["aiml_batch_checkpoint"].test(run_conf={"checkpoint": sys.argv[1]})
"""


def test_a_killed_worker_loses_only_the_calls_in_flight(dagbag, emulator, tmp_path):
    checkpoint = tmp_path / "killed.jsonl"
    emulator.settings.latency = 0.15
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/killed.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    }
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN))
    worker = subprocess.Popen([sys.executable, str(script), str(checkpoint)], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while len(emulator.chat_requests) < 8 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
    first_requests = len(emulator.chat_requests)
    assert 8 <= first_requests < 20
    finished = {json.loads(line)["index"] for line in checkpoint.read_text().splitlines()}
    assert finished

    emulator.settings.latency = 0.0
    asked_before = {record_index(r) for r in emulator.chat_requests}
    dag_run = run(dagbag, "aiml_batch_checkpoint", run_conf={"checkpoint": str(checkpoint)})

    assert dag_run.state == "success"
    asked_again = [record_index(r) for r in emulator.chat_requests[first_requests:]]
    assert not set(asked_again) & finished  # nothing that was finished was paid for again
    assert sorted(asked_again) == sorted(set(range(20)) - finished)
    lost = asked_before - finished
    assert len(lost) <= 2  # at most the calls in flight at the kill (concurrency 2)
    assert len(xcom(dag_run, "return_value", "batch")) == 20


def test_a_prompt_file_is_rendered_per_record_with_the_task_context(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_prompt_file")

    assert dag_run.state == "success"
    sent = sorted(r.json["messages"][0]["content"] for r in emulator.chat_requests)
    assert sent == [f"Describe {CITIES[i]} (record {i}) in the style of a travel guide." for i in range(3)]


def test_the_first_wave_is_bounded_by_each_records_estimate(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_budget_wave")  # concurrency 4, ~410 tokens estimated a call, budget 1000

    assert dag_run.state == "failed"
    assert len(emulator.chat_requests) == 2
    results = xcom(dag_run, "return_value", "batch")
    assert sum(1 for item in results if item["content"]) == 2


def test_native_rendering_keeps_prompts_text_and_records_literal(dagbag, emulator):
    dag_run = run(dagbag, "aiml_batch_native")

    assert dag_run.state == "success"
    sent = sorted(r.json["messages"][0]["content"] for r in emulator.chat_requests)
    assert sent == ["2024", "notes.txt"]


def test_a_failing_checkpoint_does_not_lose_the_results(dagbag, emulator, capsys):
    dag_run = run(dagbag, "aiml_batch_bad_checkpoint")

    assert dag_run.state == "success"
    assert len(xcom(dag_run, "return_value", "batch")) == 4
    assert "Writing the checkpoint /dev/null/ck.jsonl failed" in capsys.readouterr().out


def test_typed_batch_validates_each_record_and_reasks_with_its_own_id(dagbag, emulator):
    emulator.set_reply(content='{"name": 5}')
    dag_run = run(dagbag, "aiml_batch_typed")

    assert dag_run.state == "success"  # on_error="continue"
    results = xcom(dag_run, "return_value", "batch")
    assert all(item["error"].startswith("The answer does not match Place") for item in results)
    assert all(item["content"] == '{"name": 5}' for item in results)
    suffixes = sorted(r.client_request_id.split(":")[-1] for r in emulator.chat_requests)
    assert suffixes == ["r0", "r1", "v1", "v1"]
    reask = next(r.json for r in emulator.chat_requests if r.client_request_id.endswith(":v1"))
    assert reask["messages"][-2] == {"role": "assistant", "content": '{"name": 5}'}
    assert reask["response_format"]["json_schema"]["schema"]["required"] == ["name", "river"]

    emulator.reset()
    good = run(dagbag, "aiml_batch_typed")
    assert good.state == "success"
    parsed = [item["parsed"] for item in xcom(good, "return_value", "batch")]
    assert all(set(item) == {"name", "river"} for item in parsed)

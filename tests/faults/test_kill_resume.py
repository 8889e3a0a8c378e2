"""Kill and resume under chaos: the batch task's process is SIGKILLed mid-run, then the batch runs again with the
same checkpoint; the emulator (a thread of the test process) outlives the kill and its request log proves that no
record finished before the kill was asked for again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from tests.airflow_env import DAGS_FOLDER
from tests.dags.aiml_fault_dags import RESUME_CONCURRENCY, RESUME_RECORDS, record_text
from tests.e2e.test_operator_dags import xcom
from tests.faults.harness import (
    CHAOS_SEED,
    MAX_RETRIES,
    REPO,
    RESUME_SUMMARY,
    FaultLedger,
    chaos_mix,
    expected_answer,
    fault_rates,
    install_compressed_waits,
    record_index,
    write_summary,
)

TIME_LIMIT_S = 180
KILL_AFTER_FINISHED = 80
"""SIGKILL once the checkpoint holds this many records (of 300)."""

_WORKER = """
import os, sys
from tests.faults.harness import install_compressed_waits
install_compressed_waits()
from airflow.utils import db
db.resetdb()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
bag.dags["aiml_faults_resume"].test(run_conf={"checkpoint": sys.argv[1]})
"""


def checkpointed(path: Path) -> dict[int, dict]:
    """The records a checkpoint holds; a line cut by the kill is skipped, as the operator skips it."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        entries[int(entry["index"])] = entry
    return entries


def run_prefix(client_request_id: str) -> str:
    return client_request_id.rsplit(":r", 1)[0]


def test_a_killed_batch_resumes_without_asking_a_finished_record_again(
    dagbag, faults_emulator, ledger: FaultLedger, monkeypatch, tmp_path, capsys
):
    mix = chaos_mix()
    faults_emulator.set_fault_rates(fault_rates(mix), seed=CHAOS_SEED + 2)
    checkpoint = tmp_path / "resume.jsonl"
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/worker.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    }
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, str(script), str(checkpoint)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes any child with it
    )
    try:
        deadline = time.monotonic() + 120
        while len(checkpointed(checkpoint)) < KILL_AFTER_FINISHED and time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker ended on its own (exit code {worker.returncode})"
            time.sleep(0.02)
        assert worker.poll() is None, "the batch finished before it could be killed"
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    killed_after = time.monotonic() - started
    assert worker.returncode == -signal.SIGKILL
    time.sleep(0.3)  # requests the worker sent just before it died reach the emulator's log
    finished = checkpointed(checkpoint)
    first_requests = faults_emulator.chat_requests
    assert KILL_AFTER_FINISHED <= len(finished) < RESUME_RECORDS

    install_compressed_waits(monkeypatch.setattr)
    dag_run = dagbag.dags["aiml_faults_resume"].test(run_conf={"checkpoint": str(checkpoint)})

    assert dag_run.state == "success"
    requests = sorted(faults_emulator.chat_requests, key=lambda r: r.received_at)
    killed_run = run_prefix(requests[0].client_request_id)
    by_run: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for request in requests:
        by_run[run_prefix(request.client_request_id)][record_index(request.client_request_id)].append(request)
    assert len(by_run) == 2, sorted(by_run)
    before = by_run.pop(killed_run)
    (after,) = by_run.values()

    # Nothing finished before the kill was asked again; everything else was.
    assert not set(after) & set(finished)
    assert set(after) == set(range(RESUME_RECORDS)) - set(finished)
    # Each checkpointed record had its answer in the killed run: its last request there got no fault.
    for index, entry in finished.items():
        assert ledger.fault_of(before[index][-1]) is None
        assert entry["content"] == expected_answer(record_text(index))
    # Lost at the kill: the calls in flight, and records whose retries were exhausted (never checkpointed).
    exhausted_before = {
        index
        for index, calls in before.items()
        if len(calls) == 1 + MAX_RETRIES and all(ledger.fault_of(call) is not None for call in calls)
    }
    in_flight = set(before) - set(finished) - exhausted_before
    assert len(in_flight) <= RESUME_CONCURRENCY

    results = xcom(dag_run, "return_value", "batch")
    batch = xcom(dag_run, "batch", "batch")
    assert [item["index"] for item in results] == list(range(RESUME_RECORDS))
    for item in results:
        if item["error"] is None:
            assert item["content"] == expected_answer(record_text(item["index"]))
        else:
            calls = after[item["index"]]
            assert len(calls) == 1 + MAX_RETRIES
            assert all(ledger.fault_of(c) is not None for c in calls)
    assert batch["resumed"] == len(finished)
    assert batch["requests"] == sum(len(calls) for calls in after.values())
    assert batch["succeeded"] + batch["failed"] == RESUME_RECORDS

    summary = {
        "records": RESUME_RECORDS,
        "concurrency": RESUME_CONCURRENCY,
        "seed": CHAOS_SEED + 2,
        "killed_after_s": round(killed_after, 3),
        "requests_before_kill": len(first_requests),
        "records_asked_before_kill": len(before),
        "finished_in_checkpoint": len(finished),
        "exhausted_before_kill": len(exhausted_before),
        "lost_in_flight": len(in_flight),
        "records_asked_after": len(after),
        "finished_asked_again": len(set(after) & set(finished)),
        "requests_after": batch["requests"],
        "resumed": batch["resumed"],
        "succeeded": batch["succeeded"],
        "failed": batch["failed"],
    }
    write_summary(RESUME_SUMMARY, summary)
    with capsys.disabled():
        print(f"\nkill/resume summary ({RESUME_SUMMARY.relative_to(REPO)}): {summary}")  # noqa: T201

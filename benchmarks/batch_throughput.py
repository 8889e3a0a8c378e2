"""Batch throughput and memory, measured end to end through Airflow against the emulator.

    .venv/bin/python benchmarks/batch_throughput.py     # make bench-batch: this benchmark only
    .venv/bin/python -m benchmarks                      # make bench: every benchmark, writes docs/benchmarks.md

What it measures (each figure the median of ``repeat`` runs, every run in a fresh process and Airflow home):

1. ``AimlBatchChatCompletionOperator`` at each concurrency, the emulator answering after ``latency`` seconds:
   the run's duration against the ideal records x latency / concurrency. The record count grows with the
   concurrency (``max(min_records, records_per_slot x concurrency)``), so every run has the same number of
   waves and low concurrencies do not take minutes.
2. The same work fanned out with ``AimlChatCompletionOperator.partial().expand()``: ``mapped`` records in
   ``dag.test()``, scaled to each batch's record count.
3. Peak memory (max RSS of the process running the DAG) of a batch of ``memory_records`` records.

The emulators run in their own processes on 127.0.0.1, so they do not compete with the client for the GIL.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (make bench-batch): make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import subprocess
import textwrap
from collections.abc import Sequence
from typing import Any

from benchmarks._common import (
    airflow_env,
    emulator_process,
    median,
    parse_result,
    table,
    temp_home,
    verdict,
)

NAME = "batch_throughput"
TITLE = "Batch enrichment"
FULL: dict[str, Any] = {
    "concurrencies": [1, 8, 32, 64, 128],
    "records_per_slot": 32,
    "min_records": 100,
    "latency": 0.1,
    "mapped": 100,
    "memory_records": 10_000,
    "repeat": 3,
    "fresh_processes": True,
}
QUICK: dict[str, Any] = {
    "concurrencies": [1, 8],
    "records_per_slot": 4,
    "min_records": 8,
    "latency": 0.05,
    "mapped": 3,
    "memory_records": 300,
    "repeat": 1,
    "fresh_processes": False,
}
MEMORY_CONCURRENCY = 64
OVERHEAD_TARGET_PCT = 15.0
OVERHEAD_AT = 32
SPEEDUP_TARGET = 10.0
SPEEDUP_AT = 32
MEMORY_TARGET_MB = 300.0

RUNNER = """
import json, resource, sys, threading, time
from airflow.utils import db
db.resetdb()
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
import os
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors


from airflow_provider_aiml.batch.runner import BatchRunner

batch_windows = []  # (start, end) clock times of every batch run: the calls, from first to last
_run = BatchRunner.run


async def timed_run(self):
    started = time.time()
    try:
        return await _run(self)
    finally:
        batch_windows.append((started, time.time()))


BatchRunner.run = timed_run


def sample_cpu(samples, stop):
    # This process's CPU time (all threads) every 0.1 s, against the clock: how busy the client was.
    while not stop.wait(0.1):
        samples.append((time.time(), time.process_time()))


def cpu_between(samples, start, end):
    # CPU use between two clock times, in cores (1.0 = one core busy all the time).
    inside = [sample for sample in samples if start <= sample[0] <= end]
    if len(inside) < 2:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


results = []
for dag_id in sys.argv[1:]:
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample_cpu, args=(samples, stop), daemon=True)
    sampler.start()
    started = time.perf_counter()
    dag_run = bag.dags[dag_id].test()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    tis = dag_run.get_task_instances()
    with create_session() as session:
        row = (
            session.query(XComModel.value)
            .filter_by(dag_id=dag_id, run_id=dag_run.run_id, key="batch")
            .one_or_none()
        )
    durations = [(ti.end_date - ti.start_date).total_seconds() for ti in tis if ti.end_date and ti.start_date]
    results.append({
        "dag_id": dag_id, "state": str(dag_run.state), "wall_s": wall, "tasks": len(tis),
        "task_s": max(durations) if durations else None,
        "batch_s": row.value["elapsed_s"] if row is not None else None,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mb": baseline_kb / 1024,
        "batch_cpu_cores": cpu_between(samples, *batch_windows[-1]) if row is not None and batch_windows else None,
    })
print("RESULT " + json.dumps(results))
"""


def records_for(concurrency: int, records_per_slot: int, min_records: int) -> int:
    """Records of the run at ``concurrency``: the same number of waves everywhere, at least ``min_records``."""
    return max(min_records, records_per_slot * concurrency)


def dag_source(specs: Sequence[dict[str, Any]]) -> str:
    """One DAG file holding a DAG per spec: ``{"dag_id", "kind": "batch"|"mapped", "records", "concurrency",
    "conn_id"}``."""
    parts = [
        "from datetime import datetime",
        "from airflow.sdk import DAG",
        "from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator",
        "from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator",
    ]
    for spec in specs:
        records = f'[f"record {{i}}: a short text to enrich" for i in range({int(spec["records"])})]'
        if spec["kind"] == "batch":
            task = (
                f'AimlBatchChatCompletionOperator(task_id="batch", aiml_conn_id={spec["conn_id"]!r}, inputs={records}, '
                f'prompt="Label this: {{{{ record }}}}", concurrency={int(spec["concurrency"])}, progress_interval=5, '
                "do_xcom_push=True)"
            )
        else:
            prompts = f'[f"Label this: record {{i}}: a short text to enrich" for i in range({int(spec["records"])})]'
            task = (
                f'AimlChatCompletionOperator.partial(task_id="chat", aiml_conn_id={spec["conn_id"]!r})'
                f".expand(prompt={prompts})"
            )
        parts += [
            "",
            f"with DAG({spec['dag_id']!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):",
            f"    {task}",
        ]
    return "\n".join(parts) + "\n"


def run_dags(
    specs: Sequence[dict[str, Any]], connections: dict[str, str], timeout: float = 1800
) -> list[dict[str, Any]]:
    """Run the DAGs of ``specs`` one after another with ``dag.test()`` in one fresh process and Airflow home."""
    with temp_home() as home:
        (home / "dags" / "bench_dags.py").write_text(dag_source(specs))
        env = airflow_env(home, connections) | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RUNNER), *(spec["dag_id"] for spec in specs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    results: list[dict[str, Any]] = parse_result(done, "dag.test() runner")  # type: ignore[assignment]
    for result in results:
        if "success" not in result["state"]:
            raise RuntimeError(f"{result['dag_id']} ended {result['state']}:\n{done.stderr[-3000:]}")
    return results


def run(
    *,
    concurrencies: Sequence[int] = FULL["concurrencies"],
    records_per_slot: int = FULL["records_per_slot"],
    min_records: int = FULL["min_records"],
    latency: float = FULL["latency"],
    mapped: int = FULL["mapped"],
    memory_records: int = FULL["memory_records"],
    repeat: int = FULL["repeat"],
    fresh_processes: bool = FULL["fresh_processes"],
    timeout: float = 1800,
) -> dict[str, Any]:
    """Batch runs at every concurrency, the ``.expand()`` reference and the memory run; medians and raw runs.

    ``fresh_processes=False`` runs everything in one process (the memory run first, as its peak RSS is the
    process's): for smoke checks only, as later runs then share a warm process.
    """
    specs: list[dict[str, Any]] = [
        {"dag_id": "bench_memory", "kind": "batch", "records": memory_records, "concurrency": MEMORY_CONCURRENCY}
        | {"conn_id": "aiml_memory"},
        *(
            {"dag_id": f"bench_batch_c{c}", "kind": "batch", "records": records_for(c, records_per_slot, min_records)}
            | {"concurrency": c, "conn_id": "aiml_default"}
            for c in concurrencies
        ),
        {"dag_id": "bench_mapped", "kind": "mapped", "records": mapped, "concurrency": 1, "conn_id": "aiml_default"},
        {"dag_id": "bench_mapped_small", "kind": "mapped", "records": max(1, mapped // 10), "concurrency": 1}
        | {"conn_id": "aiml_default"},
    ]
    runs: dict[str, list[dict[str, Any]]] = {spec["dag_id"]: [] for spec in specs}
    with emulator_process("--latency", str(latency)) as slow, emulator_process() as fast:
        connections = {"aiml_default": slow.base_url, "aiml_memory": fast.base_url}
        for _ in range(repeat):
            batches = [[spec] for spec in specs] if fresh_processes else [specs]
            for batch in batches:
                for result in run_dags(batch, connections, timeout):
                    runs[result["dag_id"]].append(result)
                    print(f"  {result['dag_id']}: {result['wall_s']:.2f} s end to end", flush=True)
    result = summarize(runs, specs, latency=latency, repeat=repeat, fresh_processes=fresh_processes)
    result["params"] |= {"records_per_slot": records_per_slot, "min_records": min_records}
    return result


def summarize(
    runs: dict[str, list[dict[str, Any]]],
    specs: Sequence[dict[str, Any]],
    *,
    latency: float,
    repeat: int,
    fresh_processes: bool,
) -> dict[str, Any]:
    """Medians, ideals, overheads and speed-ups from the raw runs."""
    by_id = {spec["dag_id"]: spec for spec in specs}
    mapped_runs, small_runs = runs["bench_mapped"], runs["bench_mapped_small"]
    mapped_tasks, small_tasks = by_id["bench_mapped"]["records"], by_id["bench_mapped_small"]["records"]
    mapped_wall, small_wall = median([r["wall_s"] for r in mapped_runs]), median([r["wall_s"] for r in small_runs])
    # A dag.test() run has a fixed cost (DAG run set-up, its in-process API server) and a cost per mapped task:
    # both from the two sizes, so that scaling to more records scales only the per-task part.
    if mapped_tasks > small_tasks:
        per_task = max(0.0, (mapped_wall - small_wall) / (mapped_tasks - small_tasks))
        fixed = max(0.0, small_wall - per_task * small_tasks)
    else:
        per_task, fixed = mapped_wall / mapped_tasks, 0.0
    rows = []
    for dag_id, spec in by_id.items():
        if not dag_id.startswith("bench_batch_c"):
            continue
        batch_runs = runs[dag_id]
        ideal = spec["records"] * latency / spec["concurrency"]
        batch_s = median([r["batch_s"] for r in batch_runs])
        wall = median([r["wall_s"] for r in batch_runs])
        expand_scaled = fixed + per_task * spec["records"]
        rows.append(
            {
                "concurrency": spec["concurrency"],
                "records": spec["records"],
                "ideal_s": ideal,
                "batch_s": batch_s,
                "task_s": median([r["task_s"] for r in batch_runs]),
                "wall_s": wall,
                "overhead_pct": (batch_s / ideal - 1) * 100,
                "records_per_s": spec["records"] / batch_s,
                "batch_cpu_cores": _median_or_none([r["batch_cpu_cores"] for r in batch_runs]),
                "expand_scaled_s": expand_scaled,
                "speedup": expand_scaled / wall,
                "runs_batch_s": [round(r["batch_s"], 3) for r in batch_runs],
                "runs_wall_s": [round(r["wall_s"], 2) for r in batch_runs],
            }
        )
    memory_runs = runs["bench_memory"]
    memory = {
        "records": by_id["bench_memory"]["records"],
        "concurrency": MEMORY_CONCURRENCY,
        "max_rss_mb": median([r["max_rss_mb"] for r in memory_runs]),
        "baseline_rss_mb": median([r["baseline_rss_mb"] for r in memory_runs]),
        "runs_max_rss_mb": [round(r["max_rss_mb"]) for r in memory_runs],
    }
    result: dict[str, Any] = {
        "params": {"latency": latency, "repeat": repeat, "fresh_processes": fresh_processes, "mapped": mapped_tasks},
        "concurrency": rows,
        "mapped": {
            "tasks": mapped_tasks,
            "wall_s": mapped_wall,
            "small_tasks": small_tasks,
            "small_wall_s": small_wall,
            "per_task_s": per_task,
            "fixed_s": fixed,
            "runs_wall_s": [round(r["wall_s"], 2) for r in mapped_runs],
            "runs_small_wall_s": [round(r["wall_s"], 2) for r in small_runs],
        },
        "memory": memory,
    }
    result["targets"] = _targets(result)
    return result


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return median(known) if known else None


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    # Issue 4 sets the 15% goal at concurrency 32; the other concurrencies are measured against the same ideal
    # and reported, without a verdict.
    targets = [
        {
            "what": f"Concurrency {row['concurrency']}: batch run vs ideal ({row['records']:,} records)",
            "target": f"within {OVERHEAD_TARGET_PCT:.0f}%" if row["concurrency"] == OVERHEAD_AT else "(reference)",
            "value": f"{row['overhead_pct']:+.1f}%",
            "ok": row["overhead_pct"] <= OVERHEAD_TARGET_PCT if row["concurrency"] == OVERHEAD_AT else None,
        }
        for row in result["concurrency"]
    ]
    for row in result["concurrency"]:
        if row["concurrency"] == SPEEDUP_AT:
            targets.append(
                {
                    "what": f"Concurrency {SPEEDUP_AT}: batch DAG run vs `.expand()`, end to end",
                    "target": f">= {SPEEDUP_TARGET:.0f}x",
                    "value": f"{row['speedup']:.1f}x",
                    "ok": row["speedup"] >= SPEEDUP_TARGET,
                }
            )
    memory = result["memory"]
    targets.append(
        {
            "what": f"Peak memory, {memory['records']:,} records (concurrency {memory['concurrency']})",
            "target": f"< {MEMORY_TARGET_MB:.0f} MB",
            "value": f"{memory['max_rss_mb']:.0f} MB",
            "ok": memory["max_rss_mb"] < MEMORY_TARGET_MB,
        }
    )
    return targets


# --- report ----------------------------------------------------------------------------------------------------


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p, mapped, memory = result["params"], result["mapped"], result["memory"]
    lines = [
        f"## {TITLE}",
        "",
        f"`AimlBatchChatCompletionOperator` in `dag.test()`, the emulator answering every call after "
        f"{p['latency'] * 1000:.0f} ms. Each figure is the median of {p['repeat']} runs"
        + (", every run a fresh process and Airflow home." if p["fresh_processes"] else " (all in one process)."),
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
    ]
    if img:
        lines += [f"![Records per second against concurrency]({img})", ""]
    rows = [
        (
            row["concurrency"],
            f"{row['records']:,}",
            f"{row['ideal_s']:.2f}",
            f"{row['batch_s']:.2f}",
            f"{row['overhead_pct']:+.1f}%",
            f"{row['records_per_s']:,.0f}",
            "n/a" if row["batch_cpu_cores"] is None else f"{row['batch_cpu_cores'] * 100:.0f}%",
            f"{row['task_s']:.2f}",
            f"{row['wall_s']:.2f}",
            f"{row['expand_scaled_s']:.1f}",
            f"{row['speedup']:.1f}x",
        )
        for row in result["concurrency"]
    ]
    header = (
        "Concurrency",
        "Records",
        "Ideal s",
        "Batch run s",
        "vs ideal",
        "Records/s",
        "Client CPU",
        "Task s",
        "DAG run s",
        "`.expand()` s (scaled)",
        "Speed-up",
    )
    lines += [
        *table(header, rows),
        "",
        f"- **Records** = max({p['min_records']}, {p['records_per_slot']} x concurrency): the same number of waves "
        f"of calls at every concurrency above {p['min_records'] // p['records_per_slot']}, and no run of minutes at "
        "concurrency 1 (1,000 records at 100 ms would take 100 s there).",
        "- **Ideal** = records x latency / concurrency: the emulator's waits alone. **Batch run** is the operator's "
        "own `elapsed_s` (first call to last result, XCom `batch`). **Task** adds rendering and checking every "
        "record, XCom, and `dag.test()`'s one-time start of its in-process API server. **DAG run** is "
        "`dag.test()` end to end.",
        f"- **`.expand()`**: the same calls as `AimlChatCompletionOperator.partial().expand()`, one mapped task "
        f"per record. {mapped['small_tasks']} and {mapped['tasks']} mapped tasks took {mapped['small_wall_s']:.2f} "
        f"and {mapped['wall_s']:.2f} s end to end (runs {', '.join(f'{v:.2f}' for v in mapped['runs_small_wall_s'])} "
        f"and {', '.join(f'{v:.2f}' for v in mapped['runs_wall_s'])} s): {mapped['per_task_s'] * 1000:.0f} ms per "
        f"mapped task on top of {mapped['fixed_s']:.2f} s per `dag.test()` run. Each row's `.expand()` time is "
        "that fixed part plus the per-task part times its records. `dag.test()` runs mapped task instances one "
        "after another; a deployment runs them in parallel on its workers, but pays a scheduling round trip and "
        "a worker process per task instead.",
        "- **Speed-up** compares the DAG runs end to end (batch DAG run vs scaled `.expand()` DAG run).",
        f"- **Memory.** The peak RSS of the whole process running the DAG ({memory['records']:,} records, "
        f"concurrency {memory['concurrency']}, emulator without latency): {memory['max_rss_mb']:.0f} MB, of which "
        f"{memory['baseline_rss_mb']:.0f} MB before the run (Airflow, its in-process API server for `dag.test()`); "
        f"runs {', '.join(str(v) for v in memory['runs_max_rss_mb'])} MB.",
        "- Batch run times of each run: "
        + "; ".join(
            f"c={row['concurrency']}: {', '.join(f'{v:.2f}' for v in row['runs_batch_s'])} s"
            for row in result["concurrency"]
        )
        + ".",
        f"- **Goal.** Issue 4 asks for 1,000 records at concurrency {OVERHEAD_AT} within {OVERHEAD_TARGET_PCT:.0f}% "
        "of the ideal; the other concurrencies are measured the same way for reference.",
        "- **Client CPU** is the CPU time of the process running the DAG (all its threads, "
        "`time.process_time()` sampled every 0.1 s) while the batch's calls ran (from the start to the end of "
        "the batch runner), in percent of one core. The batch's calls run on one event loop in that process: "
        "near 100%, the client's own CPU time per call (the async HTTP stack, parsing, bookkeeping), not the "
        "waits, sets the pace, and that is where the largest concurrencies fall behind the ideal on this "
        "machine. The emulator, a thread per connection in one Python process, has the other core. Against the "
        "real API, whose calls take seconds to minutes, the waits dominate.",
        "",
    ]
    return lines


def plot(result: dict[str, Any], path: Path) -> None:
    """Records per second against concurrency: ideal, batch run, batch DAG run and ``.expand()``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["concurrency"]
    xs = [row["concurrency"] for row in rows]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(xs, [row["records"] / row["ideal_s"] for row in rows], "k--", label="ideal (concurrency / latency)")
    ax.plot(xs, [row["records_per_s"] for row in rows], "o-", label="batch run (first call to last result)")
    ax.plot(xs, [row["records"] / row["wall_s"] for row in rows], "s-", label="batch DAG run, end to end")
    ax.plot(
        xs,
        [row["records"] / row["expand_scaled_s"] for row in rows],
        "-",
        color="#d62728",
        label=".expand() DAG run, same records (dag.test, serial)",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("records per second (higher is better)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """``make bench-batch``: this benchmark alone, through ``python -m benchmarks --only batch_throughput``."""
    from benchmarks.__main__ import main as suite

    return suite(["--only", NAME, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

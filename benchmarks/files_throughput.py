"""Vision batches over files in S3: throughput, CPU per page and peak memory, end to end through Airflow.

    .venv/bin/python benchmarks/files_throughput.py     # this benchmark only (writes build/benchmarks/)
    .venv/bin/python -m benchmarks                      # every benchmark, writes docs/benchmarks.md

What it measures, against a real S3 server (moto's, in its own process on 127.0.0.1) and the emulator (its own
process, answering every call after ``latency`` seconds):

1. ``AimlBatchChatCompletionOperator`` over ``pdfs`` two-page PDFs listed from an ``s3://`` glob, at
   ``concurrency``: the batch's duration against the ideal records x latency / concurrency, for small receipt
   pages and for A4 invoice pages, with the process's CPU use during the batch and its peak memory.
2. The CPU one page costs (read, render with PDFium, text layer, JPEG, base64), timed alone in one thread.
3. Peak memory of one chat call over a single 200-page PDF, and of fitting one ~30 MB photo, each in a fresh
   process (max RSS against the process's RSS before the call).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib
import json
import os
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import (
    airflow_env,
    clean_env,
    emulator_process,
    median,
    parse_result,
    stop_process,
    table,
    temp_home,
    verdict,
)
from benchmarks.batch_throughput import RUNNER

NAME = "files_throughput"
TITLE = "Vision batches over files in S3"
FULL: dict[str, Any] = {
    "pdfs": 1000,
    "concurrency": 32,
    "latency": 0.1,
    "long_pdf_pages": 200,
    "photo_size": [7000, 5000],
    "repeat": 3,
}
QUICK: dict[str, Any] = {
    "pdfs": 24,
    "concurrency": 8,
    "latency": 0.05,
    "long_pdf_pages": 20,
    "photo_size": [2000, 1500],
    "repeat": 1,
}
OVERHEAD_TARGET_PCT = 25.0
MEMORY_TARGET_MB = 400.0
BUCKET = "aiml-bench"
PAGE_SIZES = {"receipt": (80, 150), "A4": "A4"}
S3_CONN = "aws_bench"


@contextlib.contextmanager
def s3_server_process() -> Iterator[tuple[str, int]]:
    """``python -m moto.server`` on a free port of 127.0.0.1; yields its endpoint URL and pid, stops it after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the S3 server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_process(process)


def s3_connection(endpoint: str) -> str:
    extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": "bench", "password": "bench", "extra": extra})


UPLOAD = """
import json, sys
import boto3
from airflow_provider_aiml.testing.samples import make_invoice_pdf, make_large_photo, make_long_pdf
endpoint, bucket, pdfs, long_pdf_pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
page_sizes, photo_size = json.loads(sys.argv[5]), json.loads(sys.argv[6])
client = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
)
client.create_bucket(Bucket=bucket)
sizes = {}
for kind, size in page_sizes.items():
    size = size if isinstance(size, str) else tuple(size)
    total = 0
    for number in range(pdfs):
        data = make_invoice_pdf(number, pages=2, page_size=size)
        client.put_object(Bucket=bucket, Key=f"{kind}/doc-{number:05d}.pdf", Body=data)
        total += len(data)
    sizes[kind] = total
long_pdf = make_long_pdf(long_pdf_pages)
client.put_object(Bucket=bucket, Key="long/report.pdf", Body=long_pdf)
photo = make_large_photo(*photo_size)
client.put_object(Bucket=bucket, Key="photos/large.jpg", Body=photo)
sizes |= {"long_pdf": len(long_pdf), "photo": len(photo)}
print("RESULT " + json.dumps(sizes))
"""


def upload(endpoint: str, pdfs: int, long_pdf_pages: int, photo_size: list[int]) -> dict[str, int]:
    """The PDFs of every page size, the long PDF and the large photo, made and uploaded in a process of their
    own (Linux keeps a process's peak RSS across exec: the DAG runs must not start from this one's); returns the
    bytes uploaded of each kind."""
    args = (endpoint, BUCKET, str(pdfs), str(long_pdf_pages), json.dumps(PAGE_SIZES), json.dumps(photo_size))
    return run_script(UPLOAD, *args, env=clean_env())


def dag_source(concurrency: int) -> str:
    """A batch DAG per page size, and the chat DAG over the long PDF."""
    lines = [
        "from datetime import datetime",
        "from airflow.sdk import DAG",
        "from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator",
        "from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator",
    ]
    for kind in PAGE_SIZES:
        lines += [
            "",
            f"with DAG('bench_files_{kind.lower()}', schedule=None, start_date=datetime(2026, 1, 1), catchup=False):",
            f"    AimlBatchChatCompletionOperator(task_id='batch', inputs='s3://{BUCKET}/{kind}/*.pdf',",
            f"        storage_conn_id={S3_CONN!r}, prompt='Extract the totals of {{{{ record.name }}}}.',",
            f"        concurrency={concurrency}, max_files=100_000, progress_interval=5)",
        ]
    lines += [
        "",
        "with DAG('bench_files_long_pdf', schedule=None, start_date=datetime(2026, 1, 1), catchup=False):",
        f"    AimlChatCompletionOperator(task_id='chat', aiml_conn_id='aiml_big', storage_conn_id={S3_CONN!r},",
        f"        prompt='Summarize the report.', images='s3://{BUCKET}/long/report.pdf', max_pages=None)",
    ]
    return "\n".join(lines) + "\n"


def run_dag(dag_id: str, concurrency: int, connections: dict[str, str], s3_endpoint: str) -> dict[str, Any]:
    """One DAG in a fresh process and Airflow home (its max RSS is that run's alone)."""
    with temp_home() as home:
        (home / "dags" / "bench_files.py").write_text(dag_source(concurrency))
        env = airflow_env(home, connections) | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        env[f"AIRFLOW_CONN_{S3_CONN.upper()}"] = s3_connection(s3_endpoint)
        big = json.loads(env["AIRFLOW_CONN_AIML_BIG"])
        env["AIRFLOW_CONN_AIML_BIG"] = json.dumps(big | {"extra": {**big["extra"], "max_request_mb": 96}})
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RUNNER), dag_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    (result,) = parse_result(done, f"{dag_id} runner")  # type: ignore[misc]
    if "success" not in result["state"]:
        raise RuntimeError(f"{dag_id} ended {result['state']}:\n{done.stderr[-3000:]}")
    return dict(result)


PAGE_COST = """
import json, sys, time
import pypdfium2  # noqa: F401 (imported before timing)
from airflow_provider_aiml.media.pdf import PdfOptions, opened_pdf
from airflow_provider_aiml.testing.samples import make_invoice_pdf
result = {}
for kind, size in json.loads(sys.argv[1]).items():
    size = size if isinstance(size, str) else tuple(size)
    documents = [make_invoice_pdf(n, pages=2, page_size=size) for n in range(40)]
    started = time.process_time()
    pages = 0
    for number, data in enumerate(documents):
        with opened_pdf(data, f"doc-{number}.pdf", PdfOptions()) as pdf:
            for part in pdf.parts():
                pages += part["type"] == "image_url"
    result[kind] = (time.process_time() - started) / pages * 1000
print("RESULT " + json.dumps(result))
"""

PHOTO_MEMORY = """
import json, resource, sys
from airflow.sdk import ObjectStoragePath
from airflow_provider_aiml.media.attachments import MediaOptions, attachment_parts
path = ObjectStoragePath(sys.argv[1], conn_id=sys.argv[2])
path.fs.info(path.path)  # the S3 client is made (and botocore loaded) before the baseline is taken
import PIL.Image, PIL.JpegImagePlugin  # noqa: E401,F401 (loaded before the baseline too)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
parts = attachment_parts(path, MediaOptions())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps({"before_mb": before, "peak_mb": after, "sent_bytes": len(parts[0]["image_url"]["url"])}))
"""


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds each process has used so far."""
    import psutil

    return {name: sum(psutil.Process(pid).cpu_times()[:2]) for name, pid in pids.items()}


def run_script(source: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return parse_result(done, "benchmark script")


def run(
    *,
    pdfs: int = FULL["pdfs"],
    concurrency: int = FULL["concurrency"],
    latency: float = FULL["latency"],
    long_pdf_pages: int = FULL["long_pdf_pages"],
    photo_size: list[int] = FULL["photo_size"],
    repeat: int = FULL["repeat"],
) -> dict[str, Any]:
    """Every measurement of this benchmark; medians of ``repeat`` runs for the batches."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PAGE_SIZES}
    with (
        s3_server_process() as (s3, s3_pid),
        emulator_process("--latency", str(latency)) as slow,
        emulator_process() as fast,
    ):
        sizes = upload(s3, pdfs, long_pdf_pages, photo_size)
        connections = {"aiml_default": slow.base_url, "aiml_big": fast.base_url}
        servers = {"s3": s3_pid, "emulator": slow.process.pid}
        for _ in range(repeat):
            for kind in PAGE_SIZES:
                before = cpu_seconds(servers)
                result = run_dag(f"bench_files_{kind.lower()}", concurrency, connections, s3)
                after = cpu_seconds(servers)
                result["server_cpu_s"] = {name: after[name] - before[name] for name in servers}
                runs[kind].append(result)
                print(
                    f"  {kind}: batch {result['batch_s']:.2f} s, max RSS {result['max_rss_mb']:.0f} MB, "
                    f"server CPU {result['server_cpu_s']}",
                    flush=True,
                )
        long_run = run_dag("bench_files_long_pdf", concurrency, connections, s3)
        with temp_home() as home:
            env = airflow_env(home) | {f"AIRFLOW_CONN_{S3_CONN.upper()}": s3_connection(s3)}
            photo = run_script(PHOTO_MEMORY, f"s3://{BUCKET}/photos/large.jpg", S3_CONN, env=env)
            page_ms = run_script(PAGE_COST, json.dumps(PAGE_SIZES), env=env)
    ideal = pdfs * latency / concurrency
    cores = os.cpu_count() or 1
    rows = []
    for kind, kind_runs in runs.items():
        batch_s = median([r["batch_s"] for r in kind_runs])
        rows.append(
            {
                "pages": kind,
                "pdfs": pdfs,
                "ideal_s": ideal,
                "batch_s": batch_s,
                "overhead_pct": (batch_s / ideal - 1) * 100,
                "cpu_cores": median([r["batch_cpu_cores"] or 0.0 for r in kind_runs]),
                "page_cpu_ms": page_ms[kind],
                "max_rss_mb": median([r["max_rss_mb"] for r in kind_runs]),
                "baseline_rss_mb": median([r["baseline_rss_mb"] for r in kind_runs]),
                "mb_uploaded": sizes[kind] / 1e6,
                "s3_cpu_s": median([r["server_cpu_s"]["s3"] for r in kind_runs]),
                "emulator_cpu_s": median([r["server_cpu_s"]["emulator"] for r in kind_runs]),
                "client_cpu_ms_per_pdf": median([(r["batch_cpu_cores"] or 0.0) * r["batch_s"] for r in kind_runs])
                / pdfs
                * 1000,
                "runs_batch_s": [round(r["batch_s"], 3) for r in kind_runs],
            }
        )
    for row in rows:  # the batch cannot beat the CPU its three processes need, spread over every core
        client_cpu_s = row["client_cpu_ms_per_pdf"] * pdfs / 1000
        row["cpu_floor_s"] = (client_cpu_s + row["s3_cpu_s"] + row["emulator_cpu_s"]) / cores
    result: dict[str, Any] = {
        "params": {"pdfs": pdfs, "concurrency": concurrency, "latency": latency, "repeat": repeat, "cores": cores},
        "batches": rows,
        "long_pdf": {
            "pages": long_pdf_pages,
            "mb": sizes["long_pdf"] / 1e6,
            "max_rss_mb": long_run["max_rss_mb"],
            "baseline_rss_mb": long_run["baseline_rss_mb"],
            "wall_s": long_run["wall_s"],
        },
        "photo": {"mb": sizes["photo"] / 1e6, "size": photo_size, **photo},
    }
    result["targets"] = _targets(result)
    return result


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    p = result["params"]
    targets = [
        {
            "what": f"{p['pdfs']:,} two-page PDFs ({row['pages']} pages) from S3, concurrency {p['concurrency']}: "
            "batch vs ideal",
            "target": f"within {OVERHEAD_TARGET_PCT:.0f}%",
            "value": f"{row['overhead_pct']:+.1f}% ({row['batch_s']:.2f} s vs {row['ideal_s']:.2f} s)",
            "ok": row["overhead_pct"] <= OVERHEAD_TARGET_PCT,
        }
        for row in result["batches"]
    ]
    targets += [
        {
            "what": f"Peak memory, {p['pdfs']:,} PDFs ({row['pages']} pages)",
            "target": f"< {MEMORY_TARGET_MB:.0f} MB",
            "value": f"{row['max_rss_mb']:.0f} MB",
            "ok": row["max_rss_mb"] < MEMORY_TARGET_MB,
        }
        for row in result["batches"]
    ]
    long_pdf = result["long_pdf"]
    targets.append(
        {
            "what": f"Peak memory, one {long_pdf['pages']}-page PDF in one call",
            "target": f"< {MEMORY_TARGET_MB:.0f} MB",
            "value": f"{long_pdf['max_rss_mb']:.0f} MB",
            "ok": long_pdf["max_rss_mb"] < MEMORY_TARGET_MB,
        }
    )
    photo = result["photo"]
    growth = photo["peak_mb"] - photo["before_mb"]
    targets.append(
        {
            "what": f"Memory to fit one {photo['mb']:.0f} MB photo from S3",
            "target": "a small multiple of its size",
            "value": f"+{growth:.0f} MB ({growth / photo['mb']:.1f}x the file)",
            "ok": growth / photo["mb"] <= 4,
        }
    )
    return targets


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p, long_pdf, photo = result["params"], result["long_pdf"], result["photo"]
    lines = [
        f"## {TITLE}",
        "",
        f"`AimlBatchChatCompletionOperator` over an `s3://` glob of {p['pdfs']:,} two-page PDFs in `dag.test()`: a "
        f"real S3 server (moto) and the emulator (answering after {p['latency'] * 1000:.0f} ms) each in their own "
        f"process on this machine, concurrency {p['concurrency']}, default PDF settings (100 DPI, text layer and "
        f"page image). Batch figures are the median of {p['repeat']} runs, each in a fresh process and Airflow home.",
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
        *table(
            (
                "Pages",
                "PDFs in S3",
                "Ideal s",
                "Batch s",
                "vs ideal",
                "CPU per page",
                "Client CPU per PDF",
                "Client CPU",
                "S3 server CPU",
                "Emulator CPU",
                "CPU floor",
                "Peak RSS",
            ),
            [
                (
                    row["pages"],
                    f"{row['pdfs']:,} ({row['mb_uploaded']:.1f} MB)",
                    f"{row['ideal_s']:.2f}",
                    f"{row['batch_s']:.2f}",
                    f"{row['overhead_pct']:+.1f}%",
                    f"{row['page_cpu_ms']:.1f} ms",
                    f"{row['client_cpu_ms_per_pdf']:.1f} ms",
                    f"{row['cpu_cores'] * 100:.0f}%",
                    f"{row['s3_cpu_s']:.1f} s",
                    f"{row['emulator_cpu_s']:.1f} s",
                    f"{row['cpu_floor_s']:.2f} s",
                    f"{row['max_rss_mb']:.0f} MB",
                )
                for row in result["batches"]
            ],
        ),
        "",
        "- CPU per page: reading the text layer, rendering with PDFium, JPEG encoding and base64, timed alone in one "
        "thread. Client CPU: the DAG process's CPU time during the batch, in cores. S3 server and emulator CPU: "
        "the CPU seconds those two processes used during the whole DAG run. All three share the machine's "
        f"{p['cores']} cores: CPU floor = (client + S3 server + emulator CPU seconds) / {p['cores']}, the shortest "
        "the batch could take on this machine if every core were busy all the time.",
        f"- One {long_pdf['pages']}-page PDF ({long_pdf['mb']:.1f} MB) sent in one call: peak RSS "
        f"{long_pdf['max_rss_mb']:.0f} MB ({long_pdf['baseline_rss_mb']:.0f} MB before the run), "
        f"{long_pdf['wall_s']:.1f} s end to end. The pages are rendered one at a time; the request body holds "
        "every page's JPEG.",
        f"- One {photo['mb']:.1f} MB JPEG ({photo['size'][0]}x{photo['size'][1]}) read from S3 and fitted: the "
        f"process grew from {photo['before_mb']:.0f} to {photo['peak_mb']:.0f} MB; "
        f"{photo['sent_bytes'] / 1e6:.2f} MB sent (base64).",
        "",
    ]
    for row in result["batches"]:
        lines.append(
            f"- {row['pages']} pages: the CPU floor alone is {row['cpu_floor_s'] / row['ideal_s']:.1f}x the ideal, "
            f"so the batch cannot come within {OVERHEAD_TARGET_PCT:.0f}% of it on this machine; it took "
            f"{row['batch_s'] / row['cpu_floor_s']:.2f}x its floor (the client's Python work runs on one core)."
        )
    lines.append("")
    if img:
        lines += [f"![Batch duration, ideal and CPU floor per page size]({img})", ""]
    return lines


def plot(result: dict[str, Any], path: Path) -> None:
    """Per page size: the batch's duration, the ideal and the CPU floor of this machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["batches"]
    fig, axis = plt.subplots(figsize=(7, 3))
    y = range(len(rows))
    axis.barh([i - 0.25 for i in y], [r["ideal_s"] for r in rows], height=0.25, label="ideal", color="#bbbbbb")
    axis.barh(list(y), [r["cpu_floor_s"] for r in rows], height=0.25, label="CPU floor", color="#ff7f0e")
    axis.barh([i + 0.25 for i in y], [r["batch_s"] for r in rows], height=0.25, label="batch", color="#1f77b4")
    axis.set_yticks(list(y), [f"{r['pdfs']:,} PDFs, {r['pages']} pages" for r in rows], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("seconds (lower is better)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run(**(QUICK if args.quick else FULL))
    print("\n".join(report(result, None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

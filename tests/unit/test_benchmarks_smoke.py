"""The benchmark suite still runs: every benchmark's ``run()`` at tiny sizes, its report and its plot.

No timing is asserted (figures from a busy test machine mean nothing); only the shape of the results, that the
numbers are positive, and the correctness checks the benchmarks make (one HTTP request per call).
"""

from __future__ import annotations

import ast
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as suite
from benchmarks import (
    agent_loop,
    batch_throughput,
    catalog_check,
    embeddings_throughput,
    files_throughput,
    import_parse,
    limiter,
    overhead,
    streaming,
)
from benchmarks._common import has_module

REPO = Path(__file__).resolve().parents[2]
SMOKE: dict[str, dict[str, Any]] = {  # the batch first: it takes as long as the three others
    batch_throughput.NAME: {
        "concurrencies": [2],
        "records_per_slot": 2,
        "min_records": 4,
        "latency": 0.01,
        "mapped": 2,
        "memory_records": 10,
        "repeat": 1,
        "fresh_processes": False,
    },
    overhead.NAME: {"sync_calls": 10, "async_calls": 16, "concurrency": 4, "repeat": 1, "warmup": 1},
    streaming.NAME: {"lines": 4, "chunk_delay": 0.002, "chunks": 40, "repeat": 1},
    import_parse.NAME: {"imports": 1, "parses": 1, "files": ["example_aiml_deferrable.py"]},
    agent_loop.NAME: {
        "steps": 3,
        "rounds": 1,
        "warmup": 1,
        "tool_seconds": 0.05,
        "parallel_calls": 4,
        "parallel_repeat": 1,
        "piece_calls": 20,
    },
    files_throughput.NAME: {
        "pdfs": 3,
        "concurrency": 2,
        "latency": 0.01,
        "long_pdf_pages": 3,
        "photo_size": [600, 400],
        "repeat": 1,
    },
    embeddings_throughput.NAME: {"texts": 40, "batch_size": 8, "concurrency": 2, "dimensions": 8, "repeat": 1},
    limiter.NAME: {"calls": 3, "rounds": 1, "warmup": 1, "concurrency": 2, "concurrent_calls": 4, "operations": 10},
    catalog_check.NAME: {"calls": 5, "rounds": 1, "warmup": 2},
}


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value > 0


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """Every benchmark once, at smoke sizes; two at a time, as each mostly waits for its own processes."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(suite.BENCHMARKS[name][0].run, **sizes) for name, sizes in SMOKE.items()}
        return {name: future.result() for name, future in futures.items()}


def test_overhead_counts_one_request_per_call(results: dict[str, Any]) -> None:
    result = results[overhead.NAME]
    expected = {overhead.RAW, overhead.HTTPX, overhead.HOOK, overhead.HOOK_QUIET}
    if has_module("openai"):
        expected.add(overhead.OPENAI)
    for mode in ("sync", "async"):
        assert set(result[mode]) == expected
        for summary in result[mode].values():
            assert positive(summary["calls_per_s"])
            assert positive(summary["cpu_us_per_call"])
            assert positive(summary["time_vs_httpx"])
            assert summary["requests_per_call"] == 1.0
        assert result[mode][overhead.HOOK]["log_lines_per_call"] >= 1
        assert result[mode][overhead.HOOK_QUIET]["log_lines_per_call"] == 0
    assert result["targets"]
    assert all(isinstance(target["ok"], bool) for target in result["targets"])


def test_streaming_latency_and_throughput(results: dict[str, Any]) -> None:
    result = results[streaming.NAME]
    assert set(result["latency"]) == {streaming.OPERATOR, streaming.OPERATOR_LOG, streaming.BARE}
    for summary in result["latency"].values():
        assert positive(summary["samples"])
        assert positive(summary["p50_ms"])
        assert summary["p99_ms"] >= summary["p50_ms"]
    assert {streaming.RAW, streaming.BARE, streaming.HOOK} <= set(result["throughput"])
    for summary in result["throughput"].values():
        assert positive(summary["chunks_per_s"])
        assert summary["events"] > SMOKE[streaming.NAME]["chunks"]
        assert summary["requests_per_stream"] == 1


def test_import_and_parse(results: dict[str, Any]) -> None:
    result = results[import_parse.NAME]
    assert positive(result["import"]["provider_ms"])
    assert result["import"]["top_modules"]
    entry = result["parse"]["example_aiml_deferrable.py"]
    assert entry["tasks"] == 1
    for phase in ("cold", "warm"):
        assert positive(entry[phase]["provider_ms"])
        assert positive(entry[phase]["twin_ms"])


def test_batch(results: dict[str, Any]) -> None:
    result = results[batch_throughput.NAME]
    (row,) = result["concurrency"]
    assert row["concurrency"] == 2
    assert row["records"] == 4
    for key in ("ideal_s", "batch_s", "task_s", "wall_s", "expand_scaled_s", "speedup"):
        assert positive(row[key]), key
    assert positive(result["mapped"]["wall_s"])
    assert positive(result["memory"]["max_rss_mb"])


def test_catalog_check_answers_every_measured_call_from_the_cache(results: dict[str, Any]) -> None:
    result = results[catalog_check.NAME]
    assert result["requests_while_measured"] == 0
    assert result["catalog_requests"] >= len(catalog_check.CASES)  # each model's entry was read, once
    for figures in result["cases"].values():
        assert figures["has_entry"]
        assert all(positive(figures[key]) for key in ("on_us", "off_us", "check_alone_us"))


def test_page_and_plots(results: dict[str, Any], tmp_path: Path) -> None:
    plots = suite._plots(results, tmp_path, tmp_path) if has_module("matplotlib") else {}
    page = suite.render(results, plots, dict.fromkeys(results, 1.0), started=datetime.now(UTC), quick=True, argv=[])
    for module, _ in suite.BENCHMARKS.values():
        assert f"## {module.TITLE}" in page
    assert "FAILED" not in page
    for name, shown in plots.items():
        assert shown is not None, name
        assert (tmp_path / shown).stat().st_size > 0, name


@pytest.mark.parametrize("path", sorted((REPO / "example_dags").glob("example_*.py")), ids=lambda p: p.name)
def test_every_example_dag_has_a_twin(path: Path) -> None:
    """The parse benchmark covers every example DAG: its twin generator must understand each of them."""
    twin = import_parse.make_twin(path.read_text())
    ast.parse(twin)
    assert "airflow_provider_aiml" not in twin
    assert "EmptyOperator" in twin or "@task" in twin


def test_files_benchmark_runs_every_page_size_and_the_memory_checks(results: dict[str, Any]) -> None:
    result = results[files_throughput.NAME]
    assert [row["pages"] for row in result["batches"]] == list(files_throughput.PAGE_SIZES)
    for row in result["batches"]:
        assert positive(row["batch_s"])
        assert positive(row["page_cpu_ms"])
        assert positive(row["cpu_floor_s"])
    assert positive(result["long_pdf"]["max_rss_mb"])
    assert result["photo"]["sent_bytes"] > 0
    assert "## Vision batches over files in S3" in files_throughput.report(result, None)


def test_embeddings_benchmark_times_both_clients_over_the_same_requests(results: dict[str, Any]) -> None:
    result = results[embeddings_throughput.NAME]
    assert result["requests"] == 5  # 40 texts in requests of 8
    assert positive(result["hook_s"])
    assert positive(result["httpx_s"])
    assert result["log_lines"] == 1  # one summary line per aembed call (one round)

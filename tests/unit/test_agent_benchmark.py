"""The agent-loop benchmark still runs: ``run()`` at tiny sizes, its report and its plot.

As in ``test_benchmarks_smoke.py``, no speed is asserted; only the shape of the results and the checks the benchmark
makes: every loop sent the same request bodies and ``steps`` requests per run, and parallel tool calls overlap
(four calls start before the first ends; with eight, the semaphore holds the last four back).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import agent_loop
from benchmarks._common import has_module, pinned_to, separate_cores

SIZES: dict[str, Any] = {
    "steps": 3,
    "rounds": 1,
    "warmup": 1,
    "tool_seconds": 0.1,
    "parallel_calls": 4,
    "parallel_repeat": 1,
    "piece_calls": 20,
}


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value > 0


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return agent_loop.run(**SIZES)


def test_every_loop_sends_the_same_requests(result: dict[str, Any]) -> None:
    assert result["body_differences"] == {}
    assert set(result["loops"]) == set(agent_loop.LOOPS)
    for name, summary in result["loops"].items():
        assert summary["requests_per_run"] == SIZES["steps"], name
        assert positive(summary["step_ms"]), name
        assert positive(summary["vs_hand"]), name
    loops = result["loops"]
    # a step line for every step (the hook logs no summary of its own), a tool line for every tool call
    assert loops[agent_loop.AGENT]["log_lines_per_step"] == pytest.approx((2 * SIZES["steps"] - 1) / SIZES["steps"])
    assert loops[agent_loop.AGENT_QUIET]["log_lines_per_step"] == 0
    assert loops[agent_loop.HAND]["log_lines_per_step"] == 0


def test_parallel_tool_calls_overlap(result: dict[str, Any]) -> None:
    sleep_ms = SIZES["tool_seconds"] * 1e3
    for kind in ("async", "sync"):
        one_round = result["parallel"][kind]
        assert one_round["calls"] == 4
        assert one_round["requests"] == 2
        assert one_round["start_spread_ms"] < sleep_ms  # all four started before the first one ended
        assert one_round["round_ms"] < 2 * sleep_ms  # one after another would be 4x
        two_rounds = result["parallel"][f"{kind}, 8 calls"]
        assert two_rounds["start_spread_ms"] >= 0.9 * sleep_ms  # max_parallel_tools=4 held the other four back


def test_a_pinned_process_runs_on_its_core_only() -> None:
    cores = separate_cores()
    if cores is None:
        pytest.skip("one core: nothing to pin apart")  # the machines of CI have two
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        preexec_fn=pinned_to(cores[1]),
    )
    assert done.stdout.strip() == f"[{cores[1]}]"
    assert pinned_to(None) is None


def test_targets_report_and_plot(result: dict[str, Any], tmp_path: Path) -> None:
    assert len(result["targets"]) == 4
    assert all(isinstance(target["ok"], bool) for target in result["targets"])
    page = "\n".join(agent_loop.report(result, None))
    assert page.startswith(f"## {agent_loop.TITLE}")
    assert "### Parallel tool calls" in page
    assert "### Where a step's time goes" in page
    assert all(positive(value) for value in result["pieces"].values())
    if result["pinned"]:  # two cores or more: the loops were also measured unpinned, and the page says so
        assert set(result["loops_unpinned"]) == set(agent_loop.LOOPS)
        assert "Unpinned" in page
    if has_module("matplotlib"):
        agent_loop.plot(result, tmp_path / "agent.png")
        assert (tmp_path / "agent.png").stat().st_size > 0

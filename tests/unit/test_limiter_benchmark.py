"""The limiter benchmark still runs: ``run()`` at tiny sizes, its report, its plot and its place in the suite.

As in ``test_benchmarks_smoke.py``, no speed is asserted; only the shape of the results and the checks the benchmark
makes: one HTTP request per call, no admission refused (so nothing waited), every slot given back, the spend counted.
It starts its own ``redis-server``, so it is skipped on a machine without one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as suite
from benchmarks import agent_loop, limiter
from benchmarks._common import has_module
from tests.redis_server import RedisUnavailable, find_binary

TINY: dict[str, Any] = {
    "calls": 3,
    "rounds": 2,
    "warmup": 1,
    "concurrency": 2,
    "concurrent_calls": 4,
    "operations": 10,
}


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value > 0


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    try:
        find_binary()
    except RedisUnavailable as error:
        pytest.skip(str(error))
    return limiter.run(**TINY)


def test_every_connection_and_kind_of_call_is_timed(result: dict[str, Any]) -> None:
    assert set(result["calls"]) == set(limiter.MODES)
    for mode, by_connection in result["calls"].items():
        assert set(by_connection) == set(limiter.VARIANTS), mode
        for name, summary in by_connection.items():
            assert positive(summary["us"]), (mode, name)
            assert len(summary["runs_added_us"]) == TINY["rounds"], (mode, name)
        assert by_connection[limiter.NONE]["added_us"] == 0  # the baseline against itself
    assert result["params"]["concurrent_calls"] % result["params"]["concurrency"] == 0


def test_the_limiter_alone(result: dict[str, Any]) -> None:
    assert set(result["alone"]) == set(limiter.STORES)
    for store, by_mode in result["alone"].items():
        assert set(by_mode) == set(limiter.ALONE_MODES), store
        for mode, summary in by_mode.items():
            assert summary["operations"] == TINY["operations"], (store, mode)
            for key in ("acquire_us", "release_us", "round_trip_us", "round_trip_us_p90", "round_trip_us_p99"):
                assert positive(summary[key]), (store, mode, key)
            assert summary["round_trip_us_p99"] >= summary["round_trip_us"]


def test_nothing_waited_and_every_slot_came_back(result: dict[str, Any]) -> None:
    checks = result["checks"]
    assert checks["refusals"] == 0
    connections = {*limiter.ALONE_CONN_IDS.values(), limiter.CONN_IDS[limiter.REDIS], limiter.CONN_IDS[limiter.LOCAL]}
    assert set(checks["slots_left"]) == connections
    assert all(left == 0 for left in checks["slots_left"].values())
    assert all(positive(usd) for usd in checks["spent_usd"].values())  # every release counted its cost
    # the two stores saw the same calls and the same costs
    hook_redis, hook_local = (checks["spent_usd"][limiter.CONN_IDS[store]] for store in limiter.STORES)
    assert hook_redis == pytest.approx(hook_local)


def test_targets_report_and_plot(result: dict[str, Any], tmp_path: Path) -> None:
    targets = result["targets"]
    assert len(targets) == 4
    assert [target["what"].split(":")[0] for target in targets[:2]] == ["Redis store", "Redis store"]
    assert "(sync" in targets[0]["what"]
    assert "(async" in targets[1]["what"]
    assert all(isinstance(target["ok"], bool) for target in targets)
    assert all(target["target"] == "< 1 ms" for target in targets)
    page = "\n".join(limiter.report(result, None))
    assert page.startswith(f"## {limiter.TITLE}")
    assert "### The limiter alone" in page
    for name in limiter.VARIANTS:
        assert name in page
    if has_module("matplotlib"):
        limiter.plot(result, tmp_path / "limiter.png")
        assert (tmp_path / "limiter.png").stat().st_size > 0


def test_registered_in_the_suite_after_the_agent_loop(result: dict[str, Any]) -> None:
    names = list(suite.BENCHMARKS)
    assert names.index(limiter.NAME) == names.index(agent_loop.NAME) + 1
    assert suite.BENCHMARKS[limiter.NAME] == (limiter, "bench-limiter.png")
    results = {limiter.NAME: result}
    page = suite.render(results, {}, {limiter.NAME: 1.0}, started=datetime.now(UTC), quick=True, argv=[])
    assert f"## {limiter.TITLE}" in page
    assert "FAILED" not in page
    assert "Redis store: added time per call" in page.split("## Machine and versions")[0]  # in the summary

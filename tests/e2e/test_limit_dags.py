"""Connection-wide limits in real DAG runs against the emulator: mapped batch shards share one connection's
slots, rate and daily budget through the local store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aiml.limits import reset_limiters
from airflow_provider_aiml.testing import AimlApiEmulator
from airflow_provider_aiml.testing.pytest_plugin import EMULATOR_API_KEY
from tests.e2e.test_operator_dags import run, xcoms

RECORDS = 36


@pytest.fixture
def limited(aiml_emulator: AimlApiEmulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def connect(**limits: Any) -> AimlApiEmulator:
        extra = {"timeout": 10, "max_retries": 2, "limits_local_path": str(tmp_path / "limits.sqlite"), **limits}
        conn = {"conn_type": "aimlapi", "password": EMULATOR_API_KEY, "host": aiml_emulator.base_url, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_AIML_LIMITED", json.dumps(conn))
        return aiml_emulator

    reset_limiters()
    yield connect
    reset_limiters()


def test_mapped_shards_share_the_connections_slots_and_rate(dagbag: Any, limited: Any) -> None:
    emulator = limited(max_concurrency=3, max_requests_per_minute=1200)  # a burst of 20, then one per 51 ms
    emulator.settings.latency = 0.05
    dag_run = run(dagbag, "aiml_limits_shared")

    assert dag_run.state == "success"
    results = [item for shard in xcoms(dag_run, "return_value", "enrich") for item in shard]
    assert len(results) == RECORDS
    assert all(item["error"] is None for item in results)
    asked = sorted(r.json["messages"][-1]["content"] for r in emulator.chat_requests)
    assert len(asked) == len(set(asked)) == RECORDS  # every record answered once
    assert emulator.max_in_flight == 3  # each shard asked for 8 at once
    arrivals = sorted(r.received_at for r in emulator.chat_requests)
    interval = 60 / (1200 - 20 + 1)
    # after the burst of 20 the other 16 were spaced by the rate
    assert arrivals[-1] - arrivals[0] >= 0.9 * (RECORDS - 20) * interval


def test_the_daily_budget_stops_the_shards_and_keeps_what_they_got(dagbag: Any, limited: Any) -> None:
    emulator = limited(max_usd_per_day=0.0003)
    dag_run = run(dagbag, "aiml_limits_shared")

    assert dag_run.state == "failed"
    shards = xcoms(dag_run, "return_value", "enrich")
    answered = [item for shard in shards for item in shard if item["error"] is None]
    refused = [item for shard in shards for item in shard if item["error"] is not None]
    assert answered  # what was obtained before the budget was spent is kept
    assert len(emulator.chat_requests) == len(answered)  # nothing was sent past the budget
    errors = {item["error"][:60] for item in refused}
    assert all(item["error"].startswith("not run: Connection 'aiml_limited' has spent") for item in refused), errors
    spent = sum(item["usage"]["usd_spent"] for item in answered)
    assert spent >= 0.0003
    # A call is admitted only while the day's spend, with what the calls in flight will likely cost, is under
    # the budget: the first shard to run (dag.test runs them one after another, in no set order) answers the
    # ~5 calls (~$0.00006 each) that reach it, or at most its first wave of 8, admitted before any call had a
    # cost to estimate with; the two after it send nothing.
    cost = answered[0]["usage"]["usd_spent"]
    assert len(answered) <= max(8, -(-0.0003 // cost) + 1)
    assert sum(1 for shard in shards if any(item["error"] is None for item in shard)) == 1

"""The batch operator's cost features in real DAG runs against the emulator: a dry run that sends nothing, a real
run reconciled with the emulator's ``GET /v2/logs``, and a batch refused before its start by ``max_cost_usd``.

The emulator's catalog prices the seed model at $1 per 1M prompt and completion tokens; the expected estimates
are worked out here from that price."""

from __future__ import annotations

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.e2e.test_operator_dags import run, xcom

CITIES = [f"city number {i:03d} on the river" for i in range(6)]
RATE = 1.0 / 1_000_000  # USD per token, in and out
COMPLETION = 400


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def expected_range() -> tuple[float, float]:
    low = high = 0.0
    for city in CITIES:
        text = f"Describe {city} in two sentences."
        low += round((len(text) // 8) * RATE + RATE, 7)
        high += round((8 + len(text.encode())) * RATE + COMPLETION * RATE, 7)
    return round(low, 7), round(high, 7)


def test_a_dry_run_then_a_reconciled_run(dagbag, emulator, capsys):
    low, high = expected_range()

    dry = run(dagbag, "aiml_batch_cost_dry_run")

    assert dry.state == "success"
    assert emulator.chat_requests == []
    estimate = xcom(dry, "estimate", "batch")
    assert xcom(dry, "return_value", "batch") == estimate
    assert (estimate["calls"], estimate["records"], estimate["dry_run"]) == (6, 6, True)
    assert (estimate["low_usd"], estimate["high_usd"]) == (low, high)
    assert (estimate["price_per_1m_input_usd"], estimate["price_per_1m_output_usd"]) == (1.0, 1.0)
    assert estimate["completion_tokens_high"] == 6 * COMPLETION
    assert xcom(dry, "usage", "batch") is None
    assert "Dry run, nothing is sent. Cost estimate of 6 records to" in capsys.readouterr().out

    real = run(dagbag, "aiml_batch_cost_reconciled")

    assert real.state == "success"
    assert len(emulator.chat_requests) == 6
    usage = xcom(real, "usage", "batch")
    assert usage["usd_spent"] is not None
    assert low <= usage["usd_spent"] <= high  # what was spent lies in the range estimated
    assert usage["billed_usd"] == pytest.approx(usage["usd_spent"], abs=1e-9)
    assert usage["billed_credits"] == usage["credits_used"]
    assert usage["billed_calls"] == 6
    assert usage["unbilled_client_request_ids"] == 0
    out = capsys.readouterr().out
    assert "Cost estimate of 6 records to" in out
    assert "Billing reconciled for 6 client request ids" in out


def test_a_batch_whose_low_estimate_passes_max_cost_usd_sends_nothing(dagbag, emulator, capsys):
    low, _ = expected_range()

    dag_run = run(dagbag, "aiml_batch_cost_refused")

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    out = capsys.readouterr().out
    assert f"the 6 records to run cost at least ${low:.6f}" in out
    assert "Nothing was sent" in out

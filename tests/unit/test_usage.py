"""``Usage`` totals: cached tokens are summed and dollar sums keep the API's precision."""

from __future__ import annotations

import pytest

from airflow_provider_aiml.models import CREDITS_PER_USD, USD_DECIMALS, Usage, round_usd


def test_cached_tokens_default_to_zero_and_are_summed():
    assert Usage().cached_tokens == 0
    total = Usage(prompt_tokens=100, cached_tokens=64) + Usage(prompt_tokens=50, cached_tokens=32) + Usage()
    assert (total.prompt_tokens, total.cached_tokens) == (150, 96)
    assert "cached_tokens" in total.model_dump()


def test_a_dollar_sum_has_no_floating_point_tail():
    assert 0.00124 + 0.001287 == 0.0025269999999999997  # what the rounding is for
    assert (Usage(usd_spent=0.00124) + Usage(usd_spent=0.001287)).usd_spent == 0.002527
    assert (Usage(usd_spent=0.00924) + Usage(usd_spent=0.00924)).usd_spent == 0.01848
    total = sum((Usage(usd_spent=0.0001) for _ in range(30)), Usage())  # 0.0029999999999999988 unrounded
    assert total.usd_spent == 0.003


@pytest.mark.parametrize("credits", [1, 3, 142, 2574, 999_999])
def test_the_rounding_keeps_every_credit(credits):
    """One credit is $0.0000005: 7 decimals hold any number of credits exactly."""
    usd = credits / CREDITS_PER_USD
    assert round_usd(usd) == usd
    assert round_usd(usd + usd) == 2 * credits / CREDITS_PER_USD
    assert USD_DECIMALS == 7


def test_a_cost_stays_unknown_only_when_no_side_reported_one():
    assert (Usage() + Usage()).usd_spent is None
    assert (Usage() + Usage()).credits_used is None
    one_sided = Usage(credits_used=2480, usd_spent=0.00124) + Usage()
    assert (one_sided.credits_used, one_sided.usd_spent) == (2480, 0.00124)

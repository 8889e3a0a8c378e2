"""The spend page's HTML and SVG, from a report built by hand: values, escaping, charts, the row caps."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from airflow_provider_aiml.spend.charts import bar_list, day_chart, nice_ceiling
from airflow_provider_aiml.spend.page import (
    TABLE_ROWS,
    PageContext,
    format_compact,
    format_usd,
    render_page,
)
from airflow_provider_aiml.spend.report import Period, RunSpend, SpendReport, TaskSpendRow, Totals

DAY = date(2031, 1, 10)
EVIL = '<img src=x onerror="alert(1)">'


def totals(usd: float, tokens: int = 100, tasks: int = 1, priced: int | None = None) -> Totals:
    return Totals(tasks, tasks, tokens // 2, tokens // 2, tokens // 4, tokens, usd, tasks if priced is None else priced)


def report(**changes: object) -> SpendReport:
    period = Period(DAY - timedelta(days=2), DAY)
    base = {
        "period": period,
        "total": totals(0.75, 300, tasks=3),
        "by_dag": [("sales", totals(0.5)), ("support", totals(0.25))],
        "by_task": [(("sales", "ask"), totals(0.5)), (("support", "triage"), totals(0.25))],
        "by_model": [(EVIL, totals(0.75, 300, 3))],
        "by_connection": [("aiml_default", totals(0.75, 300, 3))],
        "by_day": [(day, totals(0.75, 300, 3) if day == DAY else Totals()) for day in period.days],
        "by_day_model": {DAY: {EVIL: totals(0.75, 300, 3)}},
        "top_runs": [
            RunSpend("sales", "manual__1", totals(0.5), [TaskSpendRow("ask", 2, "failed", None, EVIL, totals(0.5))])
        ],
    }
    return SpendReport(**{**base, **changes})


def test_values_from_the_records_are_escaped_everywhere():
    page = render_page(report(), PageContext("", "/aiml/spend"), None)

    assert EVIL not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert page.count("<script>") == 1  # the page's own, and only it


def test_the_figures_and_the_links():
    page = render_page(report(), PageContext("/base", "/base/aiml/spend"), None)

    assert 'data-testid="total-usd" data-usd="0.75">$0.7500<' in page
    assert 'href="/base/dags/sales/runs/manual__1/tasks/ask/mapped/2"' in page
    assert "ask[2]</a>" in page
    assert "failed" in page  # a task instance that did not succeed says so
    assert 'action="/base/aiml/spend"' in page


def test_a_long_breakdown_lists_its_first_rows_and_sums_the_rest():
    dags = [(f"dag_{n:03d}", totals(0.01 * (100 - n))) for n in range(40)]
    page = render_page(report(by_dag=dags), PageContext("", "/aiml/spend"), None)

    table = page[page.index('data-testid="by-dag"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == TABLE_ROWS + 2  # the head, the rows shown, the rest in one
    assert "dag_014" in table
    assert "dag_015" not in table
    rest = round(sum(t.usd for _, t in dags[TABLE_ROWS:]), 7)
    assert f"{40 - TABLE_ROWS:,} more" in table
    assert f'data-usd="{rest!r}"' in table


def test_unreported_costs_are_marked():
    page = render_page(report(total=totals(0.75, 300, tasks=3, priced=2)), PageContext("", "/aiml/spend"), None)
    assert "1 task run had no cost reported by the API" in page


def test_an_empty_period_says_so_without_charts():
    empty = report(total=Totals(), by_dag=[], by_task=[], by_model=[], by_connection=[], top_runs=[], by_day_model={})
    page = render_page(empty, PageContext("", "/aiml/spend"), None)
    assert "No AI/ML API task reported any spend in this period." in page
    assert "<svg" not in page


def bar_heights(svg: str) -> list[float]:
    return [float(height) for height in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]


def test_day_bars_are_stacked_in_proportion_with_their_values_in_the_tooltips():
    days = [DAY, DAY + timedelta(days=1)]
    svg = day_chart(days, [("a", [1.0, 0.0]), ("b", [3.0, 2.0])], label="x", fmt=format_usd)

    first_a, first_b, second_b = bar_heights(svg)
    assert first_b == pytest.approx(3 * first_a)
    assert second_b == pytest.approx(2 * first_a)
    assert "2031-01-10 b: $3.00" in svg
    assert svg.count("<rect") == 3  # a zero draws nothing


def test_a_bar_list_draws_one_bar_per_item_longest_for_the_largest():
    svg = bar_list([("sales", 2.0), ("support", 1.0)], label="x", fmt=format_usd)
    widths = [float(width) for width in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert bar_list([], label="x", fmt=format_usd) == ""


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1.0), (0.3, 0.5), (0.00031, 0.0005), (1.0, 1.0), (7, 10), (2100, 2500)]
)
def test_the_axis_top_is_a_round_number(value, ceiling):
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_amounts_and_counts_read_well():
    assert format_usd(0.0013615) == "$0.0013615"
    assert format_usd(0.000251) == "$0.000251"
    assert format_usd(0.0421) == "$0.0421"
    assert format_usd(1234.5) == "$1,234.50"
    assert format_usd(0) == "$0.00"
    assert format_compact(2_500_000) == "2.5M"
    assert format_compact(750) == "750"

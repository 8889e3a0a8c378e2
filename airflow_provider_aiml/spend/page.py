"""The spend page's HTML: one small, self-contained document (inline CSS and SVG, one tiny inline script).

Everything shown comes from the :class:`~airflow_provider_aiml.spend.report.SpendReport` and the key panel, and
every value is HTML-escaped. Links point into Airflow's UI (task instances, runs, DAGs); when the page is shown
in the UI's frame, the script opens them in the whole window instead of inside the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from airflow_provider_aiml.models import format_usd
from airflow_provider_aiml.plugin import DAG_ROUTE
from airflow_provider_aiml.spend.charts import PALETTE, bar_list, day_chart
from airflow_provider_aiml.spend.report import RunSpend, SpendReport, Totals

if TYPE_CHECKING:
    from airflow_provider_aiml.hooks.account import AccountBalance, KeyUsage

TOP_SERIES = len(PALETTE) - 1
"""Models drawn in their own colour in the spend chart; the rest are summed as "other"."""
TABLE_ROWS = 15
"""Rows a table lists; the rest are summed in one last row, so the page stays short with many DAGs."""
RUN_TASKS = 6
"""Task instances listed per run among the most expensive ones (a mapped task may have thousands)."""


@dataclass(frozen=True)
class KeyPanel:
    """The connection's balance and its key's own spend, or why they are not shown."""

    conn_id: str
    balance: AccountBalance | None = None
    usage: KeyUsage | None = None
    problem: str | None = None
    """Why the figures are missing: no access to the connection, or the API's error (never the key)."""


@dataclass(frozen=True)
class PageContext:
    """Where the page is and what it links to."""

    ui_root: str
    """The path of Airflow's UI (``""`` at the server's root)."""
    path: str
    """This page's own path, for the period form and links."""
    dag_id: str | None = None
    """Set on a DAG's tab: the page shows that DAG only."""
    connections: Sequence[str] = ()
    """Connections the period's records name, for switching the key panel."""


def format_usd_axis(amount: float) -> str:
    """Dollars for an axis, short: $0.0005, $2.5, $1.2k."""
    if amount >= 1000:
        return "$" + format_compact(amount)
    return f"${amount:.3g}" if amount else "$0"


def format_count(count: float) -> str:
    return f"{int(count):,}"


def format_compact(count: float) -> str:
    """A count for an axis: 2.5M, 750k, 40."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def render_page(report: SpendReport, context: PageContext, panel: KeyPanel | None) -> str:
    """The whole document."""
    title = "AI/ML API spend" + (f" of {context.dag_id}" if context.dag_id else "")
    body = [
        f"<header><h1>{escape(title)}</h1>{_period_form(report, context, panel)}</header>",
        _cards(report.total, panel, context),
        _notes(report),
    ]
    if report.total.tasks:
        body.append(_charts(report, context))
        body.append(_tables(report, context))
        body.append(_top_runs(report.top_runs, context))
    else:
        body.append('<p class="empty">No AI/ML API task reported any spend in this period.</p>')
    body.append(
        "<footer>From the XCom <code>aiml_spend</code> that each AI/ML API task pushes; a task counts on the UTC "
        "day it started. Figures are those of each task's last try.</footer>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}<script>{_SCRIPT}</script></body></html>"
    )


# --- the parts ----------------------------------------------------------------------------------------------


def _period_form(report: SpendReport, context: PageContext, panel: KeyPanel | None) -> str:
    period = report.period
    keep = {"conn_id": panel.conn_id} if panel is not None and context.connections else {}
    quick = []
    for days in (7, 30, 90):
        start = period.end - timedelta(days=days - 1)
        query = urlencode({"start": start.isoformat(), "end": period.end.isoformat(), **keep})
        current = " current" if start == period.start else ""
        quick.append(f'<a class="quick{current}" href="{escape(context.path)}?{escape(query)}">{days} days</a>')
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in keep.items())
    return (
        f'<form method="get" action="{escape(context.path)}" class="period">'
        f'<label>From <input type="date" name="start" value="{period.start.isoformat()}"></label>'
        f'<label>to <input type="date" name="end" value="{period.end.isoformat()}"></label>'
        f'{hidden}<button type="submit">Show</button> {" ".join(quick)}'
        f'<span class="utc">UTC days, {period.length} day{"s" if period.length != 1 else ""}</span></form>'
    )


def _cards(total: Totals, panel: KeyPanel | None, context: PageContext) -> str:
    cards = [
        _card(
            "Spend",
            f'<b data-testid="total-usd" data-usd="{total.usd!r}">{format_usd(total.usd)}</b>',
            f'<span data-testid="total-tasks">{format_count(total.tasks)}</span> task runs, '
            f"{format_count(total.calls)} billed calls",
        ),
        _card(
            "Tokens",
            f'<b data-testid="total-tokens">{format_count(total.total_tokens)}</b>',
            f'prompt <span data-testid="prompt-tokens">{format_count(total.prompt_tokens)}</span>, completion '
            f'<span data-testid="completion-tokens">{format_count(total.completion_tokens)}</span> (reasoning '
            f'<span data-testid="reasoning-tokens">{format_count(total.reasoning_tokens)}</span>)',
        ),
    ]
    if panel is not None:
        cards.extend(_key_cards(panel, context))
    return f'<section class="cards">{"".join(cards)}</section>'


def _key_cards(panel: KeyPanel, context: PageContext) -> list[str]:
    conn = f"connection <code>{escape(panel.conn_id)}</code>"
    others = [name for name in context.connections if name != panel.conn_id]
    if others:
        links = ", ".join(
            f'<a href="{escape(context.path)}?{escape(urlencode({"conn_id": name}))}">{escape(name)}</a>'
            for name in others
        )
        conn += f" (also: {links})"
    if panel.problem is not None:
        return [_card("Balance", '<b class="muted">not shown</b>', f"{conn}: {escape(panel.problem)}", "key")]
    cards = []
    if panel.balance is not None:
        balance = panel.balance
        shown = format_usd(balance.current_balance) if balance.currency == "USD" else f"{balance.current_balance:g}"
        cards.append(_card("Balance", f'<b data-testid="balance">{escape(shown)}</b>', conn, "key"))
    if panel.usage is not None:
        usage = panel.usage
        requests = f", {format_count(usage.requests)} requests" if usage.requests is not None else ""
        prefix = f" (key {escape(usage.api_key_prefix)})" if usage.api_key_prefix else ""
        cards.append(
            _card(
                "The key's last 24 h",
                f'<b data-testid="key-spend">{format_usd(usage.spend)}</b>',
                f"as the API counts it{requests}{prefix}",
                "key",
            )
        )
    return cards


def _card(title: str, value: str, detail: str, kind: str = "") -> str:
    return f'<div class="card {kind}"><h2>{escape(title)}</h2>{value}<p>{detail}</p></div>'


def _notes(report: SpendReport) -> str:
    unpriced = report.total.unpriced
    if not unpriced:
        return ""
    runs = "task run" if unpriced == 1 else "task runs"
    return (
        f'<p class="note">{format_count(unpriced)} {runs} had no cost reported by the API (a stream without '
        "cost, say): their tokens are counted, their cost is not.</p>"
    )


def _charts(report: SpendReport, context: PageContext) -> str:
    days = [day for day, _ in report.by_day]
    models = [model for model, _ in report.by_model]
    named, rest = models[:TOP_SERIES], models[TOP_SERIES:]
    if rest and len(rest) == 1:
        named, rest = models, []
    series = [(_model_name(model), [_model_usd(report, day, [model]) for day in days]) for model in named]
    if rest:
        series.append(("other", [_model_usd(report, day, rest) for day in days]))
    totals = [totals for _, totals in report.by_day]
    tokens = [
        ("prompt", [float(t.prompt_tokens) for t in totals]),
        ("completion (answer)", [float(t.completion_tokens - t.reasoning_tokens) for t in totals]),
        ("reasoning", [float(t.reasoning_tokens) for t in totals]),
    ]
    parts = [
        _figure(
            "Spend per day, by model",
            day_chart(days, series, label="Spend per day by model", fmt=format_usd, axis_fmt=format_usd_axis),
        ),
        _figure(
            "Tokens per day",
            day_chart(days, tokens, label="Tokens per day", fmt=format_count, axis_fmt=format_compact),
        ),
    ]
    if context.dag_id is None:
        dags = [(dag_id, t.usd) for dag_id, t in report.by_dag[:10]]
        parts.append(_figure("Spend by DAG (top 10)", bar_list(dags, label="Spend by DAG", fmt=format_usd)))
    else:
        tasks = [(task_id, t.usd) for (_, task_id), t in report.by_task[:10]]
        parts.append(_figure("Spend by task (top 10)", bar_list(tasks, label="Spend by task", fmt=format_usd)))
    by_model = [(_model_name(model), t.usd) for model, t in report.by_model[:10]]
    parts.append(_figure("Spend by model", bar_list(by_model, label="Spend by model", fmt=format_usd)))
    return f'<section class="charts">{"".join(parts)}</section>'


def _model_usd(report: SpendReport, day: date, models: Sequence[str]) -> float:
    of_day = report.by_day_model.get(day, {})
    return sum(of_day[model].usd for model in models if model in of_day)


def _model_name(model: str) -> str:
    return model or "(no model)"


def _figure(caption: str, chart: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>"


_COLUMNS = "<th>Task runs</th><th>Calls</th><th>Prompt</th><th>Completion</th><th>Reasoning</th><th>Total tokens</th>"


def _numbers(totals: Totals) -> str:
    counts = (totals.tasks, totals.calls, totals.prompt_tokens, totals.completion_tokens, totals.reasoning_tokens)
    cells = "".join(f'<td class="n">{format_count(count)}</td>' for count in (*counts, totals.total_tokens))
    cost = format_usd(totals.usd) + ("*" if totals.unpriced else "")
    return f'{cells}<td class="n usd" data-usd="{totals.usd!r}">{cost}</td>'


def _table(title: str, heads: Sequence[str], rows: Sequence[tuple[Sequence[str], Totals]], *, test_id: str) -> str:
    """A breakdown table: the first :data:`TABLE_ROWS` rows, then one row that sums the others."""
    head = "".join(f"<th>{escape(name)}</th>" for name in heads)
    shown = list(rows[:TABLE_ROWS])
    rest = rows[TABLE_ROWS:]
    if rest:
        others = sum((totals for _, totals in rest), Totals())
        shown.append(([f'<span class="muted">{len(rest):,} more</span>', *[""] * (len(heads) - 1)], others))
    body = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + _numbers(totals) + "</tr>" for cells, totals in shown
    )
    return (
        f'<table data-testid="{test_id}"><caption>{escape(title)}</caption><thead><tr>{head}{_COLUMNS}'
        f"<th>Spend</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _tables(report: SpendReport, context: PageContext) -> str:
    ui = context.ui_root
    tables = []
    if context.dag_id is None:
        dags = [([_dag_link(ui, dag_id)], t) for dag_id, t in report.by_dag]
        tables.append(_table("By DAG", ["DAG"], dags, test_id="by-dag"))
        tasks = [([_dag_link(ui, dag_id), escape(task)], t) for (dag_id, task), t in report.by_task]
        tables.append(_table("By task", ["DAG", "Task"], tasks, test_id="by-task"))
    else:
        tasks = [([escape(task)], t) for (_, task), t in report.by_task]
        tables.append(_table("By task", ["Task"], tasks, test_id="by-task"))
    models = [([escape(_model_name(m))], t) for m, t in report.by_model]
    tables.append(_table("By model", ["Model"], models, test_id="by-model"))
    if len(report.by_connection) > 1:
        conns = [([f"<code>{escape(c or '(none)')}</code>"], t) for c, t in report.by_connection]
        tables.append(_table("By connection", ["Connection"], conns, test_id="by-connection"))
    days = [([d.isoformat()], t) for d, t in reversed(report.by_day) if t.tasks]
    by_day = _table("By day", ["Day (UTC)"], days, test_id="by-day").replace("<caption>By day</caption>", "")
    tables.append(f"<details><summary>By day</summary>{by_day}</details>")
    note = '<p class="small">* some task runs of the row had no cost reported.</p>' if report.total.unpriced else ""
    return f'<section class="tables">{"".join(tables)}{note}</section>'


def _top_runs(runs: Sequence[RunSpend], context: PageContext) -> str:
    if not runs:
        return ""
    ui = context.ui_root
    rows = []
    for rank, run in enumerate(runs, 1):
        run_url = f"{ui}/dags/{_q(run.dag_id)}/runs/{_q(run.run_id)}"
        tasks = ", ".join(
            f'<a data-ui href="{escape(_task_url(ui, run, task.task_id, task.map_index))}">'
            f"{escape(task.task_id)}{f'[{task.map_index}]' if task.map_index >= 0 else ''}</a> "
            f'<span class="muted">{format_usd(task.totals.usd)}'
            f"{'' if task.state in (None, 'success') else ', ' + escape(task.state or '')}</span>"
            for task in run.tasks[:RUN_TASKS]
        )
        if len(run.tasks) > RUN_TASKS:
            tasks += f' <span class="muted">and {len(run.tasks) - RUN_TASKS:,} more</span>'
        dag = "" if context.dag_id else f"<td>{_dag_link(ui, run.dag_id)}</td>"
        rows.append(
            f'<tr><td class="n">{rank}</td>{dag}'
            f'<td><a data-ui href="{escape(run_url)}">{escape(run.run_id)}</a></td>'
            f'<td class="n usd" data-usd="{run.totals.usd!r}">{format_usd(run.totals.usd)}</td>'
            f'<td class="n">{format_count(run.totals.total_tokens)}</td><td>{tasks}</td></tr>'
        )
    dag = "" if context.dag_id else "<th>DAG</th>"
    return (
        '<section><table data-testid="top-runs"><caption>Most expensive runs</caption><thead><tr><th>#</th>'
        f"{dag}<th>Run</th><th>Spend</th><th>Tokens</th><th>Task instances</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _q(value: str) -> str:
    return quote(value, safe="")


def _dag_link(ui: str, dag_id: str) -> str:
    """The DAG's name, linked to its spend tab in the UI."""
    return f'<a data-ui href="{escape(f"{ui}/dags/{_q(dag_id)}/plugin/{DAG_ROUTE}")}">{escape(dag_id)}</a>'


def _task_url(ui: str, run: RunSpend, task_id: str, map_index: int) -> str:
    url = f"{ui}/dags/{_q(run.dag_id)}/runs/{_q(run.run_id)}/tasks/{_q(task_id)}"
    return f"{url}/mapped/{map_index}" if map_index >= 0 else url


_CSS = """
:root{color-scheme:light;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--soft:#f8fafc;--blue:#2563eb}
*{box-sizing:border-box}body{margin:0;padding:16px 20px;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,
sans-serif;color:var(--ink);background:#fff}h1{font-size:20px;margin:0 0 8px}header{margin-bottom:12px}
a{color:var(--blue);text-decoration:none}a:hover{text-decoration:underline}code{font-size:12px}
.period{display:flex;flex-wrap:wrap;gap:8px;align-items:center}.period input{font:inherit;padding:2px 4px}
.period button{font:inherit;padding:2px 10px}.quick{padding:2px 8px;border:1px solid var(--line);border-radius:12px}
.quick.current{background:var(--blue);color:#fff;border-color:var(--blue)}.utc,.muted,.small{color:var(--muted)}
.small{font-size:12px}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{flex:1 1 190px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:var(--soft)}
.card h2{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:0}
.card b{font-size:22px;display:block;margin:2px 0}.card p{margin:0;color:var(--muted);font-size:12px}
.card.key{background:#fff}.note{background:#fffbeb;border:1px solid #fde68a;border-radius:6px;padding:6px 10px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(560px,100%),1fr));gap:12px 24px}
figure{margin:0}figcaption{font-weight:600;margin:6px 0}svg.chart{width:100%;height:auto;display:block}
svg.chart.list{max-width:680px}
svg .grid{stroke:var(--line)}svg text{font-size:11px;fill:var(--muted)}svg text.name{fill:var(--ink)}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;width:100%;margin:14px 0}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
summary{cursor:pointer;font-weight:600;margin-top:8px}.empty{color:var(--muted);padding:24px 0}
footer{margin-top:16px;color:var(--muted);font-size:12px}
"""

_SCRIPT = """
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[data-ui]");
  if (!link || window.top === window || event.button !== 0 || event.ctrlKey || event.metaKey) return;
  try {
    var doc = window.top.document, outer = doc.createElement("a");
    outer.href = link.href; outer.style.display = "none"; doc.body.appendChild(outer);
    outer.click(); outer.remove(); event.preventDefault();
  } catch (error) { /* another origin: the link opens in the frame */ }
});
"""

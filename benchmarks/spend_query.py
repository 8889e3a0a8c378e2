"""How long the spend page's queries take over 100,000 task instances in a SQLite metadata database.

    .venv/bin/python benchmarks/spend_query.py                 # 100,000 task instances
    .venv/bin/python benchmarks/spend_query.py --tasks 20000   # fewer

A fresh Airflow metadata database (SQLite, in a temporary Airflow home, made by Airflow's own ``resetdb``) gets
50 DAGs of 10 tasks, runs spread over 90 days, one task instance per task and run, each with what a chat task
pushes that the page does not read (``usage``, ``content``) and its ``aiml_spend`` record (3 models, costs like
the seed model's). Then :func:`~airflow_provider_aiml.spend.report.spend_report` runs as the page runs it (every
DAG readable, the top 10 runs), for the last 30 days and for all 90 days: once cold, then the median of 5. The
report's total is checked against the records inserted. Not part of ``make bench``: it measures the database,
not the provider's calls; ``docs/spend.md`` quotes its figures.

:func:`insert_task_records` is also what the tests use to fill a metadata database.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MODELS = ("alibaba/qwen3-vl-32b-thinking", "openai/gpt-4o", "text-embedding-3-small")


@dataclass(frozen=True)
class TaskRecord:
    """A task instance to insert, with the ``aiml_spend`` value it pushed (``None``: it pushed none)."""

    dag_id: str
    run_id: str
    task_id: str
    start_date: datetime
    spend: dict[str, Any] | None
    map_index: int = -1
    state: str = "success"
    other_xcoms: Sequence[str] = ()
    """Keys of other XComs the task pushed (values the page must not read)."""


def spend_value(
    model: str,
    prompt: int,
    completion: int,
    reasoning: int = 0,
    usd: float | None = None,
    calls: int = 1,
    conn_id: str = "aiml_default",
) -> dict[str, Any]:
    """An ``aiml_spend`` value shaped as the operators push it."""
    return {
        "model": model,
        "models": [model.rpartition("/")[2]],
        "conn_id": conn_id,
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "reasoning_tokens": reasoning,
        "total_tokens": prompt + completion,
        "usd": usd,
    }


def insert_task_records(session: Session, records: Iterable[TaskRecord]) -> int:
    """Insert the DAG runs, task instances and XComs of ``records`` with bulk inserts; the count inserted."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import insert

    from airflow_provider_aiml.operators._spend import SPEND_XCOM_KEY

    records = list(records)
    runs: dict[tuple[str, str], int] = {}
    run_rows = []
    for record in records:
        if (record.dag_id, record.run_id) not in runs:
            runs[(record.dag_id, record.run_id)] = len(runs)
            run_rows.append(
                {
                    "dag_id": record.dag_id,
                    "run_id": record.run_id,
                    "run_type": "scheduled",
                    "state": "success",
                    "run_after": record.start_date,
                    "start_date": record.start_date,
                }
            )
    if run_rows:
        session.execute(insert(DagRun.__table__), run_rows)
    wanted = {run for _, run in runs}
    ids = {
        (dag_id, run_id): number
        for dag_id, run_id, number in session.query(DagRun.dag_id, DagRun.run_id, DagRun.id).filter(
            DagRun.run_id.in_(wanted)
        )
    }
    ti_rows, xcom_rows = [], []
    for record in records:
        ti_rows.append(
            {
                "id": uuid.uuid4(),
                "dag_id": record.dag_id,
                "run_id": record.run_id,
                "task_id": record.task_id,
                "map_index": record.map_index,
                "state": record.state,
                "start_date": record.start_date,
                "end_date": record.start_date + timedelta(seconds=30),
                "try_number": 1,
                "max_tries": 0,
                "pool": "default_pool",
                "pool_slots": 1,
                "span_status": "ended",
            }
        )
        base = {
            "dag_run_id": ids[(record.dag_id, record.run_id)],
            "dag_id": record.dag_id,
            "run_id": record.run_id,
            "task_id": record.task_id,
            "map_index": record.map_index,
            "timestamp": record.start_date + timedelta(seconds=30),
        }
        if record.spend is not None:
            xcom_rows.append({**base, "key": SPEND_XCOM_KEY, "value": record.spend})
        xcom_rows.extend({**base, "key": key, "value": _other_value(key)} for key in record.other_xcoms)
    if ti_rows:
        session.execute(insert(TaskInstance.__table__), ti_rows)
    if xcom_rows:
        session.execute(insert(XComModel.__table__), xcom_rows)
    session.commit()
    return len(records)


def _other_value(key: str) -> Any:
    if key == "usage":  # the same fields as a chat task's usage: the page must not count it
        return {"prompt_tokens": 999, "completion_tokens": 999, "total_tokens": 1998, "usd_spent": 9.99}
    return "An answer of a few sentences, as a chat task's content would hold. " * 3


def synthetic_records(tasks: int, *, days: int = 90, today: date, seed: int = 7) -> list[TaskRecord]:
    """``tasks`` task instances: 50 DAGs of 10 tasks, a run per DAG every so often over ``days`` days."""
    rng = random.Random(seed)
    dags, per_dag = 50, 10
    runs = max(1, tasks // (dags * per_dag))
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
    records = []
    for number in range(tasks):
        dag, rest = divmod(number, runs * per_dag)
        run, task = divmod(rest, per_dag)
        dag %= dags
        begun = start + timedelta(seconds=(run * days * 86400) // runs + dag * 60 + task)
        prompt, completion = rng.randint(20, 2000), rng.randint(50, 3000)
        model = MODELS[(dag + task) % len(MODELS)]
        usd = None if number % 50 == 0 else round((prompt + completion) * 5e-7, 7)
        spend = spend_value(model, prompt, completion, completion // 2, usd)
        records.append(
            TaskRecord(
                f"dag_{dag:02d}",
                f"scheduled__{run:05d}",
                f"task_{task}",
                begun,
                spend,
                other_xcoms=("usage", "content"),
            )
        )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000, help="task instances to insert")
    parser.add_argument("--keep", action="store_true", help="keep the temporary Airflow home and its database")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="aiml-spend-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from airflow.utils import db
    from airflow.utils.session import create_session

    from airflow_provider_aiml.spend.report import Period

    db.resetdb()
    today = datetime.now(UTC).date()
    records = synthetic_records(args.tasks, today=today)
    began = time.perf_counter()
    with create_session() as session:
        insert_task_records(session, records)
    print(
        f"Inserted {len(records):,} task instances and {3 * len(records):,} XComs in "
        f"{time.perf_counter() - began:.1f} s ({home / 'airflow.db'})"
    )
    dag_ids = sorted({record.dag_id for record in records})
    try:
        for days in (30, 90):
            if not _measure(Period.last_days(days, today), records, dag_ids):
                return 1
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return 0


def _measure(period: Any, records: list[TaskRecord], dag_ids: list[str]) -> bool:
    """Time the report of ``period`` (cold, then the median of 5) and its page; check its totals."""
    from airflow.utils.session import create_session

    from airflow_provider_aiml.models import round_usd
    from airflow_provider_aiml.spend.page import PageContext, render_page
    from airflow_provider_aiml.spend.report import spend_report

    inside = [r for r in records if r.spend is not None and r.start_date.date() >= period.start]
    timings = []
    for _ in range(6):
        with create_session() as session:
            began = time.perf_counter()
            report = spend_report(session, period, dag_ids, top=10)
            timings.append(time.perf_counter() - began)
    usd = round_usd(sum(r.spend["usd"] or 0.0 for r in inside if r.spend is not None))
    if (report.total.tasks, report.total.usd) != (len(inside), usd):
        print(
            f"FAILED: the report counts {report.total.tasks} records for ${report.total.usd}, "
            f"{len(inside)} for ${usd} were inserted"
        )
        return False
    began = time.perf_counter()
    html = render_page(report, PageContext("", "/aiml/spend"), None)
    rendered = time.perf_counter() - began
    print(
        f"Last {period.length} days ({report.total.tasks:,} records, {len(report.by_task)} tasks, "
        f"${report.total.usd:,.2f}): query cold {timings[0] * 1000:.0f} ms, median of 5 after "
        f"{statistics.median(timings[1:]) * 1000:.0f} ms; page {rendered * 1000:.0f} ms, {len(html) / 1024:.0f} KiB"
    )
    return True


if __name__ == "__main__":
    sys.exit(main())

"""The spend report's SQL against Airflow's own schema, on SQLite and on PostgreSQL.

SQLite is the test run's metadata database; PostgreSQL a throwaway server (``tests/pg_server.py``) whose tables
are created from Airflow's models, its sessions in Tokyo time, so a day taken in the session's zone instead of
UTC would show. Each test inserts task instances with their XComs (``benchmarks/spend_query.py``'s bulk
insert) under DAG ids of its own, and asks the report for those DAGs only, so the other tests' rows do not
count.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_aiml.spend.report import MAX_PERIOD_DAYS, Period, Totals, spend_report
from benchmarks.spend_query import TaskRecord, insert_task_records, spend_value

DAY = date(2031, 3, 10)
_numbers = itertools.count()


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_sessions() -> Iterator[Callable[[], Any]]:
    from airflow.models import import_all_models
    from airflow.models.base import Base
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from tests.pg_server import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        pytest.fail(f"these tests need PostgreSQL's server binaries (`make postgres-binaries` installs them): {error}")
    with server:
        url = server.uri().replace("postgresql://", "postgresql+psycopg2://", 1)
        engine = create_engine(url, connect_args={"options": "-c timezone=Asia/Tokyo"})
        import_all_models()
        Base.metadata.create_all(engine)
        try:
            yield sessionmaker(bind=engine)
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, airflow_db: None) -> Callable[[], Any]:
    """A session factory of the backend under test."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_sessions")
    from airflow.utils.session import create_session

    return create_session


@pytest.fixture
def dags() -> Callable[..., str]:
    """``dags(name)``: a DAG id no other test uses."""
    number = next(_numbers)
    return lambda name="d": f"spend_{number}_{name}"


def record(dag_id: str, run: str, task: str, start: datetime, **spend: Any) -> TaskRecord:
    map_index = spend.pop("map_index", -1)
    state = spend.pop("state", "success")
    fields = {"model": "m/a", "prompt": 10, "completion": 20, **spend}
    value = None if fields.pop("no_spend", False) else spend_value(**fields)
    return TaskRecord(dag_id, run, task, start, value, map_index=map_index, state=state, other_xcoms=("usage",))


@pytest.fixture
def report_of(sessions: Callable[[], Any]) -> Callable[..., Any]:
    """``report_of(records, period, dag_ids, top=...)``: insert the records, then the report."""

    def report_of(records: list[TaskRecord], period: Period, dag_ids: list[str], **kwargs: Any) -> Any:
        with sessions() as session:
            insert_task_records(session, records)
            return spend_report(session, period, dag_ids, **kwargs)

    return report_of


def test_the_sums_by_dag_task_model_connection_and_day(dags, report_of):
    a, b = dags("a"), dags("b")
    records = [
        record(a, "r1", "t1", at(DAY), model="m/x", prompt=100, completion=50, reasoning=30, usd=0.001),
        record(a, "r1", "t2", at(DAY, 13), model="m/y", prompt=10, completion=5, reasoning=0, usd=0.0002, calls=3),
        record(a, "r2", "t1", at(DAY + timedelta(days=1)), model="m/x", prompt=7, completion=3, usd=0.0000005),
        record(b, "r1", "t1", at(DAY), model="m/y", prompt=1, completion=1, usd=0.25, conn_id="aiml_team_b"),
    ]
    report = report_of(records, Period(DAY, DAY + timedelta(days=2)), [a, b])

    assert report.total == Totals(
        tasks=4,
        calls=6,
        prompt_tokens=118,
        completion_tokens=59,
        reasoning_tokens=30,
        total_tokens=177,
        usd=0.2512005,
        priced=4,
    )
    assert [(dag, t.usd, t.tasks) for dag, t in report.by_dag] == [(b, 0.25, 1), (a, 0.0012005, 3)]
    assert [(key, t.total_tokens) for key, t in report.by_task] == [((b, "t1"), 2), ((a, "t1"), 160), ((a, "t2"), 15)]
    assert [(model, t.usd) for model, t in report.by_model] == [("m/y", 0.2502), ("m/x", 0.0010005)]
    assert [(conn, t.tasks) for conn, t in report.by_connection] == [("aiml_team_b", 1), ("aiml_default", 3)]
    assert [(day, t.tasks, t.usd) for day, t in report.by_day] == [
        (DAY, 3, 0.2512),
        (DAY + timedelta(days=1), 1, 0.0000005),
        (DAY + timedelta(days=2), 0, 0.0),  # every day of the period, with nothing or not
    ]
    assert report.by_day_model[DAY]["m/y"].usd == 0.2502
    assert report.by_day_model[DAY]["m/x"].prompt_tokens == 100
    assert report.total.reasoning_tokens == report.by_task[1][1].reasoning_tokens == 30


def test_a_task_counts_on_the_utc_day_it_started_and_the_period_takes_whole_days(dags, report_of):
    dag = dags()
    before, first, last, after = DAY - timedelta(days=1), DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    records = [
        record(dag, "r0", "t", at(before, 23, 59), usd=1.0),  # the day before: out
        record(dag, "r1", "t", at(first, 0, 0), usd=0.1),  # the first instant of the period: in
        record(dag, "r2", "t", at(last, 23, 59), usd=0.2),  # the last minute: in
        record(dag, "r3", "t", at(after, 0, 0), usd=4.0),  # the next day: out
        # 00:30 on the 11th in UTC+1 is 23:30 on the 10th in UTC: the day is the UTC one.
        record(dag, "r4", "t", datetime(2031, 3, 11, 0, 30, tzinfo=timezone(timedelta(hours=1))), usd=0.01),
    ]
    report = report_of(records, Period(first, last), [dag])

    assert report.total.tasks == 3
    assert report.total.usd == 0.31
    assert [(day, t.usd) for day, t in report.by_day] == [(first, 0.11), (last, 0.2)]
    assert {run.run_id for run in report.top_runs} == {"r1", "r2", "r4"}


def test_only_the_dags_asked_for_count(dags, report_of):
    mine, theirs = dags("mine"), dags("theirs")
    records = [record(mine, "r", "t", at(DAY), usd=0.5), record(theirs, "r", "t", at(DAY), usd=9.0)]
    report = report_of(records, Period(DAY, DAY), [mine])

    assert report.total.usd == 0.5
    assert [dag for dag, _ in report.by_dag] == [mine]
    assert [run.dag_id for run in report.top_runs] == [mine]
    empty = report_of([], Period(DAY, DAY), [])
    assert empty.total == Totals()
    assert empty.by_dag == empty.top_runs == []
    assert [t for _, t in empty.by_day] == [Totals()]


def test_other_xcoms_are_not_read_and_an_unknown_cost_counts_its_tokens_only(dags, report_of):
    dag = dags()
    records = [
        record(dag, "r", "priced", at(DAY), prompt=10, completion=10, usd=0.002),
        record(dag, "r", "unpriced", at(DAY), prompt=500, completion=500, usd=None),
        record(dag, "r", "no_record", at(DAY), no_spend=True),  # pushed only a "usage" (1,998 tokens, $9.99)
    ]
    report = report_of(records, Period(DAY, DAY), [dag])

    assert (report.total.tasks, report.total.priced, report.total.unpriced) == (2, 1, 1)
    assert report.total.usd == 0.002
    assert report.total.total_tokens == 1020
    assert [task for (_, task), _ in report.by_task] == ["priced", "unpriced"]  # cost first, then tokens


def test_the_most_expensive_runs_with_their_task_instances(dags, report_of):
    dag = dags()
    records = [
        record(dag, "cheap", "t", at(DAY), usd=0.001),
        record(dag, "dear", "a", at(DAY), usd=0.3),
        record(dag, "dear", "b", at(DAY), usd=0.1, map_index=0),
        record(dag, "dear", "b", at(DAY), usd=0.2, map_index=1, state="failed"),
        record(dag, "middle", "t", at(DAY), usd=0.5),
        record(dag, "free", "t", at(DAY), usd=None, prompt=9000),
    ]
    report = report_of(records, Period(DAY, DAY), [dag], top=3)

    assert [(run.run_id, run.totals.usd, run.totals.tasks) for run in report.top_runs] == [
        ("dear", 0.6, 3),
        ("middle", 0.5, 1),
        ("cheap", 0.001, 1),
    ]
    dear = report.top_runs[0]
    assert [(t.task_id, t.map_index, t.state, t.totals.usd) for t in dear.tasks] == [
        ("a", -1, "success", 0.3),
        ("b", 1, "failed", 0.2),
        ("b", 0, "success", 0.1),
    ]
    assert dear.tasks[0].model == "m/a"
    assert dear.tasks[0].start_date.replace(tzinfo=UTC) == at(DAY)
    assert report_of([], Period(DAY, DAY), [dag], top=0).top_runs == []
    # Without any cost, tokens rank the runs.
    assert [run.run_id for run in report_of([], Period(DAY, DAY), [dag], top=5).top_runs][-1] == "free"


def test_huge_counts_add_up_and_a_malformed_record_does_not_fail_the_page(dags, report_of):
    """A batch of a million records passes 2**31 tokens in one record; any task may push a broken one."""
    a = dags("a")
    huge = record(a, "r1", "big", at(DAY), prompt=3_000_000_000, completion=2_000_000_000, usd=1500.25)
    broken = TaskRecord(
        a, "r1", "broken", at(DAY, 13), {"model": "m/a", "calls": "many", "total_tokens": "x", "usd": "free"}
    )
    report = report_of([huge, broken], Period(DAY, DAY), [a])

    assert report.total.total_tokens == 5_000_000_000
    assert report.total.prompt_tokens == 3_000_000_000
    assert report.total.usd == 1500.25
    assert report.total.tasks == 2  # the broken one counts as a task, with nothing it can sum


def test_the_period_is_checked():
    assert Period.last_days(30, DAY) == Period(DAY - timedelta(days=29), DAY)
    assert Period(DAY, DAY).length == 1
    assert Period(DAY, DAY).bounds() == (at(DAY, 0), at(DAY + timedelta(days=1), 0))
    with pytest.raises(ValueError, match="before it starts"):
        Period(DAY, DAY - timedelta(days=1))
    with pytest.raises(ValueError, match=f"at most {MAX_PERIOD_DAYS} days"):
        Period(DAY - timedelta(days=MAX_PERIOD_DAYS), DAY)

"""The spend report: the XCom ``aiml_spend`` records of a period, summed in SQL.

One statement reads the period's records once: a materialized CTE takes the fields out of each record's JSON
(the costly part), joined with its task instance for the day (the task instance's ``start_date``, in UTC), and
three ``GROUP BY`` over it give the sums by DAG, task, model and connection (as many rows as tasks and
models, whatever the number of runs), by day and model, and the most expensive runs. A second, small query
reads the task instances of those runs. Only the DAGs the caller may read are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Numeric, String, and_, case, cast, func, literal, null, or_, select, union_all

from airflow_provider_aiml.models import round_usd
from airflow_provider_aiml.operators._spend import SPEND_XCOM_KEY

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.elements import ColumnElement

K = TypeVar("K", bound=Hashable)

MAX_PERIOD_DAYS = 366
"""The longest period a report covers (each day is a bar of the charts)."""
DEFAULT_PERIOD_DAYS = 30
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` to ``end``, both included."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int = DEFAULT_PERIOD_DAYS, today: date | None = None) -> Period:
        """The ``days`` days up to ``today`` (UTC) included."""
        end = today or datetime.now(UTC).date()
        return cls(end - timedelta(days=days - 1), end)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")
        if self.length > MAX_PERIOD_DAYS:
            raise ValueError(f"the period is {self.length} days long; at most {MAX_PERIOD_DAYS} days are shown")

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.length)]

    def bounds(self) -> tuple[datetime, datetime]:
        """From the start of the first day to the start of the day after the last, in UTC."""
        return (
            datetime.combine(self.start, time(), UTC),
            datetime.combine(self.end + timedelta(days=1), time(), UTC),
        )


@dataclass(frozen=True)
class Totals:
    """Sums over some ``aiml_spend`` records. ``usd`` sums the records that report a cost (``priced`` of the
    ``tasks``); a record whose cost the API did not report counts its tokens only."""

    tasks: int = 0
    """Task instances (one record each)."""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    usd: float = 0.0
    priced: int = 0

    def __add__(self, other: Totals) -> Totals:
        sums = {item.name: getattr(self, item.name) + getattr(other, item.name) for item in fields(self)}
        return Totals(**{**sums, "usd": round_usd(sums["usd"])})

    @property
    def unpriced(self) -> int:
        """Task instances whose cost the API did not report."""
        return self.tasks - self.priced


@dataclass(frozen=True)
class TaskSpendRow:
    """One task instance of a top run, with what its record says."""

    task_id: str
    map_index: int
    state: str | None
    start_date: datetime | None
    model: str | None
    totals: Totals


@dataclass(frozen=True)
class RunSpend:
    """A DAG run and what its task instances spent in the period."""

    dag_id: str
    run_id: str
    totals: Totals
    tasks: list[TaskSpendRow] = field(default_factory=list)


@dataclass(frozen=True)
class SpendReport:
    """What the period's records add up to, broken down by DAG, task, model, connection and day; each list is
    sorted by cost, then tokens (``by_day`` and ``by_day_model`` by day, every day of the period in
    ``by_day``)."""

    period: Period
    total: Totals
    by_dag: list[tuple[str, Totals]]
    by_task: list[tuple[tuple[str, str], Totals]]
    by_model: list[tuple[str, Totals]]
    by_connection: list[tuple[str, Totals]]
    by_day: list[tuple[date, Totals]]
    by_day_model: dict[date, dict[str, Totals]]
    top_runs: list[RunSpend]


def spend_report(session: Session, period: Period, dag_ids: Collection[str], *, top: int = 10) -> SpendReport:
    """The report of ``period`` over the records of ``dag_ids`` (the DAGs the caller may read): nothing else
    is read, so an empty collection gives an empty report."""
    dag_ids = sorted(set(dag_ids))
    if not dag_ids:
        return _report(period, [], [], [])
    records = _Records(session, period, dag_ids)
    groups: dict[str, list[tuple[tuple[Any, ...], Totals]]] = {"k": [], "d": [], "r": []}
    for row in session.execute(records.summary(top)):
        groups[row[0]].append(((row[1], row[2], row[3], row[4]), _totals(row[5:])))
    days = [((_as_date(day), model), totals) for (day, model, _, _), totals in groups["d"]]
    ranked = [(dag_id, run_id) for (dag_id, run_id, _, _), _ in groups["r"]]
    return _report(period, groups["k"], days, records.runs(ranked) if ranked else [])


def _report(
    period: Period,
    kinds: list[tuple[tuple[Any, ...], Totals]],
    days: list[tuple[tuple[Any, ...], Totals]],
    runs: list[RunSpend],
) -> SpendReport:
    by_day = _fold(days, lambda key: key[0])
    by_day_model: dict[date, dict[str, Totals]] = {}
    for (day, model), totals in days:
        by_day_model.setdefault(day, {})[model] = totals
    return SpendReport(
        period=period,
        total=sum((totals for _, totals in kinds), Totals()),
        by_dag=_ranked(_fold(kinds, lambda key: key[0])),
        by_task=_ranked(_fold(kinds, lambda key: (key[0], key[1]))),
        by_model=_ranked(_fold(kinds, lambda key: key[2])),
        by_connection=_ranked(_fold(kinds, lambda key: key[3])),
        by_day=[(day, by_day.get(day, Totals())) for day in period.days],
        by_day_model=by_day_model,
        top_runs=runs,
    )


# --- the SQL --------------------------------------------------------------------------------------------------


class _Records:
    """The period's ``aiml_spend`` records of some DAGs, as SQL."""

    def __init__(self, session: Session, period: Period, dag_ids: list[str]) -> None:
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XComModel

        self.session, self.period, self.dag_ids = session, period, dag_ids
        self.xcom, self.ti = XComModel, TaskInstance
        self.dialect = session.get_bind().dialect.name
        value = XComModel.value
        self.fields: dict[str, Any] = {
            "model": func.coalesce(value["model"].as_string(), ""),
            "conn_id": func.coalesce(value["conn_id"].as_string(), ""),
            "calls": _number(value, "calls", self.dialect),
            **{name: _number(value, name, self.dialect) for name in TOKEN_FIELDS},
            "usd": _number(value, "usd", self.dialect, whole=False),
        }

    def scoped(self, statement: Any) -> Any:
        """``statement`` over the period's records of the DAGs, each joined with its task instance."""
        xcom, ti = self.xcom, self.ti
        start, end = self.period.bounds()
        return statement.join(
            ti,
            and_(
                ti.dag_id == xcom.dag_id,
                ti.task_id == xcom.task_id,
                ti.run_id == xcom.run_id,
                ti.map_index == xcom.map_index,
            ),
        ).where(
            xcom.key == SPEND_XCOM_KEY,
            xcom.dag_id.in_(self.dag_ids),
            # A task pushes its record after it started: records older than the period (by a day, for clock
            # skew between API servers) are left out before the join, without a look at their task instance.
            xcom.timestamp >= start - timedelta(days=1),
            ti.start_date >= start,
            ti.start_date < end,
        )

    def summary(self, top: int) -> Any:
        """One statement: rows ``(kind, key, key, key, key, *sums)``; kind ``k`` by DAG, task, model and
        connection, ``d`` by day and model, ``r`` the ``top`` runs by cost then tokens (DAG id, run id)."""
        xcom = self.xcom
        day = _utc_day(self.ti.start_date, self.dialect).label("day")
        fields = [column.label(name) for name, column in self.fields.items()]
        records = self.scoped(select(xcom.dag_id, xcom.task_id, xcom.run_id, day, *fields).select_from(xcom))
        cte = records.cte("aiml_spend_records")
        if self.dialect == "postgresql" or (self.dialect == "sqlite" and _sqlite_materializes()):
            cte = cte.prefix_with("MATERIALIZED")  # MySQL materializes a CTE read more than once by itself
        c = cte.c
        sums = [
            func.count(),
            func.coalesce(func.sum(c.calls), 0),
            *(func.coalesce(func.sum(c[name]), 0) for name in TOKEN_FIELDS),
            func.coalesce(func.sum(c.usd), 0.0),
            func.count(c.usd),
        ]
        none = cast(null(), String)
        by_kind = select(literal("k"), c.dag_id, c.task_id, c.model, c.conn_id, *sums)
        day_text = func.to_char(c.day, "YYYY-MM-DD") if self.dialect == "postgresql" else cast(c.day, String)
        by_day = select(literal("d"), day_text, c.model, none, none, *sums)
        by_run = select(literal("r"), c.dag_id, c.run_id, none, none, *sums).group_by(c.dag_id, c.run_id)
        top_runs = by_run.order_by(sums[-2].desc(), sums[5].desc(), c.dag_id, c.run_id).limit(top).subquery()
        return union_all(
            by_kind.group_by(c.dag_id, c.task_id, c.model, c.conn_id),
            by_day.group_by(c.day, c.model),
            select(*top_runs.c),  # wrapped: a member of a compound SELECT may not have its own LIMIT on SQLite
        )

    def runs(self, ranked: list[tuple[str, str]]) -> list[RunSpend]:
        """The task instances of the ``ranked`` runs in the period, in that order."""
        xcom, ti = self.xcom, self.ti
        detail = select(
            xcom.dag_id, xcom.run_id, xcom.task_id, xcom.map_index, ti.state, ti.start_date, *self.fields.values()
        ).select_from(xcom)
        detail = self.scoped(detail).where(
            or_(*(and_(xcom.dag_id == dag_id, xcom.run_id == run_id) for dag_id, run_id in ranked))
        )
        tasks: dict[tuple[str, str], list[TaskSpendRow]] = {run: [] for run in ranked}
        for dag_id, run_id, task_id, map_index, state, started, model, _, *numbers in self.session.execute(detail):
            *counts, cost = numbers
            totals = _totals([1, *(count or 0 for count in counts), cost or 0.0, int(cost is not None)])
            status = None if state is None else str(getattr(state, "value", state))
            tasks[(dag_id, run_id)].append(TaskSpendRow(task_id, map_index, status, started, model or None, totals))
        result = []
        for (dag_id, run_id), rows in tasks.items():
            rows.sort(key=lambda item: (-item.totals.usd, -item.totals.total_tokens, item.task_id, item.map_index))
            result.append(RunSpend(dag_id, run_id, sum((item.totals for item in rows), Totals()), rows))
        return result


_JSON_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def _number(value: Any, name: str, dialect: str, *, whole: bool = True) -> ColumnElement[Any]:
    """A number of the record, or NULL when it is not one: any task may push an ``aiml_spend`` XCom, and one
    malformed record (or a count past 32 bits) must not fail the page for every user. SQLite and MySQL cast
    text as 0 and hold 64-bit integers; PostgreSQL would raise, so it casts only what looks like a number, to
    ``NUMERIC``."""
    if dialect == "postgresql":
        text = value[name].as_string()
        return case((text.regexp_match(_JSON_NUMBER), cast(text, Numeric(38, 0 if whole else 12))), else_=null())
    return value[name].as_integer() if whole else value[name].as_float()


def _utc_day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp column: ``date()`` reads SQLite's and MySQL's stored UTC text or value as
    it is; on PostgreSQL the ``timestamptz`` is first turned into UTC wall time (the session may be in
    another zone)."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _sqlite_materializes() -> bool:
    """SQLite knows ``AS MATERIALIZED`` from 3.35 on (Airflow accepts older ones)."""
    import sqlite3

    return sqlite3.sqlite_version_info >= (3, 35)


def _totals(values: Iterable[Any]) -> Totals:
    """Totals from the sums of a query: tasks, calls, the four token counts, dollars, priced tasks."""
    tasks, calls, prompt, completion, reasoning, total, usd, priced = values
    return Totals(
        tasks=int(tasks),
        calls=int(calls),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        reasoning_tokens=int(reasoning),
        total_tokens=int(total),
        usd=round_usd(float(usd)),
        priced=int(priced),
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- folding --------------------------------------------------------------------------------------------------


def _fold(groups: list[tuple[tuple[Any, ...], Totals]], key: Callable[[tuple[Any, ...]], K]) -> dict[K, Totals]:
    folded: dict[K, Totals] = {}
    for group, totals in groups:
        name = key(group)
        folded[name] = folded.get(name, Totals()) + totals
    return folded


def _ranked(folded: dict[K, Totals]) -> list[tuple[K, Totals]]:
    """Most expensive first; ties (or no cost at all) by tokens, then by name."""
    return sorted(folded.items(), key=lambda item: (-item[1].usd, -item[1].total_tokens, str(item[0])))

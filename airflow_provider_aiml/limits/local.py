"""The embedded store: one SQLite file that every process on the machine shares, with no set-up.

Each operation is one ``BEGIN IMMEDIATE`` transaction, which takes the file's write lock: the processes
take turns, and an operation is a few hundred microseconds. It holds on one machine only: workers on several
machines each have their own file, so a deployment with more than one needs the Redis store. Times are the
machine's clock (``time.time()``): a jump of the clock moves the leases' expiry and the rate's turn with it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from airflow_provider_aiml.limits.plan import DAY_KEPT_S, GRANTED, SLOT_POLL_S, Admission, LimitPlan

BUSY_TIMEOUT_MS = 30_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate (namespace TEXT PRIMARY KEY, tat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slots (
    namespace TEXT NOT NULL, lease TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (namespace, lease)
);
CREATE TABLE IF NOT EXISTS spend (
    namespace TEXT NOT NULL, day TEXT NOT NULL, usd REAL NOT NULL, calls INTEGER NOT NULL, touched REAL NOT NULL,
    PRIMARY KEY (namespace, day)
);
CREATE TABLE IF NOT EXISTS released (lease TEXT PRIMARY KEY, at REAL NOT NULL);
"""
_inherited: list[sqlite3.Connection] = []
"""Connections a forked child inherited: kept open, never used or closed (closing one in the child could drop
the parent's locks on the file)."""


def default_path() -> Path:
    """``$AIRFLOW_HOME/aiml-limits.sqlite`` (``~/airflow`` when ``AIRFLOW_HOME`` is not set)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "aiml-limits.sqlite"


class LocalLimitStore:
    """Limit state in a SQLite file shared by the processes of one machine."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.location = str(self.path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # --- the operations -------------------------------------------------------------------------------------

    def admit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        with self._transaction() as db:
            now = time.time()
            if plan.takes_leases:
                db.execute("DELETE FROM slots WHERE namespace = ? AND expires <= ?", (plan.namespace, now))
                (in_flight,) = db.execute(
                    "SELECT count(*) FROM slots WHERE namespace = ?", (plan.namespace,)
                ).fetchone()
            if plan.max_usd_per_day is not None:
                spent, calls = _spend(db, plan, day)
                if spent >= plan.max_usd_per_day:
                    return Admission(False, "budget", spent_usd=spent, in_flight=in_flight)
                if spent + in_flight * (spent / calls if calls else 0.0) >= plan.max_usd_per_day:
                    return Admission(False, "in_flight", wait_s=SLOT_POLL_S, spent_usd=spent, in_flight=in_flight)
            if plan.max_concurrency is not None and in_flight >= plan.max_concurrency:
                return Admission(False, "slots", wait_s=SLOT_POLL_S, in_use=in_flight)
            if plan.interval_s is not None:
                row = db.execute("SELECT tat FROM rate WHERE namespace = ?", (plan.namespace,)).fetchone()
                tat = max(row[0] if row else now, now)
                wait = tat - plan.tolerance_s - now
                if wait > 0:
                    return Admission(False, "rate", wait_s=wait)
                db.execute(
                    "INSERT INTO rate VALUES (?, ?) ON CONFLICT (namespace) DO UPDATE SET tat = excluded.tat",
                    (plan.namespace, tat + plan.interval_s),
                )
            if plan.takes_leases:
                db.execute(
                    "INSERT OR REPLACE INTO slots VALUES (?, ?, ?)", (plan.namespace, lease_id, now + plan.lease_s)
                )
        return GRANTED

    def release(self, plan: LimitPlan, lease_id: str, day: str, usd: float | None) -> None:
        with self._transaction() as db:
            now = time.time()
            db.execute("DELETE FROM slots WHERE namespace = ? AND lease = ?", (plan.namespace, lease_id))
            if usd is None:
                return
            if db.execute("INSERT OR IGNORE INTO released VALUES (?, ?)", (lease_id, now)).rowcount == 0:
                return  # released before: its cost is counted
            db.execute(
                "INSERT INTO spend VALUES (?, ?, ?, 1, ?) ON CONFLICT (namespace, day) "
                "DO UPDATE SET usd = usd + excluded.usd, calls = calls + 1, touched = excluded.touched",
                (plan.namespace, day, usd, now),
            )
            db.execute("DELETE FROM spend WHERE touched < ?", (now - DAY_KEPT_S,))
            db.execute("DELETE FROM released WHERE at < ?", (now - 3600,))

    def renew(self, plan: LimitPlan, lease_ids: Collection[str]) -> int:
        if not lease_ids:
            return 0
        with self._transaction() as db:
            expires = time.time() + plan.lease_s
            held = 0
            for lease_id in lease_ids:
                held += db.execute(
                    "UPDATE slots SET expires = ? WHERE namespace = ? AND lease = ?",
                    (expires, plan.namespace, lease_id),
                ).rowcount
        return held

    def spent(self, plan: LimitPlan, day: str) -> float:
        with self._transaction() as db:
            return _spend(db, plan, day)[0]

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held when it forked
        if self._db is not None:
            _inherited.append(self._db)
            self._db = None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- the file -------------------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db


class _Transaction:
    """The store's lock and one ``BEGIN IMMEDIATE`` transaction: committed when the block ends, else rolled back."""

    def __init__(self, store: LocalLimitStore) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        self._store._lock.acquire()
        try:
            self._db = self._store._connection()
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._store._lock.release()
            raise
        return self._db

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._store._lock.release()


def _spend(db: sqlite3.Connection, plan: LimitPlan, day: str) -> tuple[float, int]:
    row: Any = db.execute(
        "SELECT usd, calls FROM spend WHERE namespace = ? AND day = ?", (plan.namespace, day)
    ).fetchone()
    return (float(row[0]), int(row[1])) if row else (0.0, 0)

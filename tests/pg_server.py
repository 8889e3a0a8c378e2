"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests, from the server binaries of Debian's package.

``PostgresServer`` runs ``initdb`` into a fresh temporary folder, starts ``postgres`` on a free port of 127.0.0.1
(its Unix socket in the same folder, ``fsync`` off: nothing here needs to survive a crash), waits until it accepts
connections and creates the database. Local (socket) connections are trusted; TCP connections need the password
(``scram-sha-256``), so a client that connects the way Airflow does proves its credentials. Point Airflow at it with
:func:`postgres_connection_env`::

    with PostgresServer() as pg:
        with pg.connect() as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (id int)")
        for name, value in postgres_connection_env("pg_test", pg).items():
            monkeypatch.setenv(name, value)
        PostgresHook(postgres_conn_id="pg_test").get_records("SELECT * FROM t")

``stop()`` (or leaving the ``with`` block) ends the postmaster by its PID (an immediate shutdown, then ``SIGKILL``
if it is still there) and deletes the folder; an interpreter that exits without it stops the server on the way out.
Run as root, the server runs as the ``postgres`` system user the Debian package creates (postgres refuses root).
No binaries (or no such user) raise :class:`PostgresUnavailable` before anything starts; on Debian
``apt-get install postgresql`` brings them (a PostgreSQL on ``PATH``, or ``PG_BINDIR``, is used first).
Every step is bounded in time. Each server is independent: a test can run several at once.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"
DEFAULT_USER = "aiml"
DEFAULT_PASSWORD = "pg-test-password"
DEFAULT_DATABASE = "aiml"
SYSTEM_USER = "postgres"
INITDB_TIMEOUT_SECONDS = 60.0
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PORT_ATTEMPTS = 3
# Speed over durability, and small: a cluster of the tests lives for seconds and holds a few rows.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "30",
    "max_wal_senders": "0",
    "wal_level": "minimal",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or, as root, no ``postgres`` user to run them as)."""


def find_bindir() -> Path:
    """The folder of ``initdb``, ``postgres`` and ``pg_ctl``: ``$PG_BINDIR``, then ``PATH``, then Debian's newest."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.parent.name))

    candidates.extend(
        Path(found).parent for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    )
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return folder
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres) in $PG_BINDIR, on PATH or in /usr/lib/postgresql/*/bin; "
        "on Debian: apt-get install postgresql"
    )


def _run_as() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: the ``postgres`` user when we are root, else ``None`` (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL as (postgres refuses root); "
            "Debian's postgresql package creates it"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def postgres_uri(user: str, password: str, host: str, port: int, database: str, *, scheme: str = "postgresql") -> str:
    """``scheme://user:password@host:port/database`` with the parts URL-encoded."""
    quote = urllib.parse.quote
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"


def postgres_connection_env(conn_id: str, server: PostgresServer, database: str | None = None) -> dict[str, str]:
    """The ``AIRFLOW_CONN_<CONN_ID>`` variable of an Airflow ``postgres`` connection to ``server`` (its database,
    or ``database``). Airflow reads the ``postgresql://`` scheme as the ``postgres`` connection type."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": server.uri(database)}


class PostgresServer:
    """A PostgreSQL cluster of its own on a free port of 127.0.0.1; started on creation, a context manager.

    :param user: the superuser the cluster is created with (the tests' login).
    :param password: its password, needed over TCP.
    :param database: a database created after start (``postgres`` always exists too).
    :param settings: server settings (``name: value``) over :data:`FAST_SETTINGS`.
    :param start_timeout: seconds to wait for the server to accept connections.
    """

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        database: str = DEFAULT_DATABASE,
        settings: dict[str, str] | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        self.bindir = find_bindir()
        self._owner = _run_as()
        self.host = HOST
        self.port = 0
        self.user, self.password, self.database = user, password, database
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self._process: subprocess.Popen[bytes] | None = None
        self.root = Path(tempfile.mkdtemp(prefix="aiml-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_path = self.root / "server.log"
        self.started_in = 0.0
        """Seconds from ``initdb`` to the database being ready."""
        atexit.register(self.stop)
        began = time.monotonic()
        try:
            self._initdb()
            self._start(start_timeout)
            if database != "postgres":
                self.create_database(database)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began

    # --- setting up -----------------------------------------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, *self._owner)

    def _popen_owner(self) -> dict[str, Any]:
        # The child switches user before exec, so the PID we hold is the postmaster's own (no runuser in between).
        if self._owner is None:
            return {}
        return {"user": self._owner[0], "group": self._owner[1], "extra_groups": []}

    def _initdb(self) -> None:
        self._chown(self.root)
        self.socket_dir.mkdir(mode=0o700)
        self._chown(self.socket_dir)
        password_file = self.root / "pwfile"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        self._chown(password_file)
        command = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            self.user,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        try:
            done = subprocess.run(
                command,
                cwd=self.root,
                capture_output=True,
                timeout=INITDB_TIMEOUT_SECONDS,
                check=False,
                **self._popen_owner(),
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"initdb failed with {done.returncode}:\n{output[-2000:]}")

    def _start(self, timeout: float) -> None:
        for attempt in range(PORT_ATTEMPTS):
            self.port = _free_port()
            command = [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={HOST}",
            ]
            for name, value in self.settings.items():
                command += ["-c", f"{name}={value}"]
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command,
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches pytest, which then stops us in order
                    **self._popen_owner(),
                )
            try:
                self._wait_until_ready(timeout)
                return
            except _PortTaken:
                if attempt == PORT_ATTEMPTS - 1:
                    raise RuntimeError(f"postgres found no free port in {PORT_ATTEMPTS} tries:\n{self.log()}") from None

    def _wait_until_ready(self, timeout: float) -> None:
        import psycopg2

        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                log = self.log()
                if "could not bind" in log or "already in use" in log:
                    self._process = None
                    raise _PortTaken
                raise RuntimeError(f"postgres exited with {self._process.returncode} before it was ready:\n{log}")
            try:
                psycopg2.connect(**self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError as error:
                last = error
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres not accepting connections on {self.host}:{self.port} after {timeout} s "
                    f"({str(last).strip()}):\n{self.log()}"
                )
            time.sleep(0.05)

    # --- using it -------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    @property
    def serving(self) -> bool:
        """Whether the postmaster is still running."""
        return self.pid is not None

    def dsn(self, database: str | None = None) -> dict[str, Any]:
        """``psycopg2.connect``/``psycopg.connect`` keyword arguments for a TCP connection to ``database``."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": database or self.database,
        }

    def uri(self, database: str | None = None) -> str:
        """``postgresql://user:password@127.0.0.1:port/database`` (the server's database unless ``database``)."""
        return postgres_uri(self.user, self.password, self.host, self.port, database or self.database)

    def connect(self, database: str | None = None, *, autocommit: bool = True) -> Any:
        """A new psycopg2 connection (autocommit unless told otherwise); close it, or use it in ``closing()``."""
        import psycopg2

        conn = psycopg2.connect(**self.dsn(database), connect_timeout=5)
        conn.autocommit = autocommit
        return conn

    def execute(self, sql: str, params: Any = None, *, database: str | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` (one or more statements) on a fresh autocommit connection; the rows of the last, if any."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description is not None else []
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        """Create the database ``name`` (owned by the superuser)."""
        from psycopg2 import sql

        conn = self.connect("postgres")
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()

    def log(self) -> str:
        """The server's log so far (the last 4,000 characters)."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # --- stopping -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """End the postmaster (immediate shutdown, ``SIGKILL`` after a few seconds) and delete the cluster's folder.

        Idempotent. An immediate shutdown is what ``pg_ctl stop -m immediate`` does: ``SIGQUIT`` to the postmaster,
        which ends its backends (killing any that linger) before it exits itself. Should it not exit in time, it and
        the processes it started are killed by their PIDs.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGQUIT)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                children = _children_of(process.pid)
                process.kill()
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_SECONDS)
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _children_of(parent: int) -> list[int]:
    """The PIDs of the processes whose parent is ``parent`` (from ``/proc``)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == parent:
                children.append(int(entry.name))
    return children


class _PortTaken(Exception):
    """The postmaster exited because another process took its port first."""

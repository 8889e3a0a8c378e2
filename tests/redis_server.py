"""A throwaway Redis server on 127.0.0.1 for the tests, from Debian's ``redis-server`` binary.

``RedisServer`` starts ``redis-server`` on a free port of 127.0.0.1 with a password, no persistence and its
working folder in a fresh temporary directory, waits until it answers ``PING`` and hands out clients and the
Airflow connection the Redis provider reads (:func:`redis_connection_env`)::

    with RedisServer() as server:
        for name, value in redis_connection_env("redis_limits", server).items():
            monkeypatch.setenv(name, value)

``stop()`` (or leaving the ``with`` block) ends the server by its PID (``SIGTERM``, then ``SIGKILL``) and deletes
the folder; an interpreter that exits without it stops the server on the way out. No binary raises
:class:`RedisUnavailable` before anything starts (``apt-get install redis-server`` brings it). Every step is
bounded in time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"
PASSWORD = "redis-test-password"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0


class RedisUnavailable(RuntimeError):
    """No ``redis-server`` binary on this machine."""


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    if found is None:
        raise RedisUnavailable("redis-server is not installed: apt-get install redis-server")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process of the tests, stopped by its PID."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.binary = find_binary()
        self.password = password
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None

    def start(self) -> Self:
        self._folder = Path(tempfile.mkdtemp(prefix="aiml-redis-"))
        self.port = _free_port()
        settings = {
            "bind": HOST,
            "port": str(self.port),
            "requirepass": self.password,
            "save": "",
            "appendonly": "no",
            "dir": str(self._folder),
            "daemonize": "no",
            "loglevel": "warning",
            "logfile": str(self._folder / "redis.log"),
        }
        self.process = subprocess.Popen(
            [self.binary, *(part for name, value in settings.items() for part in (f"--{name}", value))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self._folder / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            with contextlib.suppress(Exception):
                if self.client().ping():
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_SECONDS:g}s")

    def client(self, **options: Any) -> Any:
        import redis

        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=5, **options)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        atexit.unregister(self.stop)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def redis_connection_env(conn_id: str, server: RedisServer) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` of a Redis connection to ``server``, as the Redis provider reads it."""
    conn = {"conn_type": "redis", "host": HOST, "port": server.port, "password": server.password, "extra": {"db": 0}}
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}

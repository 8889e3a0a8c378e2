"""Real S3-compatible servers on 127.0.0.1 for the tests: moto's S3, and one that refuses every request.

``S3Server`` runs moto in a thread of the test process; its buckets live in moto's in-process state, which every
``S3Server`` of the process shares (:meth:`S3Server.reset` and ``moto.mock_aws`` clear it).
``ForbiddenS3Server`` runs moto in a subprocess that checks credentials, so every request with the dummy keys
gets ``403 InvalidAccessKeyId``. Point Airflow at either with :func:`aws_connection_env`::

    with S3Server() as s3:
        s3.create_bucket("aiml-inputs")
        s3.put("aiml-inputs", "x.pdf", b"%PDF-...")
        for name, value in aws_connection_env("s3_test", s3.endpoint_url).items():
            monkeypatch.setenv(name, value)
        ObjectStoragePath("s3://aiml-inputs/x.pdf", conn_id="s3_test").read_bytes()

Through s3fs a missing key raises ``FileNotFoundError`` and the forbidden server ``PermissionError``. Airflow caches
an object store per ``(protocol, conn_id)`` for the whole process: give each server its own conn_id. s3fs caches
directory listings: after ``put()`` behind its back, a ``glob`` of an already listed prefix misses the new keys until
``path.fs.invalidate_cache()`` (or use a fresh prefix).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any, Self

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


def silence_request_log() -> None:
    """Drop werkzeug's one-line-per-request log that moto's server writes (noise in test output)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def aws_connection_env(conn_id: str, endpoint_url: str) -> dict[str, str]:
    """The ``AIRFLOW_CONN_<CONN_ID>`` variable of an Airflow ``aws`` connection to the server at ``endpoint_url``."""
    connection = {
        "conn_type": "aws",
        "login": DUMMY_ACCESS_KEY_ID,
        "password": DUMMY_SECRET_ACCESS_KEY,
        "extra": {"endpoint_url": endpoint_url, "region_name": REGION},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}


def is_listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client of the server at ``endpoint_url``, signing with the dummy credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=REGION,
    )


class S3Server:
    """moto's S3 in a thread on a free port of 127.0.0.1; started on creation, a context manager."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        silence_request_log()
        self._server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._client: Any = None

    def client(self) -> Any:
        """A boto3 S3 client of the server (dummy credentials), made once."""
        if self._client is None:
            self._client = s3_client(self.endpoint_url)
        return self._client

    def create_bucket(self, name: str) -> None:
        """Create the bucket ``name`` (a valid S3 bucket name, e.g. ``aiml-inputs``)."""
        self.client().create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store ``data`` as the object ``bucket/key``."""
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, bucket: str, key: str) -> bytes:
        """The bytes of the object ``bucket/key``."""
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys of ``bucket`` that start with ``prefix``, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def reset(self) -> None:
        """Forget every bucket and object (moto's state is per process, not per server)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    @property
    def serving(self) -> bool:
        """Whether the server thread is still running."""
        thread = self._server._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        """Stop serving and close the listening socket (moto's ``stop()`` alone leaves it open)."""
        self._server.stop()
        werkzeug_server = self._server._server
        if werkzeug_server is not None:
            werkzeug_server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class ForbiddenS3Server:
    """A moto server in a subprocess that answers every S3 request with 403 (``INITIAL_NO_AUTH_ACTION_COUNT=0``)."""

    def __init__(self, start_timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.host, self.port = HOST, _free_port()
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_until_listening(start_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """The server process id."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status of the server process, ``None`` while it runs."""
        return self._process.poll()

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not is_listening(self.host, self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode} before listening")
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto server not listening on {self.endpoint_url} after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """End the server process: terminate, then kill if it is still there after a few seconds."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

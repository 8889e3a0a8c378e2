"""``AIRFLOW__CORE__HOSTNAME_CALLABLE`` of the cluster test: each Celery worker of one machine names itself."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    """``AIML_WORKER_NAME`` when set (the two workers of ``make test-cluster``), else the machine's name."""
    return os.environ.get("AIML_WORKER_NAME") or socket.getfqdn()

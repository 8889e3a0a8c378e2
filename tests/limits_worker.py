"""A process of the multi-process limit tests: take the limits ``count`` times, hold each slot a while, report.

    python -m tests.limits_worker '<json>'

The JSON names the store (``{"kind": "local", "path": ...}`` or ``{"kind": "redis", "port": ..., "password":
...}``), the limits (``LimitSettings`` fields), ``count``, ``hold_s`` and ``conn_id``. The process prints one
JSON line: ``{"grants": [[granted_at, released_at], ...]}`` in ``time.time()`` seconds. With ``"hold_forever":
true`` it prints ``{"held": n}`` once it holds ``count`` slots, and then sleeps until it is killed.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    spec = json.loads(sys.argv[1])
    store = spec["store"]
    extras = dict(spec["limits"])
    if store["kind"] == "redis":
        os.environ["AIRFLOW_CONN_REDIS_LIMITS"] = json.dumps(
            {"conn_type": "redis", "host": "127.0.0.1", "port": store["port"], "password": store["password"]}
        )
        extras["redis_conn_id"] = "redis_limits"
    else:
        extras["local_path"] = store["path"]

    from airflow_provider_aiml.hooks.settings import LimitSettings
    from airflow_provider_aiml.limits import limiter_for

    limiter = limiter_for(spec["conn_id"], LimitSettings(**extras))
    assert limiter is not None
    if spec.get("hold_forever"):
        for number in range(spec["count"]):
            limiter.acquire(f"held-{number}")
        _report({"held": spec["count"]})
        time.sleep(600)
        return 1
    grants = []
    for number in range(spec["count"]):
        lease = limiter.acquire(f"{os.getpid()}-{number}")
        granted = time.time()
        time.sleep(spec.get("hold_s", 0))
        released = time.time()
        limiter.release(lease, spec.get("usd", 0.0))
        grants.append([granted, released])
    _report({"grants": grants})
    return 0


def _report(value: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())

"""`make test-cluster`: a real multi-worker Airflow on 127.0.0.1, an enrichment of 20,000 records, a killed worker.

Starts, each by its PID and each stopped at the end: PostgreSQL (Debian's server binaries, `tests/pg_server.py`)
as Airflow's metadata database, Redis (`tests/redis_server.py`) as the Celery broker and the store of the
connection-wide limits, the emulator as the API (100 ms per answer), and Airflow with the CeleryExecutor: the API
server, the scheduler, the DAG processor, the triggerer and two Celery workers (two task slots each).

It triggers `aiml_cluster_enrichment` (tests/cluster/dags/): 20,000 records in 8 mapped batch shards, 32 calls at
once per shard, through one connection whose limits (`max_requests_per_minute`, `max_concurrency`, kept in Redis)
hold across both workers. Once about a third of the records are answered, it SIGKILLs the second worker with
every process under it, and notes what the killed shards' checkpoints hold. Airflow then finds the killed task
instances and retries them from their checkpoints.

Checks, from the emulator's request log and Airflow's REST API: every record answered; no record that a
checkpoint held at the kill asked again; at most `max_concurrency` requests in flight at the emulator, ever; at
most `max_requests_per_minute` requests in any window of 60 s (arrivals, with 1 s allowed for the time between a
request's admission and its arrival); both workers ran shards; the run succeeded. The figures go to
docs/cluster.md (and build/cluster/result.json). Exit status 1 when a check fails.

    .venv/bin/python scripts/cluster_test.py [--records N] [--shards N] [--rpm N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pg_server import PostgresServer  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

HOME = REPO / ".airflow-cluster"
BUILD = REPO / "build" / "cluster"
DOC = REPO / "docs" / "cluster.md"
DAG_ID = "aiml_cluster_enrichment"
API_KEY = "sk-cluster-test-key-7d1e"
LATENCY_S = 0.1
WORKERS = ("worker1", "worker2")
SLOTS_PER_WORKER = 2
LEASE_S = 10
ARRIVAL_ALLOWANCE_S = 1.0
RUN_TIMEOUT_S = 900
START_TIMEOUT_S = 240


class Cluster:
    """The processes of the test, each started in a session of its own and stopped by its process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        (HOME / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (HOME / "logs" / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(argv),
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=HOME,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> list[int]:
        """SIGKILL a process and every process under it at once (a worker's machine dying); returns the PIDs."""
        import psutil

        root = psutil.Process(self.processes[name].pid)
        victims = [root, *root.children(recursive=True)]
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.send_signal(signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        self.processes[name].wait(10)
        return [victim.pid for victim in victims]

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after 30 s (and any child outside its group)."""
        import psutil

        everyone: list[psutil.Process] = []
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    root = psutil.Process(process.pid)
                    everyone += [root, *root.children(recursive=True)]
                    os.killpg(process.pid, signal.SIGTERM)
                except (ProcessLookupError, psutil.NoSuchProcess):
                    pass
        _, alive = psutil.wait_procs(everyone, timeout=30)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and name != "worker2":
                raise RuntimeError(f"{name} exited with {process.returncode}; see {HOME / 'logs' / (name + '.log')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=32, help="calls at once per shard")
    parser.add_argument("--rpm", type=int, default=12_000, help="the connection's max_requests_per_minute")
    parser.add_argument("--max-concurrency", type=int, default=48, help="the connection's max_concurrency")
    parser.add_argument("--kill-at", type=float, default=0.35, help="share of records answered when a worker dies")
    parser.add_argument("--keep", action="store_true", help="keep .airflow-cluster/ afterwards")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/cluster.md")
    args = parser.parse_args()

    shutil.rmtree(HOME, ignore_errors=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    HOME.mkdir(parents=True)
    BUILD.mkdir(parents=True)
    started = time.monotonic()
    failures: list[str] = []
    with PostgresServer() as pg, RedisServer() as redis_server:
        emulator = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_aiml.testing", "--port", "0", "--latency", str(LATENCY_S),
             "--api-key", API_KEY],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )  # fmt: skip
        try:
            base_url = _emulator_url(emulator)
            env = _airflow_env(args, pg, redis_server, base_url)
            cluster = Cluster(env)
            try:
                figures = _run(args, cluster, base_url, failures)
            finally:
                cluster.stop()
        finally:
            emulator.send_signal(signal.SIGINT)
            try:
                emulator.wait(15)
            except subprocess.TimeoutExpired:
                emulator.kill()
                emulator.wait(10)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["failures"] = failures
    (BUILD / "result.json").write_text(json.dumps(figures, indent=2) + "\n")
    if not args.no_doc:
        DOC.write_text(_page(figures))
    if not args.keep:
        shutil.rmtree(HOME, ignore_errors=True)
    for failure in failures:
        sys.stderr.write(f"FAILED: {failure}\n")
    summary = (
        f"Cluster test {'passed' if not failures else 'failed'} in {figures['total_s']:.0f}s: "
        f"{figures.get('records_answered', 0):,} records in {figures.get('run_s', 0):.1f}s "
        f"({figures.get('vs_ideal', 0):.2f}x the ideal for the global limit), "
        f"{len(failures)} problem(s)\n"
    )
    sys.stdout.write(summary)
    return 1 if failures else 0


def _emulator_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if "listening on" not in line:
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return line.rsplit(" ", 1)[-1]


def _airflow_env(
    args: argparse.Namespace, pg: PostgresServer, redis_server: RedisServer, base_url: str
) -> dict[str, str]:
    api = f"http://127.0.0.1:{_free_port()}"
    work = HOME / "work"
    redis_url = f"redis://:{redis_server.password}@127.0.0.1:{redis_server.port}/0"
    limits = {
        "max_requests_per_minute": args.rpm,
        "max_concurrency": args.max_concurrency,
        "limits_redis_conn_id": "redis_limits",
        "limits_lease_seconds": LEASE_S,
        "timeout": 60,
        "max_retries": 2,
    }
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "tests" / "cluster" / "dags"),
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.hostname.worker_name",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _with_scheme(pg.uri(), "postgresql+psycopg2"),
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + _with_scheme(pg.uri(), "postgresql"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": api.rsplit(":", 1)[1],
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIML_CLUSTER_RECORDS": str(args.records),
        "AIML_CLUSTER_SHARDS": str(args.shards),
        "AIML_CLUSTER_CONCURRENCY": str(args.concurrency),
        "AIML_CLUSTER_DIR": str(work),
        "AIRFLOW_CONN_AIML_CLUSTER": json.dumps(
            {"conn_type": "aimlapi", "password": API_KEY, "host": base_url, "extra": limits}
        ),
        "AIRFLOW_CONN_REDIS_LIMITS": json.dumps(
            {
                "conn_type": "redis",
                "host": "127.0.0.1",
                "port": redis_server.port,
                "password": redis_server.password,
                "extra": {"db": 1},
            }
        ),
    }


def _with_scheme(uri: str, scheme: str) -> str:
    return scheme + uri[uri.index("://") :]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: argparse.Namespace, cluster: Cluster, base_url: str, failures: list[str]) -> dict[str, Any]:
    env = cluster.env
    api = env["AIRFLOW__API__BASE_URL"]
    migrate = subprocess.run(
        ["airflow", "db", "migrate"], env=env, cwd=HOME, capture_output=True, text=True, timeout=600, check=False
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {migrate.stdout[-2000:]}{migrate.stderr[-2000:]}")
    cluster.start("api-server", "airflow", "api-server")
    cluster.start("scheduler", "airflow", "scheduler")
    cluster.start("dag-processor", "airflow", "dag-processor")
    cluster.start("triggerer", "airflow", "triggerer", "--skip-serve-logs")
    for name in WORKERS:
        cluster.start(
            name,
            "airflow", "celery", "worker", "--concurrency", str(SLOTS_PER_WORKER), "--celery-hostname",
            f"{name}@127.0.0.1", "--skip-serve-logs", "--without-mingle", "--without-gossip",
            env={"AIML_WORKER_NAME": name},
        )  # fmt: skip
    client = _Api(api, HOME)
    client.wait_ready(cluster)
    client.wait_for_dag(DAG_ID, cluster)
    _wait_for_workers(env, cluster)
    client.call("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    run = client.call(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}, "note": "make test-cluster"}
    )
    run_id = run["dag_run_id"]
    emulator = httpx.Client(base_url=base_url.removesuffix("/v1"), timeout=60)

    kill_after = int(args.records * args.kill_at)
    killed_at: float | None = None
    checkpointed_at_kill: set[tuple[int, int]] = set()
    killed_shards: list[int] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    state = "queued"
    while time.monotonic() < deadline:
        cluster.check_alive()
        state = client.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            break
        if killed_at is None:
            answered = emulator.get("/_emulator/stats").json()["chat_requests"]
            running = _running_on(client, run_id, "worker2")
            if answered >= kill_after and running:
                cluster.kill("worker2")
                killed_at = time.monotonic()
                killed_shards = running
                checkpointed_at_kill = _checkpointed(Path(env["AIML_CLUSTER_DIR"]), run_id, running)
                sys.stdout.write(
                    f"SIGKILLed worker2 after {answered:,} answers; its shards {running} had "
                    f"{len(checkpointed_at_kill):,} records in their checkpoints\n"
                )
        time.sleep(2)
    if state != "success":
        failures.append(f"the DAG run ended {state!r} (or timed out after {RUN_TIMEOUT_S}s)")
    if killed_at is None:
        failures.append("worker2 was never killed: it ran no shard once a third of the records were answered")

    log = emulator.get("/_emulator/request_log").json()["requests"]
    stats = emulator.get("/_emulator/stats").json()
    emulator.close()
    tries = _tries(client, run_id, args.shards)
    return _check(args, log, stats, tries, checkpointed_at_kill, killed_shards, failures, state)


class _Api:
    """Airflow's REST API as the admin user (a token from /auth/token), patient with a busy API server."""

    def __init__(self, base: str, home: Path) -> None:
        self.base, self.home = base, home
        self.headers: dict[str, str] = {}

    def wait_ready(self, cluster: Cluster) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            cluster.check_alive()
            try:
                if httpx.get(f"{self.base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            raise RuntimeError(f"the API server did not come up within {START_TIMEOUT_S}s")
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = self.call("POST", "/auth/token", json={"username": "admin", "password": password})
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def wait_for_dag(self, dag_id: str, cluster: Cluster) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            cluster.check_alive()
            response = httpx.get(f"{self.base}/api/v2/dags/{dag_id}", headers=self.headers, timeout=30)
            if response.status_code == 200:
                return
            time.sleep(2)
        raise RuntimeError(f"{dag_id} was not parsed within {START_TIMEOUT_S}s")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.request(method, f"{self.base}{path}", headers=self.headers, timeout=60, **kwargs)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response.json()
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path} kept failing")
            time.sleep(2)


def _wait_for_workers(env: dict[str, str], cluster: Cluster) -> None:
    """Both Celery workers answer a ping, so the first shards can go to either."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        cluster.check_alive()
        probe = subprocess.run(
            [sys.executable, "-c", _PING],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        names = set(probe.stdout.split())
        if {f"{name}@127.0.0.1" for name in WORKERS} <= names:
            return
        time.sleep(2)
    raise RuntimeError("the Celery workers did not both come up")


_PING = """
from airflow.providers.celery.executors.celery_executor_utils import app
replies = app.control.ping(timeout=2.0) or []
print(" ".join(name for reply in replies for name in reply))
"""


def _running_on(client: _Api, run_id: str, worker: str) -> list[int]:
    """Map indexes of the shards running on ``worker`` now."""
    found = client.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return sorted(
        ti["map_index"]
        for ti in found["task_instances"]
        if ti["task_id"] == "enrich" and ti["state"] == "running" and ti.get("hostname") == worker
    )


def _checkpointed(work: Path, run_id: str, shards: list[int]) -> set[tuple[int, int]]:
    """(shard, record index) of every result in the checkpoints of ``shards``."""
    held: set[tuple[int, int]] = set()
    for shard in shards:
        path = work / "checkpoints" / run_id / f"shard-{shard}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by the kill: not a result
                continue
            if isinstance(entry, dict) and "index" in entry:
                held.add((shard, int(entry["index"])))
    return held


def _tries(client: _Api, run_id: str, shards: int) -> list[dict[str, Any]]:
    """Every try of every shard: map index, try number, worker, state."""
    tries = []
    for shard in range(shards):
        found = client.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/enrich/{shard}/tries")
        for entry in found["task_instances"]:
            tries.append(
                {
                    "shard": shard,
                    "try": entry["try_number"],
                    "worker": entry.get("hostname"),
                    "state": entry["state"],
                    "duration_s": entry.get("duration"),
                }
            )
    return tries


def _record_of(client_request_id: str | None) -> tuple[int, int, int] | None:
    """(shard, try, record) from ``dag:task:run:<map>:<try>:r<index>``."""
    if not client_request_id or ":r" not in client_request_id:
        return None
    head, _, index = client_request_id.rpartition(":r")
    parts = head.split(":")
    try:
        return int(parts[-2]), int(parts[-1]), int(index)
    except (ValueError, IndexError):
        return None


def _check(
    args: argparse.Namespace,
    log: list[dict[str, Any]],
    stats: dict[str, Any],
    tries: list[dict[str, Any]],
    checkpointed_at_kill: set[tuple[int, int]],
    killed_shards: list[int],
    failures: list[str],
    state: str,
) -> dict[str, Any]:
    chat = [entry for entry in log if entry["route"].endswith("/chat/completions")]
    asked: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for entry in chat:
        record = _record_of(entry["client_request_id"])
        if record is not None:
            asked[(record[0], record[2])].append({"try": record[1], **entry})
    per_shard = -(-args.records // args.shards)
    expected = {
        (shard, index) for shard in range(args.shards) for index in range(len(range(shard, args.records, args.shards)))
    }
    answered = {record for record, entries in asked.items() if any(e["status"] == 200 for e in entries)}
    if answered != expected:
        failures.append(f"{len(expected - answered)} records never answered, {len(answered - expected)} unexpected")
    asked_again = {record for record, entries in asked.items() if len(entries) > 1}
    wrongly = asked_again & checkpointed_at_kill
    if wrongly:
        failures.append(f"{len(wrongly)} records already in a checkpoint at the kill were asked again")
    elsewhere = {record for record in asked_again if record[0] not in killed_shards}
    if elsewhere:
        failures.append(f"{len(elsewhere)} records of shards that were not killed were asked more than once")
    if stats["max_in_flight"] > args.max_concurrency:
        failures.append(
            f"{stats['max_in_flight']} requests in flight at once, over max_concurrency={args.max_concurrency}"
        )
    arrivals = sorted(entry["received_at"] for entry in chat)
    busiest = _busiest_window(arrivals, 60.0 - ARRIVAL_ALLOWANCE_S)
    if busiest > args.rpm:
        failures.append(f"{busiest} requests arrived within 59 s, over max_requests_per_minute={args.rpm}")
    workers = Counter(t["worker"] for t in tries)
    if not all(workers.get(name) for name in WORKERS):
        failures.append(f"the shards did not run on both workers: {dict(workers)}")
    retried = [t for t in tries if t["try"] > 1]
    if killed_shards and not retried:
        failures.append("no shard was retried after the kill")
    run_s = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    ideal_s = args.records / (args.rpm / 60)
    if run_s > 1.25 * ideal_s:
        failures.append(f"the records took {run_s:.1f}s, over 1.25 x the ideal {ideal_s:.1f}s for the global limit")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "records": args.records,
        "shards": args.shards,
        "records_per_shard": per_shard,
        "concurrency_per_shard": args.concurrency,
        "max_requests_per_minute": args.rpm,
        "max_concurrency": args.max_concurrency,
        "latency_s": LATENCY_S,
        "workers": len(WORKERS),
        "slots_per_worker": SLOTS_PER_WORKER,
        "lease_s": LEASE_S,
        "state": state,
        "requests": len(chat),
        "records_answered": len(answered),
        "records_asked_again": len(asked_again),
        "checkpointed_at_kill": len(checkpointed_at_kill),
        "checkpointed_asked_again": len(wrongly),
        "killed_shards": killed_shards,
        "max_in_flight": stats["max_in_flight"],
        "busiest_59s": busiest,
        "run_s": round(run_s, 1),
        "ideal_s": round(ideal_s, 1),
        "vs_ideal": round(run_s / ideal_s, 3) if ideal_s else 0.0,
        "tries_by_worker": dict(workers),
        "tries": tries,
        "cores": os.cpu_count(),
    }


def _busiest_window(times: list[float], window: float) -> int:
    """The most timestamps within any window of ``window`` seconds."""
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _page(f: dict[str, Any]) -> str:
    ok = not f["failures"]
    rows = [
        ("Records", f"{f['records']:,} in {f['shards']} mapped shards of {f['records_per_shard']:,}"),
        ("Workers", f"{f['workers']} Celery workers, {f['slots_per_worker']} task slots each"),
        ("Calls at once per shard", str(f["concurrency_per_shard"])),
        ("Emulator latency", f"{f['latency_s'] * 1000:.0f} ms per answer"),
        (
            "Connection-wide limits (Redis)",
            f"max_requests_per_minute={f['max_requests_per_minute']:,}, max_concurrency={f['max_concurrency']}, "
            f"leases of {f['lease_s']} s",
        ),
        ("DAG run", f["state"]),
        ("Records answered", f"{f['records_answered']:,} of {f['records']:,} ({f['requests']:,} requests)"),
        ("Worker killed (SIGKILL)", f"worker2, running shards {f['killed_shards']}"),
        ("Records in the killed shards' checkpoints at the kill", f"{f['checkpointed_at_kill']:,}"),
        ("Of those, asked again", f"{f['checkpointed_asked_again']}"),
        ("Records asked more than once (in flight at the kill)", f"{f['records_asked_again']:,}"),
        ("Most requests in flight at once (emulator)", f"{f['max_in_flight']} (limit {f['max_concurrency']})"),
        (
            "Most requests arriving within 59 s",
            f"{f['busiest_59s']:,} (limit {f['max_requests_per_minute']:,} per 60 s)",
        ),
        ("Tries by worker", ", ".join(f"{name}: {count}" for name, count in sorted(f["tries_by_worker"].items()))),
        (
            "First to last request",
            f"{f['run_s']:.1f} s; ideal for the global limit {f['ideal_s']:.1f} s; {f['vs_ideal']:.2f}x "
            f"(target within 1.25x)",
        ),
        ("Whole test", f"{f['total_s']:.0f} s, start-up and shut-down included"),
    ]
    table = "\n".join(f"| {what} | {value} |" for what, value in rows)
    tries = "\n".join(
        f"| {t['shard']} | {t['try']} | {t['worker']} | {t['state']} | "
        f"{'' if t['duration_s'] is None else format(t['duration_s'], '.1f')} |"
        for t in sorted(f["tries"], key=lambda t: (t["shard"], t["try"]))
    )
    return f"""# A real multi-worker deployment

`make test-cluster` (run by CI) starts a real Airflow on one machine, runs an enrichment of {f["records"]:,} records
over two Celery workers under one connection's limits, kills one worker in the middle, and checks the outcome
from the emulator's request log and Airflow's REST API. This page is written by the test itself
(`scripts/cluster_test.py`); the figures below are from its last run, {f["date"]}, on a {f["cores"]}-core machine.
Result: **{"every check passed" if ok else "FAILED: " + "; ".join(f["failures"])}**.

What runs, each process started and stopped by its PID on 127.0.0.1: PostgreSQL (Debian's package) as the
metadata database; Redis (Debian's package) as the Celery broker and as the store of the connection-wide
limits; the emulator as the API; Airflow's API server, scheduler, DAG processor and triggerer; two Celery
workers. The DAG is `tests/cluster/dags/aiml_cluster_enrichment.py`: one task deals the records into shards,
and a mapped `AimlBatchChatCompletionOperator` enriches each shard with a checkpoint of its own.

| | |
| --- | --- |
{table}

How it is checked:

- **Every record answered once.** Each request's `X-Client-Request-Id` names the shard, the try and the record.
  Every record has an answer; the only records asked more than once are ones that were in flight, or answered
  but not yet checkpointed, when the worker died.
- **No finished record asked again.** At the kill the test reads the killed shards' checkpoints; none of the
  records they hold was asked again by the retries.
- **The global limits.** The emulator counts the requests it is handling at once, and stamps each arrival. The
  most in flight must stay within `max_concurrency`. The arrivals in any 59 s must stay within
  `max_requests_per_minute`: the limiter holds every 60 s of admissions to the limit, and 1 s is left for a
  request to travel from its admission to the emulator.
- **Both workers used**, from the hostname of each try (each worker names itself through
  `hostname_callable`).
- **Speed.** From the first request to the last, against the ideal for the global limit,
  {f["records"]:,} / ({f["max_requests_per_minute"]:,} / 60 s). The heartbeat timeout is 20 s, so Airflow notices
  the killed tries within about half a minute and retries them on the surviving worker.

The tries of each shard:

| Shard | Try | Worker | State | Duration s |
| --- | --- | --- | --- | --- |
{tries}
"""


if __name__ == "__main__":
    raise SystemExit(main())

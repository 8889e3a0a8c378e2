"""What the benchmarks share: emulator processes, worker processes, an isolated Airflow environment, statistics.

Every process a benchmark starts is stopped in a ``finally`` (emulators get SIGINT, then SIGKILL if they do not
exit), and worker processes run under a timeout, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk-bench"
MODEL = "openai/gpt-4o-mini"
EMULATOR_MODULE = "airflow_provider_aiml.testing"
RESULT_PREFIX = "RESULT "
START_TIMEOUT_S = 60.0


# --- emulator processes ----------------------------------------------------------------------------------------


class EmulatorControl:
    """The emulator's control endpoints (``/_emulator/*``, see docs/emulator.md) over one kept-alive connection.

    One connection, opened before any ``reset()``, so the ``connections_opened`` counter after a reset counts
    only the connections of the client being measured.
    """

    def __init__(self, root: str) -> None:
        import httpx

        self._client = httpx.Client(base_url=root, timeout=60)

    def call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        """Call a control endpoint (or another path of the server) and return its JSON answer."""
        response = self._client.request(method, path, json=payload)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Clear the request log, counters, queued faults and fixed reply."""
        self.call("POST", "/_emulator/reset")

    def stats(self) -> dict[str, Any]:
        """The counters: ``requests``, ``chat_requests``, ``connections_opened``..."""
        result: dict[str, Any] = self.call("GET", "/_emulator/stats")
        return result

    def set_reply(self, content: str | None = None, reasoning: str | None = None) -> None:
        """Fix the reply's content and reasoning (``None`` for both: generated replies again)."""
        self.call("POST", "/_emulator/reply", {"content": content, "reasoning": reasoning})

    def add_fault(self, fault: Mapping[str, Any], times: int = 1) -> None:
        """Queue a fault for the next ``times`` chat requests, e.g. ``{"kind": "slow_stream", ...}``."""
        self.call("POST", "/_emulator/faults", {**fault, "times": times})

    def close(self) -> None:
        """Close the control connection."""
        self._client.close()


@dataclass
class Emulator:
    """A running emulator process."""

    process: subprocess.Popen[str]
    base_url: str

    @property
    def root(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8080``."""
        return root_of(self.base_url)


def root_of(base_url: str) -> str:
    """The server root of an emulator base URL (without ``/v1``)."""
    return base_url.removesuffix("/v1")


@contextlib.contextmanager
def emulator_process(*options: str, module: str = EMULATOR_MODULE, cpu: int | None = None) -> Iterator[Emulator]:
    """Start ``python -m <module> --port 0 <options>`` (the emulator CLI) and stop it when the block ends;
    ``cpu``: the one core it may run on (see :func:`pinned_to`)."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=clean_env(),
        preexec_fn=pinned_to(cpu),
    )
    try:
        line = _first_line(process, START_TIMEOUT_S)
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield Emulator(process, line.rsplit(" ", 1)[-1])
    finally:
        stop_process(process)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"no output from {process.args!r} within {timeout:g}s")
    return process.stdout.readline().strip()


def stop_process(process: subprocess.Popen[str], timeout: float = 15.0) -> None:
    """SIGINT (the emulator's clean stop), then SIGKILL when it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


# --- environment -----------------------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This process's environment without Airflow settings, API keys (a test session sets some) or
    ``PYTHONDONTWRITEBYTECODE``: a deployment runs on cached bytecode (pip writes it when it installs a wheel), and
    without it every process would compile the provider's sources again."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "AIMLAPI_", "_AIRFLOW")) and k != "PYTHONDONTWRITEBYTECODE"
    }


def connection_json(base_url: str) -> str:
    """The ``aimlapi`` connection of the benchmarks: the emulator, a fixed key, no retries."""
    return json.dumps({"conn_type": "aimlapi", "password": API_KEY, "host": base_url, "extra": {"max_retries": 0}})


def airflow_env(home: Path, connections: Mapping[str, str] | None = None) -> dict[str, str]:
    """An isolated Airflow home (dags folder, SQLite database) plus ``AIRFLOW_CONN_<ID>`` for each base URL."""
    env = clean_env()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
    )
    for conn_id, base_url in (connections or {}).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection_json(base_url)
    return env


# --- worker processes ------------------------------------------------------------------------------------------


def run_worker(
    module: str, params: Mapping[str, Any], env: Mapping[str, str], timeout: float, cpu: int | None = None
) -> dict[str, Any]:
    """Run ``python -m <module> --worker <params as JSON>`` and return the JSON it prints after ``RESULT``;
    ``cpu``: the one core it may run on (see :func:`pinned_to`)."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--worker", json.dumps(params)],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=pinned_to(cpu),
    )
    return parse_result(done, module)


def separate_cores() -> tuple[int, int] | None:
    """Two cores this process may use, one for the client under test and one for the emulator, or ``None``.

    The emulator stands for a server on another machine. Sharing two cores with the client, the kernel may wake
    one of the client's threads on the core the emulator is still busy on, which costs a thread hop about
    150 µs that a client of a remote API does not pay; pinning the two processes apart removes that."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cores[0], cores[1]) if len(cores) >= 2 else None


def pinned_to(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child process (every thread of it) on core ``cpu``; ``None`` for any."""
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def parse_result(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """The last ``RESULT {...}`` line of a finished process; raises with its output tails when there is none."""
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return result


def worker_main(work: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Entry point of ``python -m benchmarks.<name> --worker '<json>'``: run ``work`` and print its result."""
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.stderr.write(f"usage: python -m {sys.argv[0]} --worker '<json params>' (started by the benchmarks)\n")
        return 2
    result = work(json.loads(sys.argv[2]))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def configure_task_logging(path: Path) -> None:
    """Log like a task does: Airflow's structlog set-up, JSON lines, written unbuffered to ``path``.

    The task runner calls ``configure_logging(json_output=True, output=<log socket>, sending_to_supervisor=True)``;
    here the socket is a file, so the task-side cost (processors, JSON rendering, one write per line) is paid
    and the supervisor's side (secret masking, copying to the log file) is not.
    """
    from airflow.sdk.log import configure_logging, reset_logging

    reset_logging()
    configure_logging(json_output=True, output=path.open("ab", buffering=0), sending_to_supervisor=True)


@contextlib.contextmanager
def temp_home() -> Iterator[Path]:
    """A throw-away Airflow home with an empty dags folder."""
    with tempfile.TemporaryDirectory(prefix="aiml-bench-") as home:
        (Path(home) / "dags").mkdir()
        yield Path(home)


# --- statistics and reporting ----------------------------------------------------------------------------------


class Timer:
    """Wall time and this process's CPU time (user + system, all threads) of a block."""

    wall: float
    cpu: float

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rotated(items: Sequence[str], shift: int) -> list[str]:
    """``items`` starting at index ``shift``: each repetition measures the peers in a different order."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def verdict(ok: bool | None) -> str:
    """The cell of a target column (``None``: no target, reported for reference)."""
    if ok is None:
        return "n/a"
    return "**PASS**" if ok else "**MISS**"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and OS of this machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = math.nan
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram_gb, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Versions of the provider and the packages the figures depend on ("not installed" when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "airflow-provider-aiml",
        "apache-airflow",
        "httpx",
        "httpcore",
        "pydantic",
        "structlog",
        "openai",
        "httpx2",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (the OpenAI SDK and matplotlib are optional: the ``bench`` extra)."""
    import importlib.util

    return importlib.util.find_spec(name) is not None

"""Per-call overhead at zero emulator latency: the hook against bare httpx and the OpenAI SDK, sync and async.

The parent starts the emulator (its own process) and one worker process that runs every client, so the client
and the emulator never share a GIL. The worker logs like an Airflow task (structlog JSON lines to a file) and
measures, for each client, calls per second and its own CPU time per call; the clients take turns in a
different order on every repetition. Before each measurement the emulator's counters are reset, after it they
are read back to check that every call made exactly one HTTP request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks._common import (
    API_KEY,
    MODEL,
    EmulatorControl,
    Timer,
    airflow_env,
    configure_task_logging,
    emulator_process,
    has_module,
    median,
    root_of,
    rotated,
    run_worker,
    table,
    temp_home,
    verdict,
    worker_main,
)

NAME = "overhead"
TITLE = "Per-call overhead"
FULL: dict[str, Any] = {"sync_calls": 1500, "async_calls": 2000, "concurrency": 16, "repeat": 9, "warmup": 50}
QUICK: dict[str, Any] = {"sync_calls": 60, "async_calls": 128, "concurrency": 8, "repeat": 1, "warmup": 5}
TARGET_VS_HTTPX = 1.15
PROMPT = "Label this: record 17: the kettle arrived late but works well."

RAW = "emulator ceiling (raw socket)"
HTTPX = "bare httpx"
HOOK = "hook (log_calls=True, default)"
HOOK_QUIET = "hook (log_calls=False)"
OPENAI = "OpenAI SDK"


def run(
    *,
    sync_calls: int = FULL["sync_calls"],
    async_calls: int = FULL["async_calls"],
    concurrency: int = FULL["concurrency"],
    repeat: int = FULL["repeat"],
    warmup: int = FULL["warmup"],
    timeout: float = 1800,
) -> dict[str, Any]:
    """Measure every client; returns per-client medians, the raw runs and the targets."""
    params: dict[str, Any] = {
        "sync_calls": sync_calls,
        "async_calls": async_calls,
        "concurrency": concurrency,
        "repeat": repeat,
        "warmup": warmup,
        "openai": has_module("openai"),
    }
    with emulator_process() as emulator, temp_home() as home:
        params |= {"base_url": emulator.base_url, "emulator_pid": emulator.process.pid, "log": str(home / "task.log")}
        raw = run_worker(f"benchmarks.{NAME}", params, airflow_env(home, {"aiml_default": emulator.base_url}), timeout)
    result: dict[str, Any] = {"params": {k: v for k, v in params.items() if k not in ("emulator_pid", "log")}}
    for mode in ("sync", "async"):
        runs = raw[mode]
        clients = {name: _summary(measurements) for name, measurements in runs.items()}
        base = clients[HTTPX]
        for name, summary in clients.items():
            # Paired: each round measures every client within seconds, so a round's ratio is not moved by the
            # machine getting slower or faster between rounds.
            ratios = [
                (m["wall"] / m["calls"]) / (h["wall"] / h["calls"])
                for m, h in zip(runs[name], runs[HTTPX], strict=True)
            ]
            summary["time_vs_httpx"] = median(ratios)
            summary["runs_time_vs_httpx"] = [round(ratio, 3) for ratio in ratios]
            summary["cpu_vs_httpx"] = summary["cpu_us_per_call"] / base["cpu_us_per_call"]
        result[mode] = clients
    result["pieces"] = raw["pieces"]
    result["targets"] = _targets(result)
    return result


def _summary(measurements: list[dict[str, float]]) -> dict[str, Any]:
    calls = sum(m["calls"] for m in measurements)
    return {
        "calls_per_s": median([m["calls"] / m["wall"] for m in measurements]),
        "cpu_us_per_call": median([m["cpu"] / m["calls"] * 1e6 for m in measurements]),
        "emulator_busy": median([m["emulator_cpu"] / m["wall"] for m in measurements]),
        "requests_per_call": sum(m["chat_requests"] for m in measurements) / calls,
        "connections": max(m["connections"] for m in measurements),
        "log_lines_per_call": sum(m["log_lines"] for m in measurements) / calls,
        "runs_calls_per_s": [round(m["calls"] / m["wall"], 1) for m in measurements],
    }


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for mode in ("sync", "async"):
        clients = result[mode]
        for hook in (HOOK, HOOK_QUIET):
            ratio = clients[hook]["time_vs_httpx"]
            targets.append(
                {
                    "what": f"{mode}: {hook}, time per call vs bare httpx",
                    "target": f"<= {TARGET_VS_HTTPX}x",
                    "value": f"{ratio:.2f}x",
                    "ok": ratio <= TARGET_VS_HTTPX,
                }
            )
        if OPENAI in clients:
            hook, sdk = clients[HOOK]["calls_per_s"], clients[OPENAI]["calls_per_s"]
            targets.append(
                {
                    "what": f"{mode}: {HOOK} vs the OpenAI SDK",
                    "target": "faster",
                    "value": f"{hook / sdk:.2f}x the SDK's calls/s",
                    "ok": hook > sdk,
                }
            )
    return targets


# --- report ----------------------------------------------------------------------------------------------------


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p = result["params"]
    lines = [
        f"## {TITLE}",
        "",
        "The same chat completion (one short user message) sent over and over to the emulator answering at once.",
        f"Sync: {p['sync_calls']:,} calls one after another per measurement. Async: {p['async_calls']:,} calls by "
        f"{p['concurrency']} concurrent coroutines. Each figure is the median of {p['repeat']} rounds; in each "
        "round every client is measured once, back to back (a different order each round), in one worker process. "
        "A ratio against bare httpx is the median of the rounds' ratios: each compares two measurements taken "
        "seconds apart, so the machine getting faster or slower between rounds does not move it.",
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
    ]
    if img:
        lines += [f"![Calls per second by client]({img})", ""]
    for mode, label in (("sync", "Sync, one call at a time"), ("async", f"Async, {p['concurrency']} concurrent calls")):
        rows = []
        for name, s in result[mode].items():
            rows.append(
                (
                    name,
                    f"{s['calls_per_s']:,.0f}",
                    "-" if name == RAW else f"{s['time_vs_httpx']:.2f}x",
                    f"{s['cpu_us_per_call']:,.0f}",
                    "-" if name == RAW else f"{s['cpu_vs_httpx']:.2f}x",
                    f"{s['emulator_busy']:.0%}" if not math.isnan(s["emulator_busy"]) else "n/a",
                    f"{s['requests_per_call']:.3f}",
                    s["connections"],
                    f"{s['log_lines_per_call']:.2f}",
                )
            )
        header = (
            "Client",
            "Calls/s",
            "Time/call vs httpx",
            "Client CPU µs/call",
            "CPU vs httpx",
            "Emulator busy",
            "HTTP requests/call",
            "New connections",
            "Log lines/call",
        )
        lines += [f"### {label}", "", *table(header, rows), ""]
        runs = "; ".join(
            f"{name} {', '.join(f'{v:,.0f}' for v in s['runs_calls_per_s'])}" for name, s in result[mode].items()
        )
        ratios = "; ".join(
            f"{name} {', '.join(f'{v:.2f}' for v in s['runs_time_vs_httpx'])}"
            for name, s in result[mode].items()
            if name not in (RAW, HTTPX)
        )
        lines += [f"Calls/s of each round: {runs}.", "", f"Time per call vs bare httpx, round by round: {ratios}.", ""]
    pieces = result["pieces"]
    lines += [
        "Where the hook's time goes: its own steps of one call, each timed alone in a tight loop (µs per call, "
        "best of 5 x 5,000; in the measurements above, between network round trips, the same code runs with "
        "colder caches and costs more):",
        "",
        *table(
            ("Step", "µs"),
            [
                (
                    "Check and build the request (`PreparedChat.build`: messages, parameters, JSON bytes, id)",
                    f"{pieces['build']:.1f}",
                ),
                (
                    "Read the answer (`parse_completion`: JSON, choices, reasoning, usage and cost)",
                    f"{pieces['parse']:.1f}",
                ),
                (
                    "For comparison: bare httpx's `json()` of the same answer (`json.loads`)",
                    f"{pieces['bare_json']:.1f}",
                ),
                ("The summary log line, through Airflow's task logging", f"{pieces['log_line']:.1f}"),
            ],
        ),
        "",
        *_method_notes(result),
    ]
    return lines


def _method_notes(result: dict[str, Any]) -> list[str]:
    notes = [
        "How it is measured:",
        "",
        f"- **Clients.** `{HTTPX}`: `httpx.Client.post(...).json()` (async: one `httpx.AsyncClient` with as many "
        "connections as coroutines) with the body the hook sends. The hook: `AimlApiHook.chat_completion` / "
        "`achat_completion`, connection from `AIRFLOW_CONN_AIML_DEFAULT` (`max_retries` 0). The OpenAI SDK: "
        "`OpenAI(base_url=<emulator>, api_key=...).chat.completions.create(...)` and `AsyncOpenAI`, defaults "
        "otherwise. All return parsed results; bare httpx returns a dict.",
        "- **Async pools.** The hook spreads async calls over small pools (one `httpx.AsyncClient` of 8 "
        "connections per 8 concurrent calls, `AimlApiHook.get_async_conn`), because one httpcore pool serving many "
        "connections costs more per call; the bare row uses one `AsyncClient` sized to the concurrency, as a "
        "user would write it, and pays that cost.",
        f"- **{RAW}.** A keep-alive socket loop that sends the same request bytes and reads the response by its "
        "`Content-Length`, with no parsing: what the emulator can serve when the client costs almost nothing. "
        "It is the ceiling of every other row.",
        "- **Client CPU µs/call** is the worker's `time.process_time()` (user + system) over the measurement: the "
        "client's own cost, whatever the emulator's. Calls/s also contains the emulator's time per request and the "
        "loopback round trip, which are the same for every client, so wall-clock ratios understate the "
        "difference in client cost and the CPU ratio is the stricter comparison.",
        "- **Emulator busy** is the emulator process's CPU time (from `/proc/<pid>/stat`) over the wall time of "
        "the measurement. Near 100% the emulator, not the client, sets the rate.",
        "- **Logging.** The worker sets up logging the way Airflow's task runner does "
        "(`airflow.sdk.log.configure_logging(json_output=True, sending_to_supervisor=True)`) with an unbuffered "
        "file instead of the supervisor's socket: every summary line is rendered to JSON and written, as in a "
        "task. The supervisor's work on the line (secret masking, writing the task log) happens in another "
        "process in Airflow and is not counted. httpx's own request log is at WARNING in that set-up.",
        "- **HTTP requests/call** is the emulator's `chat_requests` counter over the calls of the measurement "
        "(reset before, read after): 1.000 means no hidden retries or extra requests. New connections is the "
        "most a client opened during one measurement, after its warm-up calls: 0 means every call reused a "
        "kept-alive connection.",
        "- The OpenAI SDK (3.x) runs on its own HTTP stack (`httpx2`), whose request log line (`HTTP Request: "
        "POST ...`) is at INFO: in a task it writes one line per call, as the hook's default does.",
    ]
    busy = [
        name
        for mode in ("sync", "async")
        for name, s in result[mode].items()
        if name != RAW and not math.isnan(s["emulator_busy"]) and s["emulator_busy"] >= 0.85
    ]
    if busy:
        notes.append(
            f"- In this run the emulator was busy 85% or more of the time for {', '.join(sorted(set(busy)))}: "
            "those rates are capped by the emulator, so compare their client CPU instead."
        )
    else:
        notes.append(
            "- In this run no client kept the emulator busy 85% of the time or more, so no client was capped "
            "by it; the emulator ran as one process, as a second emulator process would only compete with the "
            "client for the 2 cores."
        )
    return [*notes, ""]


def plot(result: dict[str, Any], path: Path) -> None:
    """Horizontal bars of calls per second, sync and async, one bar per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, mode in zip(axes, ("sync", "async"), strict=True):
        names = list(result[mode])
        rates = [result[mode][name]["calls_per_s"] for name in names]
        colors = ["#bbbbbb" if n == RAW else "#1f77b4" if n.startswith("hook") else "#ff7f0e" for n in names]
        ax.barh(names, rates, color=colors)
        ax.invert_yaxis()
        ax.set_title(f"{mode} (median calls/s, higher is better)", fontsize=10)
        for y, rate in enumerate(rates):
            ax.text(rate, y, f" {rate:,.0f}", va="center", fontsize=8)
        ax.set_xlim(0, max(rates) * 1.2)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- worker ----------------------------------------------------------------------------------------------------


def _work(params: dict[str, Any]) -> dict[str, Any]:
    """Runs in the worker process: every client, sync then async."""
    log_path = Path(params["log"])
    configure_task_logging(log_path)
    control = EmulatorControl(root_of(params["base_url"]))
    probe = _Probe(control, log_path, int(params["emulator_pid"]))
    try:
        sync = _sync_section(params, probe)
        async_ = asyncio.run(_async_section(params, probe))
        pieces = _pieces(params)
    finally:
        control.close()
    return {"sync": sync, "async": async_, "pieces": pieces}


def _pieces(params: dict[str, Any], repeat: int = 5, number: int = 5000) -> dict[str, float]:
    """The hook's own steps of one call, each timed alone in a tight loop (µs, best of ``repeat``): what the hook
    adds on top of the HTTP exchange, with caches warm."""
    import timeit

    import httpx

    from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat
    from airflow_provider_aiml.hooks.parsing import parse_completion

    messages, body = _request(params["base_url"])
    hook = AimlApiHook()
    settings = hook.settings
    call = PreparedChat.build(settings, messages, MODEL, None, None, {}, stream=False)
    with httpx.Client(base_url=params["base_url"], headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        response = client.post("/chat/completions", json=body)
    result = parse_completion(response.content, call.info(response))
    steps: dict[str, Callable[[], Any]] = {
        "build": lambda: PreparedChat.build(settings, messages, MODEL, None, None, {}, stream=False),
        "parse": lambda: parse_completion(response.content, call.info(response)),
        "bare_json": lambda: json.loads(response.content),
        "log_line": lambda: hook._log_summary(result, 1),
    }
    return {name: min(timeit.repeat(step, repeat=repeat, number=number)) / number * 1e6 for name, step in steps.items()}


class _Probe:
    """Reads what a measurement caused: emulator counters and CPU time, log lines written."""

    def __init__(self, control: EmulatorControl, log_path: Path, emulator_pid: int) -> None:
        self.control = control
        self.log_path = log_path
        self.pid = emulator_pid

    def start(self) -> None:
        self.control.reset()
        self._log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._emulator_cpu = _process_cpu(self.pid)

    def finish(self, timer: Timer, calls: int) -> dict[str, float]:
        emulator_cpu = _process_cpu(self.pid) - self._emulator_cpu
        stats = self.control.stats()
        with self.log_path.open("rb") as log:
            log.seek(self._log_size)
            log_lines = log.read().count(b"\n")
        return {
            "calls": calls,
            "wall": timer.wall,
            "cpu": timer.cpu,
            "emulator_cpu": emulator_cpu,
            "chat_requests": stats["chat_requests"],
            "connections": stats["connections_opened"],
            "log_lines": log_lines,
        }


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


def _request(base_url: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    messages = [{"role": "user", "content": PROMPT}]
    return messages, {"model": MODEL, "messages": messages}


def _sync_section(params: dict[str, Any], probe: _Probe) -> dict[str, list[dict[str, float]]]:
    import httpx

    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    base_url = params["base_url"]
    messages, body = _request(base_url)
    bare = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"})
    hook, quiet = AimlApiHook(), AimlApiHook(log_calls=False)
    raw = _RawConnection(base_url, body)
    clients: dict[str, Callable[[], Any]] = {
        RAW: raw.call,
        HTTPX: lambda: bare.post("/chat/completions", json=body).json(),
        HOOK: lambda: hook.chat_completion(messages, model=MODEL),
        HOOK_QUIET: lambda: quiet.chat_completion(messages, model=MODEL),
    }
    if params["openai"]:
        import openai

        sdk = openai.OpenAI(base_url=base_url, api_key=API_KEY)
        clients[OPENAI] = lambda: sdk.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    calls = int(params["sync_calls"])
    try:
        for repetition in range(int(params["repeat"])):
            for name in rotated(list(clients), repetition):
                call = clients[name]
                for _ in range(int(params["warmup"])):
                    call()
                probe.start()
                with Timer() as timer:
                    for _ in range(calls):
                        call()
                runs[name].append(probe.finish(timer, calls))
    finally:
        raw.close()
        bare.close()
        hook.close()
        quiet.close()
    return runs


async def _async_section(params: dict[str, Any], probe: _Probe) -> dict[str, list[dict[str, float]]]:
    import httpx

    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    base_url = params["base_url"]
    concurrency = int(params["concurrency"])
    messages, body = _request(base_url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    bare = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, limits=limits)
    hook = AimlApiHook(max_concurrency=concurrency)
    quiet = AimlApiHook(max_concurrency=concurrency, log_calls=False)
    raw = [_AsyncRawConnection(base_url, body) for _ in range(concurrency)]

    async def bare_call(index: int) -> Any:
        return (await bare.post("/chat/completions", json=body)).json()

    clients: dict[str, Callable[[int], Awaitable[Any]]] = {
        RAW: lambda index: raw[index].call(),
        HTTPX: bare_call,
        HOOK: lambda index: hook.achat_completion(messages, model=MODEL),
        HOOK_QUIET: lambda index: quiet.achat_completion(messages, model=MODEL),
    }
    sdk = None
    if params["openai"]:
        import openai

        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY)
        clients[OPENAI] = lambda index: sdk.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]

    async def drive(call: Callable[[int], Awaitable[Any]], per_worker: int) -> None:
        async def worker(index: int) -> None:
            for _ in range(per_worker):
                await call(index)

        await asyncio.gather(*(worker(index) for index in range(concurrency)))

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    per_worker = max(1, int(params["async_calls"]) // concurrency)
    warmup = max(1, int(params["warmup"]) // concurrency)
    try:
        for repetition in range(int(params["repeat"])):
            for name in rotated(list(clients), repetition):
                await drive(clients[name], warmup)
                probe.start()
                with Timer() as timer:
                    await drive(clients[name], per_worker)
                runs[name].append(probe.finish(timer, per_worker * concurrency))
    finally:
        for connection in raw:
            await connection.close()
        await bare.aclose()
        await hook.aclose()
        await quiet.aclose()
        if sdk is not None:
            await sdk.close()
    return runs


def _raw_request(base_url: str, body: dict[str, Any]) -> tuple[str, int, bytes]:
    import httpx

    url = httpx.URL(base_url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return url.host, int(url.port or 80), head.encode() + payload


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    raise RuntimeError(f"no Content-Length in {head[:200]!r}")


class _RawConnection:
    """One keep-alive connection sending prepared request bytes; reads the response without parsing it."""

    def __init__(self, base_url: str, body: dict[str, Any]) -> None:
        host, port, self.request = _raw_request(base_url, body)
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def call(self) -> None:
        self.sock.sendall(self.request)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the emulator closed the connection")
            head += line
        self.reader.read(_content_length(head))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class _AsyncRawConnection:
    """The async :class:`_RawConnection`, connected on first use."""

    def __init__(self, base_url: str, body: dict[str, Any]) -> None:
        self.host, self.port, self.request = _raw_request(base_url, body)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self) -> None:
        if self.streams is None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.streams = reader, writer
        reader, writer = self.streams
        writer.write(self.request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(_content_length(head))

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


if __name__ == "__main__":
    raise SystemExit(worker_main(_work))

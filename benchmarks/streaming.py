"""Streaming: how soon a chunk reaches the task log, and how many chunks per second the SSE parsing takes.

(a) Latency. The emulator runs in its own process with a wrapper that notes ``time.time()`` right before it
writes each SSE event (``benchmarks/_stamped_emulator.py``); the stream is slowed down with the emulator's
``slow_stream`` fault so that events arrive one by one. In the worker, the chat operator runs with
``stream=True`` (``execute()``, logging set up like a task); the worker notes ``time.time()`` when the hook
yields each delta and right after the operator's stream log writer has written each line. Both processes read
the same clock (CLOCK_REALTIME), so the differences are the event's way from the emulator's ``write`` to the
hook's ``yield`` and to the written log line. A bare httpx loop on the same stream is the floor.

(b) Throughput. One long stream (thousands of events, no delay) read by the hook's ``stream_chat_completion``,
by a bare httpx ``iter_lines()`` + ``json.loads`` loop, by the OpenAI SDK, and by a raw socket that only reads
the bytes (the emulator's ceiling).
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Callable, Iterator
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
    percentile,
    root_of,
    rotated,
    run_worker,
    table,
    temp_home,
    worker_main,
)

NAME = "streaming"
TITLE = "Streaming"
FULL: dict[str, Any] = {"lines": 90, "chunk_delay": 0.01, "chunks": 10_000, "repeat": 5}
QUICK: dict[str, Any] = {"lines": 10, "chunk_delay": 0.005, "chunks": 300, "repeat": 1}
WORDS_PER_LINE = 7
PROMPT = "Explain the quarterly report line by line."

OPERATOR = "operator (stream=True): hook yields the delta"
OPERATOR_LOG = "operator (stream=True): log line written"
BARE = "bare httpx iter_lines + json.loads"
RAW = "emulator ceiling (raw socket)"
HOOK = "hook stream_chat_completion"
OPENAI = "OpenAI SDK (stream=True)"


def run(
    *,
    lines: int = FULL["lines"],
    chunk_delay: float = FULL["chunk_delay"],
    chunks: int = FULL["chunks"],
    repeat: int = FULL["repeat"],
    timeout: float = 1800,
) -> dict[str, Any]:
    """Measure streaming latency (a) and parsing throughput (b); returns medians and per-run figures."""
    params: dict[str, Any] = {
        "lines": lines,
        "chunk_delay": chunk_delay,
        "chunks": chunks,
        "repeat": repeat,
        "openai": has_module("openai"),
    }
    with (
        emulator_process(module="benchmarks._stamped_emulator") as stamped,
        emulator_process() as plain,
        temp_home() as home,
    ):
        params |= {"stamped_url": stamped.base_url, "plain_url": plain.base_url, "log": str(home / "task.log")}
        env = airflow_env(home, {"aiml_default": stamped.base_url, "aiml_plain": plain.base_url})
        raw = run_worker(f"benchmarks.{NAME}", params, env, timeout)
    latency = {
        peer: {key: median([run[key] for run in runs]) for key in ("p50_ms", "p99_ms", "max_ms", "samples", "mean_ms")}
        | {
            "runs_p50_ms": [round(run["p50_ms"], 3) for run in runs],
            "runs_p99_ms": [round(run["p99_ms"], 3) for run in runs],
        }
        for peer, runs in raw["latency"].items()
    }
    throughput = {
        client: {
            "chunks_per_s": median([run["events"] / run["wall"] for run in runs]),
            "cpu_us_per_chunk": median([run["cpu"] / run["events"] * 1e6 for run in runs]),
            "events": runs[0]["events"],
            "requests_per_stream": sum(run["chat_requests"] for run in runs) / len(runs),
            "runs_chunks_per_s": [round(run["events"] / run["wall"]) for run in runs],
        }
        for client, runs in raw["throughput"].items()
    }
    for summary in throughput.values():
        summary["vs_bare"] = summary["chunks_per_s"] / throughput[BARE]["chunks_per_s"]
    safe = {k: v for k, v in params.items() if k not in ("log",)}
    return {"params": safe, "latency": latency, "throughput": throughput}


# --- report ----------------------------------------------------------------------------------------------------


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p = result["params"]
    lat, thr = result["latency"], result["throughput"]
    lines = [
        f"## {TITLE}",
        "",
        "### (a) Latency from the emulator's write to the hook and to the task log",
        "",
        f"One streamed answer of {p['lines']} lines ({WORDS_PER_LINE} words each, reasoning then answer) in events "
        f"of 3 words, {p['chunk_delay'] * 1000:g} ms apart (`Fault.slow_stream`). Each figure is the median over "
        f"{p['repeat']} streams of that stream's percentile; the operator and the bare loop take turns.",
        "",
    ]
    rows = [
        (
            peer,
            f"{s['samples']:.0f}",
            f"{s['p50_ms']:.3f}",
            f"{s['p99_ms']:.3f}",
            f"{s['max_ms']:.3f}",
        )
        for peer, s in lat.items()
    ]
    lines += [*table(("Measured until", "Samples per stream", "p50 ms", "p99 ms", "max ms"), rows), ""]
    if img:
        lines += [f"![Streaming latency and throughput]({img})", ""]
    lines += [
        "- The time starts right before the emulator's `write()` of the event, in the emulator's process, and ends "
        "in the worker when the hook yields the `StreamDelta`, or right after the operator's stream log writer "
        "(`operators/_stream_log.py`) has written the line through Airflow's task logging (JSON, unbuffered file). "
        "Both processes read `time.time()`; on one machine that is the same clock.",
        "- The writer logs by line, not by event: a log line's latency is measured from the write of the event that "
        "completed the line (the event with the line's newline).",
        "- The bare loop stamps an event right after `json.loads` of its `data:` line: the least a client can do.",
        "",
        "### (b) SSE parsing throughput",
        "",
        f"One stream of {thr[BARE]['events']:,} events (about {p['chunks']:,} answer pieces), no delay between "
        f"events. Median of {p['repeat']} streams per client; the clients take turns.",
        "",
    ]
    target = thr[HOOK]["vs_bare"]
    rows = [
        (
            client,
            f"{s['chunks_per_s']:,.0f}",
            f"{s['vs_bare']:.2f}x",
            f"{s['cpu_us_per_chunk']:.1f}",
            f"{s['requests_per_stream']:.0f}",
        )
        for client, s in thr.items()
    ]
    lines += [
        *table(("Client", "Events/s", "vs bare httpx", "Client CPU µs/event", "HTTP requests/stream"), rows),
        "",
        f"The hook reads {target:.2f}x as many events per second as the bare loop, while doing more per event: "
        "it builds a validated `StreamDelta`, accumulates the answer, reasoning, usage and cost, and watches for "
        "`<think>` blocks. A fast model sends tens to a few hundred events per second.",
        "",
        "- **Client CPU µs/event** is the worker's `time.process_time()` over the stream divided by its events: "
        "the client's own cost, whatever the emulator's speed. The raw socket row reads the bytes without "
        "parsing them: it is what the emulator can send, the ceiling of every other row.",
        "- Every client read the same stream; HTTP requests/stream is the emulator's `chat_requests` counter "
        "(one request per stream, no retries).",
    ]
    ceiling = thr[RAW]["chunks_per_s"]
    capped = [c for c, s in thr.items() if c != RAW and s["chunks_per_s"] >= 0.85 * ceiling]
    if capped:
        lines.append(
            f"- {', '.join(capped)} reached 85% or more of the emulator's ceiling: compare the CPU column for "
            "those rows."
        )
    lines += [
        "",
        "Issue 6 sets no target for streaming: these figures are reported for reference.",
        "",
    ]
    return lines


def plot(result: dict[str, Any], path: Path) -> None:
    """Left: latency p50/p99 per measurement point. Right: events per second per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    lat = result["latency"]
    names = list(lat)
    y = range(len(names))
    left.barh([i - 0.2 for i in y], [lat[n]["p50_ms"] for n in names], height=0.4, label="p50")
    left.barh([i + 0.2 for i in y], [lat[n]["p99_ms"] for n in names], height=0.4, label="p99")
    left.set_yticks(list(y), [n.replace(": ", ":\n") for n in names], fontsize=7)
    left.invert_yaxis()
    left.set_title("(a) emulator write -> client (ms, lower is better)", fontsize=10)
    left.legend(fontsize=8)
    thr = result["throughput"]
    clients = list(thr)
    rates = [thr[c]["chunks_per_s"] for c in clients]
    right.barh(
        clients, rates, color=["#bbbbbb" if c == RAW else "#1f77b4" if c == HOOK else "#ff7f0e" for c in clients]
    )
    right.invert_yaxis()
    right.set_xlim(0, max(rates) * 1.25)
    right.set_title("(b) events/s (higher is better)", fontsize=10)
    for i, rate in enumerate(rates):
        right.text(rate, i, f" {rate:,.0f}", va="center", fontsize=8)
    right.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- worker ----------------------------------------------------------------------------------------------------


def _work(params: dict[str, Any]) -> dict[str, Any]:
    """Runs in the worker process: (a) then (b)."""
    configure_task_logging(Path(params["log"]))
    return {"latency": _latency_section(params), "throughput": _throughput_section(params)}


def _text_lines(count: int, word: str) -> str:
    return "".join(" ".join(f"{word}{i}.{j}" for j in range(WORDS_PER_LINE)) + "\n" for i in range(count))


def _event_text(data: str) -> str:
    """The reasoning and answer text of one SSE event (``""`` for role, finish and usage events)."""
    chunk = json.loads(data)
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    return (delta.get("reasoning_content") or "") + (delta.get("content") or "")


class _FakeTI:
    """The little of a task instance that ``execute()`` reads: ids for the request id, and ``xcom_push``."""

    dag_id, task_id, run_id, map_index, try_number = "bench", "stream_latency", "manual__bench", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _latency_section(params: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    import httpx

    from airflow_provider_aiml.models import StreamDelta
    from airflow_provider_aiml.operators._stream_log import StreamLogWriter
    from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

    control = EmulatorControl(root_of(params["stamped_url"]))
    reasoning = _text_lines(max(1, params["lines"] // 3), "think")
    content = _text_lines(params["lines"] - max(1, params["lines"] // 3), "word")
    delivered: list[tuple[float, str]] = []
    emitted: list[tuple[float, int, str]] = []

    original_info = StreamLogWriter._info

    def stamped_info(self: StreamLogWriter, message: str, *args: object) -> None:
        original_info(self, message, *args)
        emitted.append((time.time(), len(delivered), message % args))

    StreamLogWriter._info = stamped_info  # type: ignore[method-assign]

    def operator_stream() -> None:
        operator = AimlChatCompletionOperator(task_id="stream_latency", prompt=PROMPT, model=MODEL, stream=True)
        hook = operator.hook
        original_stream = hook.send_chat_stream  # the operator checks the call first, then sends it with this

        def stamped_stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for item in original_stream(*args, **kwargs):
                if isinstance(item, StreamDelta) and (item.reasoning or item.content):
                    delivered.append((time.time(), item.reasoning + item.content))
                yield item

        hook.send_chat_stream = stamped_stream  # type: ignore[method-assign]
        operator.execute(context={"ti": _FakeTI()})  # type: ignore[typeddict-item]

    bare = httpx.Client(base_url=params["stamped_url"], headers={"Authorization": f"Bearer {API_KEY}"})
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True}

    def bare_stream() -> None:
        with bare.stream("POST", "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    text = _event_text(line[6:])
                    if text:
                        delivered.append((time.time(), text))

    peers: dict[str, Callable[[], None]] = {"operator": operator_stream, "bare": bare_stream}
    runs: dict[str, list[dict[str, float]]] = {OPERATOR: [], OPERATOR_LOG: [], BARE: []}
    try:
        for repetition in range(int(params["repeat"])):
            for peer in rotated(list(peers), repetition):
                control.reset()
                control.set_reply(content=content, reasoning=reasoning)
                control.add_fault({"kind": "slow_stream", "chunk_delay": params["chunk_delay"]})
                control.call("GET", "/_bench/stamps")
                delivered.clear()
                emitted.clear()
                peers[peer]()
                written = [(t, _event_text(text)) for t, text in control.call("GET", "/_bench/stamps")["stamps"]]
                sent = [(t, text) for t, text in written if text]
                if [text for _, text in sent] != [text for _, text in delivered]:
                    raise RuntimeError(f"{peer}: the deltas received differ from the events the emulator wrote")
                delays = [(got - put) * 1000 for (got, _), (put, _) in zip(delivered, sent, strict=True)]
                runs[OPERATOR if peer == "operator" else BARE].append(_distribution(delays))
                if peer == "operator":
                    logged = [(t - sent[k - 1][0]) * 1000 for t, k, line in emitted if k and line.startswith("[")]
                    if len(logged) < params["lines"]:
                        raise RuntimeError(f"expected {params['lines']} log lines, got {len(logged)}")
                    runs[OPERATOR_LOG].append(_distribution(logged))
    finally:
        StreamLogWriter._info = original_info  # type: ignore[method-assign]
        bare.close()
        control.close()
    return runs


def _distribution(delays_ms: list[float]) -> dict[str, float]:
    return {
        "samples": len(delays_ms),
        "p50_ms": percentile(delays_ms, 50),
        "p99_ms": percentile(delays_ms, 99),
        "max_ms": max(delays_ms) if delays_ms else math.nan,
        "mean_ms": sum(delays_ms) / len(delays_ms) if delays_ms else math.nan,
    }


def _throughput_section(params: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    import httpx

    from airflow_provider_aiml.hooks.aiml import AimlApiHook
    from airflow_provider_aiml.models import StreamDelta

    base_url = params["plain_url"]
    control = EmulatorControl(root_of(base_url))
    words = 3 * int(params["chunks"])
    content = "".join(f"w{i}" + ("\n" if i % 21 == 20 else " ") for i in range(words))
    messages = [{"role": "user", "content": PROMPT}]
    body = {"model": MODEL, "messages": messages, "stream": True}
    bare = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"})
    hook = AimlApiHook(aiml_conn_id="aiml_plain")

    def raw_stream() -> int:
        return _raw_stream(base_url, body)

    def bare_stream() -> int:
        events = 0
        with bare.stream("POST", "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    json.loads(line[6:])
                    events += 1
        return events

    def hook_stream() -> int:
        received = 0
        for item in hook.stream_chat_completion(messages, model=MODEL):
            if isinstance(item, StreamDelta):
                received += len(item.content)
            elif len(item.content) != len(content):
                raise RuntimeError("the hook's answer is not the whole stream")
        if received != len(content):
            raise RuntimeError(f"the hook's deltas carried {received} characters, not {len(content)}")
        return 0

    clients: dict[str, Callable[[], int]] = {RAW: raw_stream, BARE: bare_stream, HOOK: hook_stream}
    if params["openai"]:
        import openai

        sdk = openai.OpenAI(base_url=base_url, api_key=API_KEY)

        def sdk_stream() -> int:
            for _chunk in sdk.chat.completions.create(model=MODEL, messages=messages, stream=True):  # type: ignore[arg-type]
                pass
            return 0

        clients[OPENAI] = sdk_stream

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    events = 0
    try:
        for repetition in range(int(params["repeat"])):
            for name in rotated(list(clients), repetition):
                control.reset()
                control.set_reply(content=content, reasoning="")
                clients[name]()  # warm-up: the emulator builds and caches nothing, the client warms its pools
                control.reset()
                control.set_reply(content=content, reasoning="")
                with Timer() as timer:
                    counted = clients[name]()
                events = counted or events
                stats = control.stats()
                runs[name].append({"wall": timer.wall, "cpu": timer.cpu, "chat_requests": stats["chat_requests"]})
    finally:
        bare.close()
        hook.close()
        control.close()
    for measurements in runs.values():
        for measurement in measurements:
            measurement["events"] = events
    return runs


def _raw_stream(base_url: str, body: dict[str, Any]) -> int:
    """Send the request on a new socket and read the chunked body to its end; returns the events in it."""
    import httpx

    url = httpx.URL(base_url)
    payload = json.dumps(body).encode()
    request = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAuthorization: Bearer "
        f"{API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((url.host, int(url.port or 80))) as sock:
        sock.sendall(request)
        received = bytearray()
        while not received.endswith(b"\r\n0\r\n\r\n"):
            data = sock.recv(1 << 20)
            if not data:
                break
            received += data
    return received.count(b"\r\ndata: ")


if __name__ == "__main__":
    raise SystemExit(worker_main(_work))

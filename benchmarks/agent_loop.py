"""The agent loop: its overhead per step against a hand-written httpx loop, and parallel tool calls.

    .venv/bin/python -m benchmarks --only agent_loop

The parent starts the emulator (its own process, no added latency) and one worker process that runs every loop,
logging like an Airflow task (structlog JSON lines to a file). With two cores or more, the worker is pinned to
one and the emulator to another, as a client and a remote server would be; the loops are then measured once more
unpinned, for reference. Before each run the emulator is reset and
scripted (``POST /_emulator/script``) with the same conversation: ``steps - 1`` answers that each ask for one
call of a cheap tool, then an answer made of the tool results. Each loop sends the same requests (checked once:
the emulator's request log of one run of each loop holds the same bodies) and, after every measured run, the
emulator's counters are read back to check that it made exactly ``steps`` requests.

- ``AgentRun`` is wired as ``AimlAgentOperator.execute`` wires it: ``as_tools``, the tools' specs as the
  ``tools`` parameter, the run's fingerprint, a ``StepRecord`` (none, or a local file), ``AgentLimits``, the
  real ``AimlApiHook`` (connection from ``AIRFLOW_CONN_AIML_DEFAULT``, ``max_retries`` 0) and its logger.
- The hand-written loop posts the same bodies with ``httpx`` (``json=``), reads ``tool_calls`` from the decoded
  JSON, ``json.loads`` the arguments, calls the same function and appends the same two messages.

The parallel part scripts one answer asking for several calls at once of a tool that sleeps (``asyncio.sleep``
or, in a sync tool, ``time.sleep``) and records, inside the tool, when each call started and ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
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
    median,
    percentile,
    root_of,
    rotated,
    run_worker,
    separate_cores,
    table,
    temp_home,
    verdict,
    worker_main,
)

NAME = "agent_loop"
TITLE = "Agent loop"
FULL: dict[str, Any] = {
    "steps": 20,
    "rounds": 40,
    "warmup": 3,
    "tool_seconds": 0.2,
    "parallel_calls": 4,
    "parallel_repeat": 5,
    "piece_calls": 2000,
}
QUICK: dict[str, Any] = {
    "steps": 4,
    "rounds": 2,
    "warmup": 1,
    "tool_seconds": 0.05,
    "parallel_calls": 4,
    "parallel_repeat": 1,
    "piece_calls": 100,
}
TARGET_VS_HAND = 1.3
ONE_ROUND_AT_MOST = 1.5
"""A parallel round passes when it takes under this many times one call's sleep (two rounds take two)."""
PROMPT = "What is the weather in Oslo? Look it up, again and again, then tell me."

HAND = "hand-written loop (httpx.AsyncClient)"
HAND_SYNC = "hand-written loop (httpx.Client)"
AGENT = "AgentRun, sync tool"
AGENT_ASYNC = "AgentRun, async tool"
AGENT_RECORD = "AgentRun, sync tool, checkpoint file"
AGENT_QUIET = "AgentRun, sync tool, no log lines"
LOOPS = (HAND, HAND_SYNC, AGENT, AGENT_ASYNC, AGENT_RECORD, AGENT_QUIET)
TARGETED = (AGENT, AGENT_ASYNC)
RUNS = "runs_vs_hand"


def run(
    *,
    steps: int = FULL["steps"],
    rounds: int = FULL["rounds"],
    warmup: int = FULL["warmup"],
    tool_seconds: float = FULL["tool_seconds"],
    parallel_calls: int = FULL["parallel_calls"],
    parallel_repeat: int = FULL["parallel_repeat"],
    piece_calls: int = FULL["piece_calls"],
    timeout: float = 600,
) -> dict[str, Any]:
    """Time every loop and the parallel rounds; returns medians, the raw runs and the targets."""
    if steps < 2:
        raise ValueError("steps must be at least 2: one tool call and the answer")
    params: dict[str, Any] = {
        "steps": steps,
        "rounds": rounds,
        "warmup": warmup,
        "tool_seconds": tool_seconds,
        "parallel_calls": parallel_calls,
        "parallel_repeat": parallel_repeat,
        "piece_calls": piece_calls,
    }
    cores = separate_cores()
    raw = _run_worker(params, cores, timeout)
    result: dict[str, Any] = {"params": params, "pinned": cores is not None}
    result["loops"] = _loop_summary(raw["loops"], steps)
    if cores is not None:  # the same loops with the kernel placing every thread, for reference
        shared = _run_worker({**params, "rounds": max(1, rounds // 2), "loops_only": True}, None, timeout)
        result["loops_unpinned"] = _loop_summary(shared["loops"], steps)
    result["body_differences"] = raw["differences"]
    result["body_kb_last"] = raw["body_kb_last"]
    result["parallel"] = _parallel_summary(raw["parallel"], tool_seconds)
    result["pieces"] = raw["pieces"]
    result["cores"], result["executor_workers"] = raw["cores"], raw["executor_workers"]
    result["targets"] = _targets(result)
    return result


def _run_worker(params: dict[str, Any], cores: tuple[int, int] | None, timeout: float) -> dict[str, Any]:
    """One worker process measuring against its own emulator; with ``cores``, the worker on the first and the
    emulator on the second."""
    worker_cpu, emulator_cpu = cores if cores is not None else (None, None)
    with emulator_process(cpu=emulator_cpu) as emulator, temp_home() as home:
        paths = {"base_url": emulator.base_url, "home": str(home), "log": str(home / "task.log")}
        env = airflow_env(home, {"aiml_default": emulator.base_url})
        return run_worker(f"benchmarks.{NAME}", params | paths, env, timeout, cpu=worker_cpu)


def _loop_summary(runs: dict[str, list[dict[str, Any]]], steps: int) -> dict[str, Any]:
    loops: dict[str, Any] = {}
    for name in LOOPS:
        per_step_ms = [m["wall"] / steps * 1e3 for m in runs[name]]
        # Paired: each round runs every loop within a second, so a round's ratio is not moved by the machine
        # getting slower or faster between rounds.
        ratios = [m["wall"] / h["wall"] for m, h in zip(runs[name], runs[HAND], strict=True)]
        loops[name] = {
            "step_ms": median(per_step_ms),
            "step_ms_p90": percentile(per_step_ms, 90),
            "step_ms_min": min(per_step_ms),
            "cpu_ms_per_step": median([m["cpu"] / steps * 1e3 for m in runs[name]]),
            "vs_hand": median(ratios),
            "vs_hand_p90": percentile(ratios, 90),
            "runs_vs_hand": [round(ratio, 3) for ratio in ratios],
            "requests_per_run": max(m["requests"] for m in runs[name]),
            "log_lines_per_step": sum(m["log_lines"] for m in runs[name]) / (steps * len(runs[name])),
        }
    hand_ms = loops[HAND]["step_ms"]
    for summary in loops.values():
        summary["added_us_per_step"] = (summary["step_ms"] - hand_ms) * 1e3
    return loops


def _parallel_summary(raw: dict[str, list[dict[str, Any]]], tool_seconds: float) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for case, runs in raw.items():
        summary[case] = {
            "calls": runs[0]["calls"],
            "max_parallel_tools": runs[0]["max_parallel_tools"],
            "round_ms": median([r["round_s"] * 1e3 for r in runs]),
            "round_ms_max": max(r["round_s"] * 1e3 for r in runs),
            "start_spread_ms": median([r["start_spread_s"] * 1e3 for r in runs]),
            "call_ms": median([d * 1e3 for r in runs for d in r["durations_s"]]),
            "serial_ms": runs[0]["calls"] * tool_seconds * 1e3,
            "run_ms": median([r["run_s"] * 1e3 for r in runs]),
            "requests": max(r["requests"] for r in runs),
            "runs_round_ms": [round(r["round_s"] * 1e3, 1) for r in runs],
        }
    return summary


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    p, loops = result["params"], result["loops"]
    targets = [
        {
            "what": f"{name}: time per step vs a hand-written httpx loop ({p['steps']} steps, zero latency)",
            "target": f"< {TARGET_VS_HAND}x",
            "value": f"{loops[name]['vs_hand']:.2f}x ({loops[name]['step_ms']:.2f} vs {loops[HAND]['step_ms']:.2f} "
            "ms per step)",
            "ok": loops[name]["vs_hand"] < TARGET_VS_HAND,
        }
        for name in TARGETED
    ]
    sleep_ms = p["tool_seconds"] * 1e3
    for case, s in result["parallel"].items():
        if s["calls"] > s["max_parallel_tools"]:
            continue  # the rounds-of-max_parallel_tools case is for reference
        targets.append(
            {
                "what": f"{s['calls']} parallel calls of {'an async' if case == 'async' else 'a sync'} tool "
                f"sleeping {sleep_ms:.0f} ms: one round",
                "target": f"~{sleep_ms:.0f} ms, not {s['serial_ms']:.0f}",
                "value": f"{s['round_ms']:.0f} ms",
                "ok": s["round_ms"] < ONE_ROUND_AT_MOST * sleep_ms,
            }
        )
    return targets


# --- report ----------------------------------------------------------------------------------------------------


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p, loops = result["params"], result["loops"]
    steps = p["steps"]
    lines = [
        f"## {TITLE}",
        "",
        f"One agent run is {steps} model steps against the emulator answering at once: {steps - 1} answers that "
        "each ask for one call of a cheap tool (it formats a string), then an answer made of the tool results. "
        f"Each figure is from {p['rounds']} rounds; in each round every loop runs once, back to back (a different "
        f"order each round), in one worker process, after {p['warmup']} unmeasured runs of each. A ratio against "
        "the hand-written loop is the median of the rounds' ratios. "
        + (
            "The worker process runs on one core and the emulator on the other, as a client and a remote API "
            "would (unpinned figures below the table)."
            if result.get("pinned")
            else "This machine has one core: the worker and the emulator share it."
        ),
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
    ]
    if img:
        lines += [f"![Time per agent step by loop]({img})", ""]
    rows = [
        (
            name,
            f"{s['step_ms']:.2f}",
            f"{s['step_ms_p90']:.2f}",
            f"{s['step_ms_min']:.2f}",
            "-" if name == HAND else f"{s['vs_hand']:.2f}x",
            "-" if name == HAND else f"{s['vs_hand_p90']:.2f}x",
            "-" if name == HAND else f"{s['added_us_per_step']:+,.0f}",
            f"{s['cpu_ms_per_step']:.2f}",
            s["requests_per_run"],
            f"{s['log_lines_per_step']:.2f}",
        )
        for name, s in loops.items()
    ]
    header = (
        "Loop",
        "ms/step (median)",
        "p90",
        "min",
        "vs hand-written",
        "p90 of ratios",
        "µs/step added",
        "Client CPU ms/step",
        "HTTP requests/run",
        "Log lines/step",
    )
    lines += [*table(header, rows), ""]
    lines += _unpinned_lines(result)
    spread = "; ".join(
        f"{name} {' / '.join(f'{percentile(s[RUNS], q):.2f}' for q in (0, 10, 50, 90, 100))}"
        for name, s in loops.items()
        if name != HAND
    )
    lines += [
        f"The rounds' ratios against the hand-written loop (min / p10 / median / p90 / max of {p['rounds']}): "
        f"{spread}.",
        "",
    ]
    par = result["parallel"]
    sleep_ms = p["tool_seconds"] * 1e3
    lines += [
        "### Parallel tool calls",
        "",
        f"One answer asks for several calls at once of a tool that sleeps {sleep_ms:.0f} ms (`await "
        "asyncio.sleep`, or `time.sleep` in a sync tool, which the loop runs in a thread); the next answer ends "
        "the run. The tool records when each call started and ended: the round is the first start to the last "
        f"end. Default `max_parallel_tools` (4); the sync calls run in the event loop's default thread pool "
        f"({result['executor_workers']} threads on this {result['cores']}-core machine). Medians of "
        f"{p['parallel_repeat']} runs.",
        "",
        *table(
            (
                "Tool",
                "Calls",
                "max_parallel_tools",
                "Round ms",
                "One after another ms",
                "Slowest round ms",
                "Start spread ms",
                "Each call ms (step report)",
                "Whole run ms",
                "HTTP requests",
            ),
            [
                (
                    case,
                    s["calls"],
                    s["max_parallel_tools"],
                    f"{s['round_ms']:.0f}",
                    f"{s['serial_ms']:.0f}",
                    f"{s['round_ms_max']:.0f}",
                    f"{s['start_spread_ms']:.1f}",
                    f"{s['call_ms']:.0f}",
                    f"{s['run_ms']:.0f}",
                    s["requests"],
                )
                for case, s in par.items()
            ],
        ),
        "",
        *_pieces_table(result),
        *_method_notes(result),
    ]
    return lines


def _unpinned_lines(result: dict[str, Any]) -> list[str]:
    """The same loops with neither process pinned, and what that changes."""
    shared = result.get("loops_unpinned")
    if not shared:
        return []
    pinned = result["loops"]
    rows = [
        (
            name,
            f"{s['step_ms']:.2f}",
            "-" if name == HAND else f"{s['vs_hand']:.2f}x",
            f"{s['step_ms'] - pinned[name]['step_ms']:+.2f}",
        )
        for name, s in shared.items()
    ]
    rounds = len(next(iter(shared.values()))[RUNS])
    return [
        f"Unpinned, the kernel placing every thread ({rounds} rounds). On two cores it often wakes the thread a "
        "sync tool runs in on the core where the emulator is still finishing the previous answer, and the step "
        "waits for it: a cost of sharing a machine with the server, which a client of the remote API does not "
        "pay.",
        "",
        *table(("Loop", "ms/step (median)", "vs hand-written", "ms/step vs pinned"), rows),
        "",
    ]


def _pieces_table(result: dict[str, Any]) -> list[str]:
    pieces, calls = result["pieces"], result["params"]["piece_calls"]
    rows = [
        (label, f"{pieces[key]:.1f}", "-" if hand is None else f"{pieces[hand]:.1f}") for key, label, hand in PIECES
    ]
    return [
        "### Where a step's time goes",
        "",
        f"The loop's own steps, each timed alone in a tight loop (µs, best of 5 x {calls:,}; the log lines 5 x "
        f"{max(1, calls // 4):,}, the checkpoint entries 5 x {max(1, calls // 20):,}) on "
        f"the conversation halfway through a run ({pieces['messages']} messages), next to what the hand-written "
        "loop does instead. Between network round trips the same code runs with colder caches and costs more.",
        "",
        *table(("Piece", "Agent loop µs", "Hand-written µs"), rows),
        "",
        *_largest_pieces(result),
    ]


def _largest_pieces(result: dict[str, Any]) -> list[str]:
    """What a step pays most for, from the pieces (the whole tool phase rather than its parts)."""
    pieces = result["pieces"]
    hop = f" (of which {pieces['tool_threads']:.0f} µs for the thread hop)"
    extra = {
        "extending and checking the request": (pieces["extend"] - pieces["hand_encode"], ""),
        "reading the answer into a result": (pieces["parse"] - pieces["hand_decode"], ""),
        "the step's bookkeeping": (pieces["bookkeeping"], ""),
        "the tool phase with the sync tool": (pieces["tool_phase_sync"] - pieces["hand_tool"], hop),
        "the two log lines": (pieces["log_lines"], ""),
    }
    ranked = sorted(extra.items(), key=lambda item: -item[1][0])
    listed = "; ".join(f"{what} +{us:.0f} µs{note}" for what, (us, note) in ranked)
    return [
        f"Against the hand-written loop, a step with the sync tool pays, largest first: {listed}. With the async "
        f"tool the tool phase costs {pieces['tool_phase_async'] - pieces['hand_tool']:.0f} µs more than the "
        "hand-written call.",
        "",
    ]


def _method_notes(result: dict[str, Any]) -> list[str]:
    p, loops = result["params"], result["loops"]
    same = "the same" if not result["body_differences"] else f"**not** the same ({result['body_differences']})"
    added = loops[AGENT]["added_us_per_step"]
    return [
        "How it is measured:",
        "",
        f"- **Same requests.** One run of each loop was checked against the emulator's request log: {same} "
        f"request bodies, in the same order ({result['body_kb_last']:.1f} KB for the last step's, which carries "
        f"the whole conversation). After every measured run the emulator's counters said {p['steps']} requests "
        "(no catalog look-up, no retry).",
        f"- **{HAND}** is what one would write by hand on the async stack the loop runs on: one "
        "`httpx.AsyncClient`, `post(json=body)`, `.json()`, the calls run one after another by calling the "
        f"function directly, no checks, no logging. **{HAND_SYNC}** is the same loop on a sync `httpx.Client`, "
        "for reference.",
        f"- **{AGENT}** is the operator's set-up: a sync tool (a plain function) is run in a thread "
        "(`asyncio.to_thread`), its arguments are validated by pydantic from its signature, its result goes "
        "through Airflow's secrets masker, and the step and the tool each log one line through Airflow's task "
        "logging (the step's line is the call's summary: the operator's hook logs none of its own). "
        f"**{AGENT_ASYNC}** has the same tool as an `async def`, awaited directly. "
        f"**{AGENT_RECORD}** writes the step record to a local file: three entries per step (the answer, the "
        "tool's start, its result), each fsynced before the run goes on. "
        f"**{AGENT_QUIET}** is the default loop with a logger that drops the step and tool lines: it shows what "
        "the two log lines per step cost.",
        "- **Per step** is the run's wall time (building the run, fingerprint included, to the final answer) "
        f"divided by its {p['steps']} model steps; client CPU is the worker's `time.process_time()` over the run. "
        "The emulator's own time per request and the loopback round trip are in every loop's figure alike. "
        f"The emulator and the worker each run in their own process on this {result['cores']}-core machine, "
        "each pinned to a core of its own (`os.sched_setaffinity`) when there are two.",
        f"- **µs/step added** is what a step costs more than in the hand-written loop. A real model step takes "
        f"hundreds of milliseconds at least: {added:,.0f} µs is {added / 1e3 / 500:.2%} of a 500 ms step.",
        "",
    ]


def plot(result: dict[str, Any], path: Path) -> None:
    """Horizontal bars of the median time per step of each loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["loops"])
    values = [result["loops"][name]["step_ms"] for name in names]
    fig, axis = plt.subplots(figsize=(8, 2.8))
    colors = ["#ff7f0e" if name.startswith("hand") else "#1f77b4" for name in names]
    axis.barh(names, values, color=colors)
    axis.invert_yaxis()
    for y, value in enumerate(values):
        axis.text(value, y, f" {value:.2f}", va="center", fontsize=8)
    axis.set_xlim(0, max(values) * 1.2)
    axis.set_xlabel("ms per step, median (lower is better)")
    axis.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the worker process ----------------------------------------------------------------------------------------


def _lookup(city: str) -> str:
    """The weather of a city.

    :param city: the city's name.
    """
    return f"{city}: 21 C, light wind"


async def _alookup(city: str) -> str:
    """The weather of a city.

    :param city: the city's name.
    """
    return f"{city}: 21 C, light wind"


class _Silent:
    """A logger that drops every line."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        pass


def _work(params: dict[str, Any]) -> dict[str, Any]:
    configure_task_logging(Path(params["log"]))
    return asyncio.run(_measure(params))


def _hand_step(messages: list[dict[str, Any]], response: Any) -> str | None:
    """What the hand-written loops do with an answer: its text when it calls no tool; else run the calls it asks
    for, append the turns to ``messages`` and return ``None``."""
    response.raise_for_status()
    message = response.json()["choices"][0]["message"]
    calls = message.get("tool_calls")
    if not calls:
        return str(message["content"])
    messages.append(_assistant(message))
    for call in calls:
        result = _lookup(**json.loads(call["function"]["arguments"]))
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return None


def _script(steps: int) -> list[dict[str, Any]]:
    from airflow_provider_aiml.testing import ScriptedReply

    replies = [ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})) for _ in range(steps - 1)]
    return [reply.to_dict() for reply in [*replies, ScriptedReply.from_tool_results("The weather: ")]]


async def _measure(params: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from airflow_provider_aiml.agents.loop import AgentLimits, AgentRun
    from airflow_provider_aiml.agents.record import StepRecord, run_fingerprint
    from airflow_provider_aiml.agents.tools import as_tools, tool
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    base_url, steps = params["base_url"], int(params["steps"])
    control = EmulatorControl(root_of(base_url))
    log_path, home = Path(params["log"]), Path(params["home"])
    script = _script(steps)
    sync_tools = as_tools([tool(_lookup, name="lookup")])
    async_tools = as_tools([tool(_alookup, name="lookup")])
    specs = [t.spec() for t in sync_tools]
    if specs != [t.spec() for t in async_tools]:
        raise RuntimeError("the sync and async tools must be described alike")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    bare = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60)
    bare_sync = httpx.Client(base_url=base_url, headers=headers, timeout=60)
    hook, quiet = AimlApiHook(log_calls=False), AimlApiHook(log_calls=False)  # as the operator makes it
    records = iter(range(1_000_000))

    async def agent(chosen: AimlApiHook, tools: list[Any], record_file: bool = False, log: Any = None) -> str:
        messages = [{"role": "user", "content": PROMPT}]
        run_params = {"tools": [t.spec() for t in tools]}
        fingerprint = run_fingerprint(MODEL, messages, run_params["tools"], run_params, None)
        location = home / f"record-{next(records)}.jsonl" if record_file else None
        record = StepRecord(location, fingerprint)
        record.open()
        limits = AgentLimits(max_steps=steps)
        loop = AgentRun(
            chosen, tools, messages, MODEL, run_params, None, "bench", limits, record, log or chosen.log
        )  # fmt: skip
        try:
            answer = await loop.run()
        finally:
            record.close()
        return answer.content

    async def hand() -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
        for _ in range(steps):
            response = await bare.post("/chat/completions", json={"model": MODEL, "messages": messages, "tools": specs})
            answer = _hand_step(messages, response)
            if answer is not None:
                return answer
        raise RuntimeError("the hand-written loop ran out of steps")

    def hand_sync() -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
        for _ in range(steps):
            response = bare_sync.post("/chat/completions", json={"model": MODEL, "messages": messages, "tools": specs})
            answer = _hand_step(messages, response)
            if answer is not None:
                return answer
        raise RuntimeError("the hand-written loop ran out of steps")

    async def in_loop(function: Callable[[], str]) -> str:
        return function()

    loops: dict[str, Callable[[], Awaitable[str]]] = {
        HAND: hand,
        HAND_SYNC: lambda: in_loop(hand_sync),
        AGENT: lambda: agent(hook, sync_tools),
        AGENT_ASYNC: lambda: agent(hook, async_tools),
        AGENT_RECORD: lambda: agent(hook, sync_tools, record_file=True),
        AGENT_QUIET: lambda: agent(quiet, sync_tools, log=_Silent()),
    }

    def prepare() -> None:
        control.reset()
        control.call("POST", "/_emulator/script", {"replies": script})

    def log_size() -> int:
        return log_path.stat().st_size if log_path.exists() else 0

    expected = "The weather: " + "; ".join(["lookup: " + _lookup("Oslo")] * (steps - 1))
    try:
        bodies: dict[str, list[Any]] = {}
        for name, loop in loops.items():
            for _ in range(int(params["warmup"])):
                prepare()
                answer = await loop()
                if answer != expected:
                    raise RuntimeError(f"{name} answered {answer!r}, not {expected!r}")
            recorded = control.call("GET", "/_emulator/requests")["requests"]
            bodies[name] = [r["json"] for r in recorded if r["method"] == "POST"]  # the catalog's GETs aside
        differences = {name: _difference(found, bodies[HAND]) for name, found in bodies.items()}
        differences = {name: where for name, where in differences.items() if where is not None}
        body_kb_last = len(json.dumps(bodies[HAND][-1], separators=(",", ":"))) / 1024
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loops}
        for round_ in range(int(params["rounds"])):
            for name in rotated(list(loops), round_):
                prepare()
                before = log_size()
                with Timer() as timer:
                    answer = await loops[name]()
                stats = control.stats()
                if answer != expected or stats["chat_requests"] != steps or stats["requests"] != steps:
                    raise RuntimeError(f"{name}: answer {answer!r}, emulator stats {stats}")
                lines = _count_lines(log_path, before)
                runs[name].append(
                    {"wall": timer.wall, "cpu": timer.cpu, "requests": stats["chat_requests"], "log_lines": lines}
                )
        parallel, pieces = {}, {}
        if not params.get("loops_only"):
            parallel = await _parallel(params, hook, control)
            pieces = await _pieces(params, hook, control, sync_tools[0], async_tools[0])
    finally:
        await bare.aclose()
        bare_sync.close()
        await hook.aclose()
        await quiet.aclose()
        hook.close()
        quiet.close()
        control.close()
    return {
        "loops": runs,
        "differences": differences,
        "body_kb_last": body_kb_last,
        "parallel": parallel,
        "pieces": pieces,
        "cores": os.cpu_count(),
        "executor_workers": min(32, (os.cpu_count() or 1) + 4),  # ThreadPoolExecutor's default, used by to_thread
    }


def _assistant(message: dict[str, Any]) -> dict[str, Any]:
    """The model's tool-calling answer as the next request sends it back, as the agent loop sends it (the hook
    leaves out a ``content`` of ``null``)."""
    turn: dict[str, Any] = {"role": "assistant"}
    if message.get("content"):
        turn["content"] = message["content"]
    turn["tool_calls"] = [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
        }
        for c in message["tool_calls"]
    ]
    return turn


def _difference(found: Any, expected: Any, where: str = "requests") -> str | None:
    """Where two JSON values first differ (``None``: they are equal)."""
    if type(found) is not type(expected):
        return f"{where}: {found!r} vs {expected!r}"
    if isinstance(found, dict):
        for key in sorted(set(found) | set(expected)):
            if key not in found or key not in expected:
                return f"{where}: key {key!r} only in {'one' if key in found else 'the hand-written'} body"
            if (inner := _difference(found[key], expected[key], f"{where}.{key}")) is not None:
                return inner
        return None
    if isinstance(found, list):
        if len(found) != len(expected):
            return f"{where}: {len(found)} items vs {len(expected)}"
        for index, (a, b) in enumerate(zip(found, expected, strict=True)):
            if (inner := _difference(a, b, f"{where}[{index}]")) is not None:
                return inner
        return None
    return None if found == expected else f"{where}: {found!r} vs {expected!r}"


def _count_lines(path: Path, offset: int) -> int:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().count(b"\n")


async def _parallel(params: dict[str, Any], hook: Any, control: EmulatorControl) -> dict[str, list[dict[str, Any]]]:
    """Runs with one answer asking for several calls at once of a sleeping tool (async and sync)."""
    from airflow_provider_aiml.agents.loop import AgentLimits, AgentRun
    from airflow_provider_aiml.agents.record import StepRecord
    from airflow_provider_aiml.agents.tools import tool
    from airflow_provider_aiml.testing import ScriptedReply

    seconds, calls = float(params["tool_seconds"]), int(params["parallel_calls"])
    marks: list[tuple[float, float]] = []

    async def wait_async(label: str) -> str:
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        marks.append((started, time.perf_counter()))
        return f"{label} waited"

    def wait_sync(label: str) -> str:
        started = time.perf_counter()
        time.sleep(seconds)
        marks.append((started, time.perf_counter()))
        return f"{label} waited"

    description = f"Wait {seconds:g} s, then say so."
    tools = {
        "async": tool(wait_async, name="wait", description=description),
        "sync": tool(wait_sync, name="wait", description=description),
    }
    limits = AgentLimits(max_steps=2)
    cases = [(kind, calls) for kind in tools] + [(kind, 2 * limits.max_parallel_tools) for kind in tools]
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, count in cases:
        case = kind if count <= limits.max_parallel_tools else f"{kind}, {count} calls"
        out[case] = []
        asked = ScriptedReply.tool_calls(*(("wait", {"label": f"call {i}"}) for i in range(count)))
        script = [asked.to_dict(), ScriptedReply.from_tool_results().to_dict()]
        for _ in range(int(params["parallel_repeat"])):
            control.reset()
            control.call("POST", "/_emulator/script", {"replies": script})
            marks.clear()
            messages = [{"role": "user", "content": "Wait for me, several times at once."}]
            run_params = {"tools": [tools[kind].spec()]}
            loop = AgentRun(
                hook, [tools[kind]], messages, MODEL, run_params, None, "bench-parallel", limits,
                StepRecord(None, "bench"), hook.log,
            )  # fmt: skip
            with Timer() as timer:
                await loop.run()
            stats = control.stats()
            if stats["chat_requests"] != 2 or len(marks) != count:
                raise RuntimeError(f"parallel {case}: {len(marks)} calls ran, emulator stats {stats}")
            starts, ends = [m[0] for m in marks], [m[1] for m in marks]
            out[case].append(
                {
                    "calls": count,
                    "max_parallel_tools": limits.max_parallel_tools,
                    "round_s": max(ends) - min(starts),
                    "start_spread_s": max(starts) - min(starts),
                    "durations_s": [report.duration_s for report in loop.steps[0].tool_calls],
                    "run_s": timer.wall,
                    "requests": stats["chat_requests"],
                }
            )
    return out


PIECES: tuple[tuple[str, str, str | None], ...] = (
    (
        "build",
        "The first step's request (`aprepare_chat`: every message, the parameters, JSON bytes)",
        "hand_encode",
    ),
    ("validate", "of which: checking every message (`validate_messages`)", None),
    (
        "extend",
        "A later step's request (`aextend_chat`: only the two new messages checked, JSON bytes)",
        "hand_encode",
    ),
    ("parse", "Read the answer (`parse_completion`: JSON, choices, tool calls, usage and cost)", "hand_decode"),
    ("bookkeeping", "Step bookkeeping: usage total, the answer kept for the record, step report, assistant turn", None),
    (
        "tool_sync",
        "Run the sync tool (`Tool.run`: arguments checked by pydantic, the run's tool thread, masker)",
        "hand_tool",
    ),
    ("tool_async", "Run the async tool (`Tool.run`, awaited)", "hand_tool"),
    ("tool_threads", "of which: the hop to the run's tool thread and back, for a function that does nothing", None),
    (
        "tool_threads_awaited",
        "for comparison: the same hop awaited, as when several calls run at once (`ToolThreads.run`)",
        None,
    ),
    ("to_thread", "for comparison: `asyncio.to_thread` of the same function", None),
    ("tool_phase_sync", "The whole tool phase of a step, one sync call (`_run_tools`, log lines dropped)", "hand_tool"),
    (
        "tool_phase_async",
        "The whole tool phase of a step, one async call (`_run_tools`, log lines dropped)",
        "hand_tool",
    ),
    ("gather_one", "of which: `asyncio.gather` of one coroutine", None),
    ("log_lines", "The step's two log lines (step, tool), through Airflow's task logging", None),
    ("record_entry", "With a checkpoint file: one entry written and fsynced (three per step)", None),
)
"""The pieces of one step timed alone: key, label, the key of the hand-written loop's counterpart."""


async def _pieces(
    params: dict[str, Any], hook: Any, control: EmulatorControl, sync_tool: Any, async_tool: Any
) -> dict[str, float]:
    """One step's pieces, each timed alone in a tight loop (µs, best of 5), on a conversation halfway through the
    run: what the loop does on top of the HTTP exchange, with caches warm."""
    import timeit

    from airflow_provider_aiml.agents import loop as agent_loop
    from airflow_provider_aiml.agents.record import StepRecord
    from airflow_provider_aiml.agents.threads import ToolThreads
    from airflow_provider_aiml.hooks.building import validate_messages
    from airflow_provider_aiml.hooks.parsing import parse_completion
    from airflow_provider_aiml.testing import ScriptedReply

    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    for index in range(1, max(2, int(params["steps"]) // 2)):  # at least one tool round
        call = {"id": f"call_{index}", "type": "function", "function": {"name": "lookup", "arguments": _ARGUMENTS}}
        messages.append({"role": "assistant", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{index}", "content": _lookup("Oslo")})
    specs = [sync_tool.spec()]
    run_params = {"tools": specs}
    control.reset()
    control.call(
        "POST", "/_emulator/script", {"replies": [ScriptedReply.tool_calls(("lookup", {"city": "Oslo"})).to_dict()]}
    )
    prepared = await hook.aprepare_chat(messages, MODEL, "bench:s10", None, run_params, stream=False)
    earlier = await hook.aprepare_chat(messages[:-2], MODEL, "bench:s9", None, run_params, stream=False)
    client = await hook.get_async_conn()
    response = await client.post("/chat/completions", **prepared.request_args())
    content = response.content
    answer = parse_completion(content, prepared.info(response))
    silent = _Silent()

    def new_run(log: Any) -> Any:
        return agent_loop.AgentRun(
            hook, [sync_tool], list(messages), MODEL, run_params, None, "bench", agent_loop.AgentLimits(),
            StepRecord(None, "bench"), log,
        )  # fmt: skip

    run = new_run(hook.log)
    step = agent_loop.StepReport(1, answer, False)
    report = agent_loop.ToolCallReport("call_1", "lookup", _ARGUMENTS, _lookup("Oslo"), None, 0.0001)

    def bookkeeping() -> None:
        checked = agent_loop._with_call_ids(answer, 1)
        agent_loop.StepReport(1, checked, False)
        _ = run.usage + checked.usage  # the sum the loop keeps
        run.record.add_model_step(1, checked)  # nothing to write without a file
        agent_loop._assistant_turn(checked)

    def log_lines() -> None:
        run._log_step(step)
        run._log_tool(report)

    calls = int(params["piece_calls"])

    def sync(function: Callable[[], Any], number: int = calls) -> float:
        return min(timeit.repeat(function, repeat=5, number=number)) / number * 1e6

    async def asynchronous(function: Callable[[], Awaitable[Any]], number: int = calls) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(number):
                await function()
            best = min(best, (time.perf_counter() - started) / number)
        return best * 1e6

    async def one() -> None:
        pass

    quiet = new_run(silent)
    by_sync, by_async = {"lookup": sync_tool}, {"lookup": async_tool}

    threads = ToolThreads(1)

    async def tool_phase(by_name: dict[str, Any]) -> None:
        quiet.record = StepRecord(None, "bench")
        await quiet._run_tools(1, answer.tool_calls, by_name, threads)

    record = StepRecord(Path(params["home"]) / "pieces.jsonl", "bench")
    body = {"model": MODEL, "messages": messages, "tools": specs}
    try:
        record_entry = sync(lambda: record.add_model_step(1, answer), number=max(1, calls // 20))
    finally:
        record.close()
    try:
        pieces = {
            "record_entry": record_entry,
            "build": await asynchronous(
                lambda: hook.aprepare_chat(messages, MODEL, "bench:s10", None, run_params, stream=False)
            ),
            "validate": sync(lambda: validate_messages(messages)),
            "extend": await asynchronous(lambda: hook.aextend_chat(earlier, messages, "bench:s10")),
            "hand_encode": sync(lambda: json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()),
            "parse": sync(lambda: parse_completion(content, prepared.info(response))),
            "hand_decode": sync(lambda: json.loads(content)),
            "bookkeeping": sync(bookkeeping),
            "tool_sync": await asynchronous(lambda: sync_tool.run(_ARGUMENTS, threads, exclusive=True)),
            "tool_async": await asynchronous(lambda: async_tool.run(_ARGUMENTS)),
            "to_thread": await asynchronous(lambda: asyncio.to_thread(_nothing)),
            "tool_threads": sync(lambda: threads.call(_nothing)),
            "tool_threads_awaited": await asynchronous(lambda: threads.run(_nothing)),
            "hand_tool": sync(lambda: _lookup(**json.loads(_ARGUMENTS))),
            "tool_phase_sync": await asynchronous(lambda: tool_phase(by_sync)),
            "tool_phase_async": await asynchronous(lambda: tool_phase(by_async)),
            "gather_one": await asynchronous(lambda: asyncio.gather(one())),
            "log_lines": sync(log_lines, number=max(1, calls // 4)),
            "messages": len(messages),
        }
    finally:
        threads.close()
    return pieces


_ARGUMENTS = '{"city": "Oslo"}'


def _nothing() -> None:
    pass


if __name__ == "__main__":
    raise SystemExit(worker_main(_work))

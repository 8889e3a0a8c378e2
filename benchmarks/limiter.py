"""The connection-wide limiter: what it adds to each call, with the Redis store and with the local SQLite store.

    .venv/bin/python -m benchmarks --only limiter

The parent starts a throwaway ``redis-server`` on 127.0.0.1 (``tests/redis_server.py``), the emulator (its own
process, no added latency) and one worker process. With two cores or more, the worker is pinned to one core and
the emulator and Redis's main thread to the other, as a client and the remote services it talks to would be.
The worker uses the real ``AimlApiHook`` (``log_calls=False``, so no log line adds noise) on three connections to
the same emulator, each its own connection id and so its own limiter:

- ``aiml_default``: no limits, the baseline;
- ``aiml_limits_redis``: ``max_usd_per_day``, ``max_requests_per_minute`` and ``max_concurrency`` all set, far
  above what the benchmark reaches, state in Redis (``limits_redis_conn_id``);
- ``aiml_limits_local``: the same limits, state in a SQLite file of the temporary Airflow home
  (``limits_local_path``).

No call ever waits for the limits (the worker counts refusals: there must be none), so the difference between a
connection with limits and the baseline is the limiter's own cost: one admission (a Lua script in Redis, one
``BEGIN IMMEDIATE`` transaction in SQLite) before the request and one release after it. The calls go one after
another, timed each with ``perf_counter``; in each round every connection makes ``calls`` calls (a different
order every round), and the added time is the median over the rounds of the difference of the round's medians.
The same for ``await achat_completion`` one at a time, and for ``concurrency`` coroutines at once (wall time per
call, for reference). Last, the limiter alone: ``acquire`` then ``release``, sync and async, each timed.

After each batch the emulator's counters are read back (one HTTP request per call); at the end every slot must
have been given back (none left in the store) and the day's spend counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    MODEL,
    EmulatorControl,
    airflow_env,
    configure_task_logging,
    connection_json,
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

NAME = "limiter"
TITLE = "Connection-wide limiter"
FULL: dict[str, Any] = {
    "calls": 100,
    "rounds": 24,
    "warmup": 30,
    "concurrency": 16,
    "concurrent_calls": 160,
    "operations": 2000,
}
QUICK: dict[str, Any] = {
    "calls": 20,
    "rounds": 2,
    "warmup": 3,
    "concurrency": 4,
    "concurrent_calls": 16,
    "operations": 100,
}
TARGET_ADDED_MS = 1.0
PROMPT = "Label this: record 17: the kettle arrived late but works well."

NONE = "no limits"
REDIS = "limits, Redis store"
LOCAL = "limits, local SQLite store"
VARIANTS = (NONE, REDIS, LOCAL)
STORES = (REDIS, LOCAL)
CONN_IDS = {NONE: "aiml_default", REDIS: "aiml_limits_redis", LOCAL: "aiml_limits_local"}
ALONE_CONN_IDS = {REDIS: "aiml_alone_redis", LOCAL: "aiml_alone_local"}
REDIS_CONN_ID = "redis_limits"
LIMITS: dict[str, Any] = {"max_usd_per_day": 1e9, "max_requests_per_minute": 10_000_000, "max_concurrency": 1000}
"""Every limit on, none ever reached: the calls never wait, so only the admit and release round trips count."""

SYNC, ASYNC, CONCURRENT = "sync", "async", "concurrent"
MODES = (SYNC, ASYNC, CONCURRENT)
AFTER_CALL = "sync, each right after an HTTP call"
ALONE_MODES = (SYNC, ASYNC, AFTER_CALL)


def run(
    *,
    calls: int = FULL["calls"],
    rounds: int = FULL["rounds"],
    warmup: int = FULL["warmup"],
    concurrency: int = FULL["concurrency"],
    concurrent_calls: int = FULL["concurrent_calls"],
    operations: int = FULL["operations"],
    timeout: float = 600,
) -> dict[str, Any]:
    """Time every connection's calls and the limiter alone; returns medians, the rounds' differences, targets."""
    from tests.redis_server import RedisServer, redis_connection_env

    if calls < 1 or rounds < 1 or operations < 1 or concurrency < 1:
        raise ValueError("calls, rounds, concurrency and operations must be at least 1")
    params: dict[str, Any] = {
        "calls": calls,
        "rounds": rounds,
        "warmup": warmup,
        "concurrency": concurrency,
        "concurrent_calls": max(concurrency, concurrent_calls - concurrent_calls % concurrency),
        "operations": operations,
    }
    cores = separate_cores()
    worker_cpu, remote_cpu = cores if cores is not None else (None, None)
    with RedisServer() as server, emulator_process(cpu=remote_cpu) as emulator, temp_home() as home:
        if remote_cpu is not None and server.pid is not None:
            os.sched_setaffinity(server.pid, {remote_cpu})  # its main thread, the one that runs the commands
        env = airflow_env(home, {"aiml_default": emulator.base_url})
        env |= redis_connection_env(REDIS_CONN_ID, server)
        local_path = str(home / "aiml-limits.sqlite")
        env["AIRFLOW_CONN_AIML_LIMITS_REDIS"] = _limited_connection(emulator.base_url, redis=REDIS_CONN_ID)
        env["AIRFLOW_CONN_AIML_LIMITS_LOCAL"] = _limited_connection(emulator.base_url, local_path=local_path)
        paths = {"base_url": emulator.base_url, "log": str(home / "task.log"), "local_path": local_path}
        raw = run_worker(f"benchmarks.{NAME}", params | paths, env, timeout, cpu=worker_cpu)
    result: dict[str, Any] = {"params": params, "pinned": cores is not None}
    result["calls"] = {mode: _call_summary(raw["calls"][mode]) for mode in MODES}
    result["alone"] = {
        store: {mode: _operation_summary(raw["alone"][store][mode]) for mode in ALONE_MODES} for store in STORES
    }
    result["checks"] = raw["checks"]
    result["targets"] = _targets(result)
    return result


def _limited_connection(base_url: str, *, redis: str | None = None, local_path: str | None = None) -> str:
    """The benchmark's ``aimlapi`` connection (see ``connection_json``) with every limit on, in one store."""
    conn = json.loads(connection_json(base_url))
    conn["extra"] |= LIMITS
    if redis is not None:
        conn["extra"]["limits_redis_conn_id"] = redis
    if local_path is not None:
        conn["extra"]["limits_local_path"] = local_path
    return json.dumps(conn)


def _call_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per connection: the median over rounds of the round's figure, and the paired difference to no limits."""
    summary: dict[str, Any] = {}
    for name in VARIANTS:
        figures = [batch["us"] for batch in runs[name]]
        added = [batch["us"] - base["us"] for batch, base in zip(runs[name], runs[NONE], strict=True)]
        summary[name] = {
            "us": median(figures),
            "us_p90": median([batch["p90_us"] for batch in runs[name]]),
            "added_us": median(added),
            "added_us_p10": percentile(added, 10),
            "added_us_p90": percentile(added, 90),
            "runs_added_us": [round(value, 1) for value in added],
        }
    return summary


def _operation_summary(raw: dict[str, list[float]]) -> dict[str, float]:
    both = [a + r for a, r in zip(raw["acquire"], raw["release"], strict=True)]
    return {
        "operations": len(both),
        "acquire_us": median(raw["acquire"]),
        "release_us": median(raw["release"]),
        "round_trip_us": median(both),
        "round_trip_us_p90": percentile(both, 90),
        "round_trip_us_p99": percentile(both, 99),
    }


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for store, short in ((REDIS, "Redis store"), (LOCAL, "Local SQLite store")):
        for mode, how in ((SYNC, "sync `chat_completion`"), (ASYNC, "async `achat_completion`")):
            figures = result["calls"][mode]
            added = figures[store]["added_us"]
            targets.append(
                {
                    "what": f"{short}: added time per call, median ({how}, one call at a time)",
                    "target": f"< {TARGET_ADDED_MS:g} ms",
                    "value": f"{added / 1e3:.3f} ms ({figures[store]['us']:,.0f} vs {figures[NONE]['us']:,.0f} µs "
                    "per call)",
                    "ok": added < TARGET_ADDED_MS * 1e3,
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
        "What the connection-wide limits (`max_usd_per_day`, `max_requests_per_minute`, `max_concurrency`) add to "
        "each call when none of them is reached: one admission before the request and one release after it, in "
        "the store the connection names. The real `AimlApiHook` (`log_calls=False`) calls the emulator (no added "
        "latency) on three connections: one without limits, one with every limit on and its state in a "
        "`redis-server` on 127.0.0.1, one with the same limits in the local SQLite file. Each round, every "
        f"connection makes {p['calls']} calls one after another (a different order each round; {p['rounds']} "
        f"rounds, after {p['warmup']} unmeasured calls each); a call's time is the median of its round, the added "
        "time the median of the rounds' differences to the connection without limits. "
        + (
            "The worker process runs on one core; the emulator and Redis on the other, as remote services would."
            if result.get("pinned")
            else "This machine has one core: the worker, the emulator and Redis share it."
        ),
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
        *_calls_table(result),
        "",
    ]
    if img:
        lines += [f"![Time the limiter adds per call]({img})", ""]
    lines += [*_alone_table(result), "", *_notes(result), ""]
    return lines


MODE_LABELS = {
    SYNC: "sync, one at a time",
    ASYNC: "async, one at a time",
    CONCURRENT: "async, {concurrency} at once",
}


def _mode_label(mode: str, params: dict[str, Any]) -> str:
    return MODE_LABELS[mode].format(concurrency=params["concurrency"])


def _calls_table(result: dict[str, Any]) -> list[str]:
    p = result["params"]
    rows = []
    for mode in MODES:
        for name in VARIANTS:
            s = result["calls"][mode][name]
            base = name == NONE
            rows.append(
                (
                    _mode_label(mode, p),
                    name,
                    f"{s['us']:,.0f}",
                    "-" if mode == CONCURRENT else f"{s['us_p90']:,.0f}",
                    "-" if base else f"{s['added_us']:+,.0f}",
                    "-" if base else f"{s['added_us_p10']:+,.0f} / {s['added_us_p90']:+,.0f}",
                )
            )
    header = ("Calls", "Connection", "µs per call (median)", "p90 per call", "µs added (median)", "p10 / p90 of rounds")
    return [
        *table(header, rows),
        "",
        f"With {p['concurrency']} at once the figure is the batch's wall time divided by its "
        f"{p['concurrent_calls']} calls (no per-call p90): the calls of one process take turns to ask the store, "
        "so it shows what the limiter costs the whole process's throughput.",
    ]


def _alone_table(result: dict[str, Any]) -> list[str]:
    p = result["params"]
    rows = [
        (
            store,
            mode,
            f"{s['acquire_us']:,.0f}",
            f"{s['release_us']:,.0f}",
            f"{s['round_trip_us']:,.0f}",
            f"{s['round_trip_us_p90']:,.0f}",
            f"{s['round_trip_us_p99']:,.0f}",
        )
        for store in STORES
        for mode, s in result["alone"][store].items()
    ]
    return [
        "### The limiter alone",
        "",
        f"`limiter.acquire(id)` then `limiter.release(lease, usd)` ({p['operations']:,} times, each timed with "
        "`perf_counter`; async: `aacquire` / `arelease` awaited in one event loop), every limit on, no HTTP. For "
        "async callers either store's operation runs in one of the limiter's threads. In a tight loop the "
        "store's process and the caches stay warm; the rows *each right after an HTTP call* time the same pair "
        "after a call on the connection without limits (not timed), as in a real call: closer to what a call "
        "pays.",
        "",
        *table(("Store", "API", "acquire µs", "release µs", "both µs (median)", "p90", "p99"), rows),
    ]


def _notes(result: dict[str, Any]) -> list[str]:
    checks = result["checks"]
    spent = ", ".join(f"{name} ${usd:.6f}" for name, usd in checks["spent_usd"].items())
    left = ", ".join(f"{name} {count}" for name, count in checks["slots_left"].items())
    return [
        "How it is measured:",
        "",
        f"- **Never waiting.** The limits are far above what the run reaches "
        f"(`max_requests_per_minute={LIMITS['max_requests_per_minute']:,}`, `max_concurrency="
        f"{LIMITS['max_concurrency']}`, `max_usd_per_day={LIMITS['max_usd_per_day']:g}`); the worker counted "
        f"{checks['refusals']} refused admissions. Every admission still runs the whole check (budget, slots, "
        "rate) and takes a slot and a turn; every release gives the slot back and adds the call's cost.",
        f"- **Counted.** After each batch the emulator's counters said one HTTP request per call. At the end, "
        f"the slots left in the stores: {left} (all given back); the day's spend the stores counted: {spent}.",
        "- **Per call** is `perf_counter` around `chat_completion` (or `await achat_completion`): building the "
        "request, the limiter, the HTTP exchange and parsing. The emulator's and Redis's own time is in the "
        "figure: against a Redis on another machine, each call pays two network round trips to it on top.",
    ]


def plot(result: dict[str, Any], path: Path) -> None:
    """Horizontal bars of the median time added per call, by store and kind of call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = result["params"]
    labels, values, colors = [], [], []
    for store, color in ((REDIS, "#1f77b4"), (LOCAL, "#ff7f0e")):
        for mode in MODES:
            labels.append(f"{store.removeprefix('limits, ')}, {_mode_label(mode, p)}")
            values.append(result["calls"][mode][store]["added_us"])
            colors.append(color)
    fig, axis = plt.subplots(figsize=(8, 2.8))
    axis.barh(labels, values, color=colors)
    axis.invert_yaxis()
    axis.axvline(TARGET_ADDED_MS * 1e3, color="#d62728", linestyle="--", linewidth=1)
    for y, value in enumerate(values):
        axis.text(max(value, 0), y, f" {value:,.0f}", va="center", fontsize=8)
    axis.set_xlim(min(0, *values), max(TARGET_ADDED_MS * 1e3, *values) * 1.15)
    axis.set_xlabel("µs added per call by the limiter, median (dashed: the 1 ms target)")
    axis.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the worker process ----------------------------------------------------------------------------------------


def _work(params: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_aiml.limits import reset_limiters

    configure_task_logging(Path(params["log"]))
    control = EmulatorControl(root_of(params["base_url"]))
    try:
        with _counting_refusals() as refusals:
            calls = {SYNC: _sync_calls(params, control)}
            calls |= asyncio.run(_async_calls(params, control))
            alone = {store: {SYNC: _alone_sync(params, store)} for store in STORES}
            for store, figures in asyncio.run(_alone_async(params)).items():
                alone[store][ASYNC] = figures
            for store in STORES:
                alone[store][AFTER_CALL] = _alone_sync(params, store, between_calls=True)
            checks = _checks(params)
        checks["refusals"] = refusals[0]
    finally:
        control.close()
        reset_limiters()
    return {"calls": calls, "alone": alone, "checks": checks}


@contextlib.contextmanager
def _counting_refusals() -> Iterator[list[int]]:
    """Count the admissions a store refused (the limiter asks how long to wait only after a refusal), without
    touching the granted path that is measured."""
    from airflow_provider_aiml.limits import limiter

    count = [0]
    original = limiter._Waiting.pause

    def pause(self: Any, admission: Any) -> float:
        count[0] += 1
        return original(self, admission)

    limiter._Waiting.pause = pause  # type: ignore[method-assign]
    try:
        yield count
    finally:
        limiter._Waiting.pause = original  # type: ignore[method-assign]


def _messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPT}]


def _hooks(params: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    hooks = {
        name: AimlApiHook(aiml_conn_id=CONN_IDS[name], log_calls=False, max_concurrency=int(params["concurrency"]))
        for name in VARIANTS
    }
    for name in STORES:
        if hooks[name].limiter is None:
            raise RuntimeError(f"{CONN_IDS[name]}: the connection's limits are not on")
    if hooks[NONE].limiter is not None:
        raise RuntimeError(f"{CONN_IDS[NONE]}: the baseline connection has limits")
    return hooks


def _checked(control: EmulatorControl, name: str, calls: int) -> None:
    stats = control.stats()
    if stats["chat_requests"] != calls or stats["requests"] != calls:
        raise RuntimeError(f"{name}: {calls} calls, emulator stats {stats}")


def _batch(times: list[float]) -> dict[str, float]:
    """One round of one connection, in µs per call."""
    return {"us": median(times) * 1e6, "p90_us": percentile(times, 90) * 1e6}


def _sync_calls(params: dict[str, Any], control: EmulatorControl) -> dict[str, list[dict[str, float]]]:
    hooks = _hooks(params)
    messages, calls = _messages(), int(params["calls"])
    perf = time.perf_counter
    try:
        for hook in hooks.values():
            for _ in range(int(params["warmup"])):
                hook.chat_completion(messages, model=MODEL)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for round_ in range(int(params["rounds"])):
            for name in rotated(list(VARIANTS), round_):
                call = hooks[name].chat_completion
                control.reset()
                times = []
                for _ in range(calls):
                    started = perf()
                    call(messages, model=MODEL)
                    times.append(perf() - started)
                _checked(control, name, calls)
                runs[name].append(_batch(times))
    finally:
        for hook in hooks.values():
            hook.close()
    return runs


async def _async_calls(params: dict[str, Any], control: EmulatorControl) -> dict[str, dict[str, Any]]:
    hooks = _hooks(params)
    messages, calls = _messages(), int(params["calls"])
    concurrency, concurrent_calls = int(params["concurrency"]), int(params["concurrent_calls"])
    perf = time.perf_counter

    async def several(call: Callable[..., Awaitable[Any]]) -> float:
        async def one_after_another() -> None:
            for _ in range(concurrent_calls // concurrency):
                await call(messages, model=MODEL)

        started = perf()
        await asyncio.gather(*(one_after_another() for _ in range(concurrency)))
        return (perf() - started) / concurrent_calls

    try:
        for hook in hooks.values():
            for _ in range(int(params["warmup"])):
                await hook.achat_completion(messages, model=MODEL)
            await several(hook.achat_completion)
        runs: dict[str, dict[str, list[dict[str, float]]]] = {mode: {n: [] for n in VARIANTS} for mode in MODES[1:]}
        for round_ in range(int(params["rounds"])):
            for name in rotated(list(VARIANTS), round_):
                call = hooks[name].achat_completion
                control.reset()
                times = []
                for _ in range(calls):
                    started = perf()
                    await call(messages, model=MODEL)
                    times.append(perf() - started)
                _checked(control, name, calls)
                runs[ASYNC][name].append(_batch(times))
            for name in rotated(list(VARIANTS), round_):
                control.reset()
                per_call = await several(hooks[name].achat_completion)
                _checked(control, f"{name}, {concurrency} at once", concurrent_calls)
                runs[CONCURRENT][name].append({"us": per_call * 1e6, "p90_us": per_call * 1e6})
    finally:
        for hook in hooks.values():
            await hook.aclose()
    return runs


def _alone_limiter(params: dict[str, Any], store: str) -> Any:
    from airflow_provider_aiml.hooks.settings import LimitSettings
    from airflow_provider_aiml.limits import limiter_for

    where = {"redis_conn_id": REDIS_CONN_ID} if store == REDIS else {"local_path": params["local_path"]}
    found = limiter_for(ALONE_CONN_IDS[store], LimitSettings(**LIMITS, **where))
    if found is None:
        raise RuntimeError(f"{store}: no limiter")
    return found


def _alone_sync(params: dict[str, Any], store: str, between_calls: bool = False) -> dict[str, list[float]]:
    """``acquire`` + ``release`` in a tight loop; ``between_calls``: each after an HTTP call (no limits, not
    timed), so Redis's thread and the caches are as cold as in a call."""
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    limiter = _alone_limiter(params, store)
    hook, messages = AimlApiHook(log_calls=False), _messages()
    perf = time.perf_counter
    acquired, released = [], []
    for index in range(int(params["warmup"]) + int(params["operations"])):
        if between_calls:
            hook.chat_completion(messages, model=MODEL)
        started = perf()
        lease = limiter.acquire("bench-alone")
        middle = perf()
        limiter.release(lease, 0.000001)
        ended = perf()
        if index >= int(params["warmup"]):
            acquired.append((middle - started) * 1e6)
            released.append((ended - middle) * 1e6)
    hook.close()
    return {"acquire": acquired, "release": released}


async def _alone_async(params: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    perf = time.perf_counter
    out = {}
    for store in STORES:
        limiter = _alone_limiter(params, store)
        acquired, released = [], []
        try:
            for index in range(int(params["warmup"]) + int(params["operations"])):
                started = perf()
                lease = await limiter.aacquire("bench-alone")
                middle = perf()
                await limiter.arelease(lease, 0.000001)
                ended = perf()
                if index >= int(params["warmup"]):
                    acquired.append((middle - started) * 1e6)
                    released.append((ended - middle) * 1e6)
        finally:
            limiter.close()
        out[store] = {"acquire": acquired, "release": released}
    return out


def _checks(params: dict[str, Any]) -> dict[str, Any]:
    """Slots left in the stores (none: every call gave its slot back) and the spend each counted today."""
    from airflow.providers.redis.hooks.redis import RedisHook

    from airflow_provider_aiml.hooks.settings import LimitSettings
    from airflow_provider_aiml.limits import limiter_for

    connections = {CONN_IDS[REDIS]: REDIS, CONN_IDS[LOCAL]: LOCAL, ALONE_CONN_IDS[REDIS]: REDIS}
    connections[ALONE_CONN_IDS[LOCAL]] = LOCAL
    redis = RedisHook(redis_conn_id=REDIS_CONN_ID).get_conn()
    database = sqlite3.connect(params["local_path"])
    slots_left, spent = {}, {}
    try:
        for conn_id, store in connections.items():
            where = {"redis_conn_id": REDIS_CONN_ID} if store == REDIS else {"local_path": params["local_path"]}
            found = limiter_for(conn_id, LimitSettings(**LIMITS, **where))
            assert found is not None
            if store == REDIS:
                left = int(redis.zcard(f"{found.plan.namespace}:slots"))
            else:
                query = "SELECT count(*) FROM slots WHERE namespace = ?"
                (left,) = database.execute(query, (found.plan.namespace,)).fetchone()
            slots_left[conn_id], spent[conn_id] = int(left), found.spent_today()
    finally:
        database.close()
        redis.close()
    return {"slots_left": slots_left, "spent_usd": spent}


if __name__ == "__main__":
    raise SystemExit(worker_main(_work))

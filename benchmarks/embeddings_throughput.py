"""Embeddings throughput: ``AimlApiHook.aembed`` against the same requests sent by bare httpx.

    .venv/bin/python -m benchmarks --only embeddings_throughput

The parent starts the emulator (its own process, no added latency) and one worker process that runs both
clients in turns (a different order on every repetition): ``aembed`` over ``texts`` short texts (validation,
batching into requests of ``batch_size``, retries armed, parsing into vectors in input order checked by index,
the call's summary line logged through Airflow's task logging as a task does), and bare httpx posting the very
same bodies at the same concurrency and decoding the JSON. ``dimensions`` keeps the vectors short, so the
emulator, which computes every vector, does not dominate both figures.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from benchmarks._common import (
    API_KEY,
    Timer,
    airflow_env,
    configure_task_logging,
    emulator_process,
    median,
    run_worker,
    table,
    temp_home,
    verdict,
    worker_main,
)

NAME = "embeddings_throughput"
TITLE = "Embeddings throughput"
FULL: dict[str, Any] = {"texts": 100_000, "batch_size": 256, "concurrency": 8, "dimensions": 64, "repeat": 3}
QUICK: dict[str, Any] = {"texts": 2_000, "batch_size": 128, "concurrency": 4, "dimensions": 16, "repeat": 1}
TARGET_RATIO = 2.0
HOOK = "hook aembed"
JSON = {"Content-Type": "application/json"}
HTTPX = "bare httpx"


def run(
    *,
    texts: int = FULL["texts"],
    batch_size: int = FULL["batch_size"],
    concurrency: int = FULL["concurrency"],
    dimensions: int = FULL["dimensions"],
    repeat: int = FULL["repeat"],
    timeout: float = 1200,
) -> dict[str, Any]:
    """Seconds for all texts through each client; medians of ``repeat`` rounds."""
    params = {"texts": texts, "batch_size": batch_size, "concurrency": concurrency, "dimensions": dimensions}
    params |= {"repeat": repeat}
    with emulator_process() as emulator, temp_home() as home:
        params["base_url"] = emulator.base_url
        params["log_path"] = str(home / "task.log")
        raw = run_worker(f"benchmarks.{NAME}", params, airflow_env(home, {"aiml_default": emulator.base_url}), timeout)
    hook_s, httpx_s = median(raw["seconds"][HOOK]), median(raw["seconds"][HTTPX])
    result: dict[str, Any] = {
        "params": {key: value for key, value in params.items() if key not in ("base_url", "log_path")},
        "requests": raw["requests"],
        "hook_s": hook_s,
        "httpx_s": httpx_s,
        "ratio": hook_s / httpx_s,
        "hook_texts_per_s": texts / hook_s,
        "httpx_texts_per_s": texts / httpx_s,
        "runs": raw["seconds"],
        "log_lines": raw["log_lines"],
    }
    result["targets"] = [
        {
            "what": f"{texts:,} short texts embedded: `aembed` vs bare httpx, same requests and concurrency",
            "target": f"< {TARGET_RATIO:g}x the time",
            "value": f"{result['ratio']:.2f}x ({hook_s:.2f} s vs {httpx_s:.2f} s)",
            "ok": result["ratio"] < TARGET_RATIO,
        }
    ]
    return result


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p = result["params"]
    return [
        f"## {TITLE}",
        "",
        f"{p['texts']:,} texts of a few words, {result['requests']} requests of {p['batch_size']} texts, "
        f"concurrency {p['concurrency']}, `dimensions={p['dimensions']}`, against the emulator (no added latency, "
        f"its own process). Medians of {p['repeat']} rounds; the clients take turns.",
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
        *table(
            ("Client", "Seconds", "Texts per second"),
            [
                (HOOK, f"{result['hook_s']:.2f}", f"{result['hook_texts_per_s']:,.0f}"),
                (HTTPX, f"{result['httpx_s']:.2f}", f"{result['httpx_texts_per_s']:,.0f}"),
            ],
        ),
        "",
        f"- The hook logged {result['log_lines']:,} summary lines through Airflow's task logging (one per call) "
        "and checked every text, every answer's indexes and every vector value; bare httpx only posts the bodies "
        "and decodes the JSON.",
        "",
        *([f"![Texts per second of the hook and of bare httpx]({img})", ""] if img else []),
    ]


def plot(result: dict[str, Any], path: Path) -> None:
    """Texts per second of each client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 2.2))
    rates = [result["hook_texts_per_s"], result["httpx_texts_per_s"]]
    axis.barh([HOOK, HTTPX], rates, color=["#1f77b4", "#ff7f0e"])
    axis.invert_yaxis()
    axis.set_xlabel("texts per second (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the worker process ----------------------------------------------------------------------------------------


def _work(params: dict[str, Any]) -> dict[str, Any]:
    configure_task_logging(Path(params["log_path"]))
    texts = [
        f"product {i}: a sturdy {('red', 'blue', 'oak')[i % 3]} thing, model {i * 7}" for i in range(params["texts"])
    ]
    seconds: dict[str, list[float]] = {HOOK: [], HTTPX: []}
    requests = 0
    for round_ in range(params["repeat"]):
        order = [HOOK, HTTPX] if round_ % 2 == 0 else [HTTPX, HOOK]
        for client in order:
            with Timer() as timer:
                count = asyncio.run(_hook(params, texts) if client == HOOK else _httpx(params, texts))
            seconds[client].append(timer.wall)
            requests = count
    log_lines = sum(1 for line in Path(params["log_path"]).read_text().splitlines() if "AI/ML API embeddings" in line)
    return {"seconds": seconds, "requests": requests, "log_lines": log_lines}


async def _hook(params: dict[str, Any], texts: list[str]) -> int:
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    hook = AimlApiHook(max_concurrency=params["concurrency"])
    try:
        result = await hook.aembed(
            texts, dimensions=params["dimensions"], batch_size=params["batch_size"], concurrency=params["concurrency"]
        )
    finally:
        await hook.aclose()
    assert len(result.vectors) == len(texts)
    return result.requests


async def _httpx(params: dict[str, Any], texts: list[str]) -> int:
    import httpx

    size, slots = params["batch_size"], asyncio.Semaphore(params["concurrency"])
    limits = httpx.Limits(max_connections=params["concurrency"], max_keepalive_connections=params["concurrency"])
    headers = {"Authorization": f"Bearer {API_KEY}"}
    vectors = 0
    async with httpx.AsyncClient(base_url=params["base_url"], headers=headers, limits=limits, timeout=60) as client:

        async def one(first: int) -> None:
            nonlocal vectors
            body = {"model": "text-embedding-3-small", "input": texts[first : first + size]}
            body["dimensions"] = params["dimensions"]
            async with slots:
                response = await client.post(
                    "/embeddings", content=json.dumps(body), headers={"Content-Type": "application/json"}
                )
            response.raise_for_status()
            vectors += len(response.json()["data"])

        starts = range(0, len(texts), size)
        await asyncio.gather(*(one(first) for first in starts))
    assert vectors == len(texts)
    return len(starts)


if __name__ == "__main__":
    raise SystemExit(worker_main(_work))

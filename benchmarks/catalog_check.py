"""The model catalog check: what checking a call against its model's catalog entry and schema adds, once cached.

    .venv/bin/python -m benchmarks --only catalog_check

One process: the emulator (in a thread, for the first catalog reads only) and two real ``AimlApiHook`` on the
same emulator, one with ``catalog_checks`` on (the default) and one with it off (the seed model's built-in
ranges, no catalog). Both prepare the same calls with ``prepare_chat``, which checks everything and builds the
body but sends nothing. After a warm-up that reads the catalog (the entry and the schema of each model, once),
the emulator's request log must not grow: every measured call is answered from the process cache.

Each round prepares ``calls`` calls per hook and per model, in an order that changes every round; a call's time
is the median of its round, and the added time is the median of the rounds' differences. The check alone (the
profile lookup and ``ModelProfile.check`` on a built body) is timed too. The models are three families of the
emulator's catalog, with a typical call for each (a short prompt and two parameters; for the vision model, one
image by URL; for the others, a ten-message conversation, whose messages the vision check scans).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import API_KEY, median, rotated, table, temp_home, verdict

NAME = "catalog_check"
TITLE = "Model catalog check"
FULL: dict[str, Any] = {"calls": 400, "rounds": 25, "warmup": 50}
QUICK: dict[str, Any] = {"calls": 20, "rounds": 2, "warmup": 3}
TARGET_ADDED_US = 50.0
ON, OFF = "catalog on", "catalog off"
HEADER = ("Model and call", "Checked against", "Catalog off (µs)", "Catalog on (µs)", "Added (µs)", "Check alone (µs)")
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "seed model, one image": ("alibaba/qwen3-vl-32b-thinking", {"max_completion_tokens": 800, "temperature": 0.2}),
    "openai/gpt-4o, conversation": ("openai/gpt-4o", {"max_completion_tokens": 400, "top_p": 0.9}),
    "anthropic/claude-sonnet-4.5, conversation, budget": (
        "anthropic/claude-sonnet-4.5",
        {"max_tokens": 4000, "temperature": 0.5, "reasoning_budget_tokens": 2048},
    ),
}


def run(calls: int, rounds: int, warmup: int) -> dict[str, Any]:
    """Measure, check and summarise; the result feeds :func:`report`."""
    from airflow_provider_aiml.testing import AimlApiEmulator

    with temp_home() as home, AimlApiEmulator(api_keys=[API_KEY]) as emulator, _connections(emulator, home):
        from airflow_provider_aiml.hooks.aiml import AimlApiHook

        hooks = {ON: AimlApiHook("aiml_catalog_on", log_calls=False), OFF: AimlApiHook("aiml_catalog_off")}
        results: dict[str, Any] = {}
        measured_requests = 0
        for case, (model, params) in CASES.items():
            messages = _messages(case)
            prepare = {name: _preparer(hook, messages, model, params) for name, hook in hooks.items()}
            for _ in range(warmup):
                for run_one in prepare.values():
                    run_one()
            before = len(emulator.requests)
            results[case] = _measure(prepare, calls, rounds)
            measured_requests += len(emulator.requests) - before
            results[case]["check_alone_us"] = _check_alone(hooks[ON], model, messages, params, calls)
            profile = hooks[ON].model_profile(model)
            results[case]["from_schema"] = profile.checks_parameters
            results[case]["has_entry"] = profile.entry is not None
        catalog_requests = [r for r in emulator.requests if r.method == "GET"]
    worst = max(case["added_us"] for case in results.values())
    result = {
        "params": {"calls": calls, "rounds": rounds, "warmup": warmup},
        "cases": results,
        "catalog_requests": len(catalog_requests),
        "requests_while_measured": measured_requests,
    }
    result["targets"] = [
        {
            "what": "Catalog check added to each call once cached (`prepare_chat`, median, worst of three models)",
            "target": f"< {TARGET_ADDED_US:g} µs",
            "value": f"{worst:.1f} µs",
            "ok": worst < TARGET_ADDED_US and measured_requests == 0,
        }
    ]
    return result


@contextlib.contextmanager
def _connections(emulator: Any, home: Path) -> Iterator[None]:
    """The two connections, as ``AIRFLOW_CONN_*`` variables for the run only (the catalog cached under ``home``)."""
    names = []
    for conn_id, extra in (("aiml_catalog_on", {}), ("aiml_catalog_off", {"catalog_checks": False})):
        name = f"AIRFLOW_CONN_{conn_id.upper()}"
        extra = {**extra, "catalog_cache_dir": str(home / "aiml-catalog")}
        os.environ[name] = json.dumps(
            {"conn_type": "aimlapi", "password": API_KEY, "host": emulator.base_url, "extra": extra}
        )
        names.append(name)
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)


def _messages(case: str) -> list[dict[str, Any]]:
    if "image" in case:
        return [
            {"role": "system", "content": "Describe the picture in one line."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is on this shelf?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/shelf.jpg"}},
                ],
            },
        ]
    turns: list[dict[str, Any]] = [{"role": "system", "content": "You label support tickets."}]
    for number in range(4):
        turns.append({"role": "user", "content": f"Ticket {number}: the kettle arrived late but works well."})
        turns.append({"role": "assistant", "content": "delivery"})
    turns.append({"role": "user", "content": "Ticket 9: the lid does not close."})
    return turns


def _preparer(hook: Any, messages: list[dict[str, Any]], model: str, params: dict[str, Any]) -> Callable[[], Any]:
    # The hook with the catalog off takes no reasoning switch for a model it knows nothing of: same body for both.
    sent = dict(params)

    def prepare() -> Any:
        return hook.prepare_chat(messages, model, "bench", None, sent, stream=False)

    return prepare


def _measure(prepare: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, Any]:
    per_round: dict[str, list[float]] = {name: [] for name in prepare}
    for round_ in range(rounds):
        for name in rotated(list(prepare), round_):
            times = []
            run_one = prepare[name]
            for _ in range(calls):
                started = time.perf_counter()
                run_one()
                times.append(time.perf_counter() - started)
            per_round[name].append(median(times) * 1e6)
    added = [on - off for on, off in zip(per_round[ON], per_round[OFF], strict=True)]
    return {"on_us": median(per_round[ON]), "off_us": median(per_round[OFF]), "added_us": median(added)}


def _check_alone(hook: Any, model: str, messages: list[dict[str, Any]], params: dict[str, Any], calls: int) -> float:
    call = hook.prepare_chat(messages, model, "bench", None, params, stream=False)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        hook.model_profile(model).check(call.body)
        times.append(time.perf_counter() - started)
    return median(times) * 1e6


def report(result: dict[str, Any], img: str | None) -> list[str]:
    """The Markdown section of this benchmark."""
    p = result["params"]
    rows = [
        (
            case,
            "schema" if figures["from_schema"] else ("entry only" if figures["has_entry"] else "built-in"),
            f"{figures['off_us']:.1f}",
            f"{figures['on_us']:.1f}",
            f"{figures['added_us']:.1f}",
            f"{figures['check_alone_us']:.1f}",
        )
        for case, figures in result["cases"].items()
    ]
    return [
        f"## {TITLE}",
        "",
        "What checking a call against its model's catalog entry (capabilities) and its own schema (the parameters "
        "it takes and their ranges) adds to each call once the catalog is cached. Two real `AimlApiHook`s on the "
        "emulator, `catalog_checks` on and off, prepare the same calls with `prepare_chat` (everything checked, "
        f"the body built, nothing sent): {p['calls']} calls per hook and model in each of {p['rounds']} rounds, "
        f"after {p['warmup']} warm-up calls that read the catalog. Times are medians per call.",
        "",
        *table(
            ("Target", "Goal", "Result", ""),
            [(t["what"], t["target"], t["value"], verdict(t["ok"])) for t in result["targets"]],
        ),
        "",
        *table(HEADER, rows),
        "",
        f"- The warm-up read the catalog with {result['catalog_requests']} GET requests in all (each model's "
        f"entry and schema once); the measured calls made {result['requests_while_measured']}.",
        '- "Check alone" is the profile lookup and `ModelProfile.check` on a built body: the part of the added '
        "time that is the check itself; the rest is the reasoning switch and the per-model range checks replacing "
        "the built-in ones.",
        "",
    ]


def plot(result: dict[str, Any], path: Path) -> None:
    """A bar per model: the time added per call, against the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(result["cases"])
    added = [result["cases"][case]["added_us"] for case in cases]
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.barh(cases, added, color="#4c72b0")
    axes.axvline(TARGET_ADDED_US, color="#c44e52", linestyle="--", label=f"target {TARGET_ADDED_US:g} µs")
    axes.set_xlabel("µs added per call (median)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

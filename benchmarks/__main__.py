"""Run the benchmark suite and write its page.

    .venv/bin/python -m benchmarks                  # make bench: every benchmark; writes docs/benchmarks.md and
                                                    # docs/img/bench-*.png
    .venv/bin/python -m benchmarks --quick          # tiny sizes, a smoke check: writes build/benchmarks/
    .venv/bin/python -m benchmarks --only overhead  # some benchmarks only: writes build/benchmarks/

Only a full run (no --quick, no --only) writes docs/, so a quick check never replaces published figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import (
    agent_loop,
    batch_throughput,
    catalog_check,
    embeddings_throughput,
    files_throughput,
    import_parse,
    limiter,
    overhead,
    streaming,
)
from benchmarks._common import REPO, has_module, machine, table, verdict, versions

BENCHMARKS: dict[str, tuple[ModuleType, str]] = {
    overhead.NAME: (overhead, "bench-overhead.png"),
    streaming.NAME: (streaming, "bench-streaming.png"),
    import_parse.NAME: (import_parse, "bench-parse.png"),
    batch_throughput.NAME: (batch_throughput, "bench-batch.png"),
    files_throughput.NAME: (files_throughput, "bench-files.png"),
    embeddings_throughput.NAME: (embeddings_throughput, "bench-embeddings.png"),
    agent_loop.NAME: (agent_loop, "bench-agent.png"),
    limiter.NAME: (limiter, "bench-limiter.png"),
    catalog_check.NAME: (catalog_check, "bench-catalog.png"),
}
DOCS_PAGE = REPO / "docs" / "benchmarks.md"
SCRATCH_PAGE = REPO / "build" / "benchmarks" / "benchmarks.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, write the page (and plots), print it; 1 when a benchmark failed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs (seconds)")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run this benchmark (repeatable)")
    parser.add_argument("--output", type=Path, help="the page to write (its plots go to img/ next to it)")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    full = not args.quick and not args.only
    output: Path = args.output or (DOCS_PAGE if full else SCRATCH_PAGE)
    images = output.parent / "img"
    images.mkdir(parents=True, exist_ok=True)

    started = datetime.now(UTC)
    results: dict[str, Any] = {}
    durations: dict[str, float] = {}
    for name in selected:
        module = BENCHMARKS[name][0]
        sizes = module.QUICK if args.quick else module.FULL
        print(f"== {name} ({'quick' if args.quick else 'full'} sizes) ...", flush=True)
        begun = time.perf_counter()
        try:
            results[name] = module.run(**sizes)
        except Exception:
            results[name] = {"error": traceback.format_exc()}
            print(results[name]["error"], file=sys.stderr, flush=True)
        durations[name] = time.perf_counter() - begun
        print(f"   {name}: {durations[name]:.0f} s", flush=True)

    plots = _plots(results, images, output.parent)
    page = render(
        results, plots, durations, started=started, quick=args.quick, argv=sys.argv[1:] if argv is None else argv
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "versions": versions(), "results": results}, indent=1))
    print(page)
    print(f"Wrote {_shown(output)} in {sum(durations.values()):.0f} s.", flush=True)
    return 1 if any("error" in result for result in results.values()) else 0


def _plots(results: dict[str, Any], images: Path, page_dir: Path) -> dict[str, str | None]:
    """Draw each benchmark's plot (when matplotlib is installed); returns image paths relative to the page."""
    shown: dict[str, str | None] = {}
    for name, result in results.items():
        module, filename = BENCHMARKS[name]
        shown[name] = None
        if "error" in result or not has_module("matplotlib"):
            continue
        path = images / filename
        module.plot(result, path)
        shown[name] = os.path.relpath(path, page_dir) if path.exists() else None
    return shown


def render(
    results: dict[str, Any],
    plots: dict[str, str | None],
    durations: dict[str, float],
    *,
    started: datetime,
    quick: bool,
    argv: Sequence[str],
) -> str:
    """The whole page: summary of the targets, machine and versions, one section per benchmark, caveats."""
    box, found = machine(), versions()
    command = " ".join(["python -m benchmarks", *map(shlex.quote, argv)])
    lines = ["# Benchmarks", ""]
    if quick:
        lines += [
            "> **Quick run (`--quick`)**: tiny sizes and single measurements, to check that the suite runs. "
            "These figures are not results.",
            "",
        ]
    lines += [
        "Every figure on this page was measured by the benchmark suite in `benchmarks/` against the project's "
        "emulator of the AI/ML API (`airflow_provider_aiml.testing`), a real HTTP server on 127.0.0.1 running in "
        "its own process, and written here by the suite itself. Peers are measured in the same run, taking turns.",
        "",
        "## Summary",
        "",
    ]
    rows = []
    for name, result in results.items():
        title = BENCHMARKS[name][0].TITLE
        if "error" in result:
            rows.append((title, "the benchmark failed", "", "", "**FAILED**"))
            continue
        rows += [(title, t["what"], t["target"], t["value"], verdict(t["ok"])) for t in _targets(name, result)]
    lines += [*table(("Benchmark", "Target", "Goal", "Result", ""), rows), ""]
    lines += [
        "## Machine and versions",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; the run took {sum(durations.values()) / 60:.1f} minutes "
        f"({', '.join(f'{name} {seconds:.0f} s' for name, seconds in durations.items())}).",
        f"- CPU: {box['cpu']}, {box['cores']} cores; RAM {box['ram_gb']:g} GB; {box['os']}.",
        f"- Python {box['python']}; " + ", ".join(f"{package} {version}" for package, version in found.items()) + ".",
        f"- Command: `{command}`.",
        "",
    ]
    for name, result in results.items():
        module = BENCHMARKS[name][0]
        if "error" in result:
            lines += [f"## {module.TITLE}", "", "The benchmark failed:", "", "```", result["error"].rstrip(), "```", ""]
        else:
            lines += module.report(result, plots.get(name))
    lines += _reproduce_and_caveats()
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _targets(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every benchmark's targets in one shape (streaming has none)."""
    if name == import_parse.NAME:
        targets = [
            {
                "what": "Provider import on top of `import airflow.sdk`",
                "target": f"< {import_parse.IMPORT_TARGET_MS:.0f} ms",
                "value": f"{result['import']['provider_ms']:.1f} ms",
                "ok": result["import"]["provider_ms"] < import_parse.IMPORT_TARGET_MS,
            }
        ]
        for phase, label in (("cold", "as Airflow 3 parses it"), ("warm", "provider pre-imported")):
            ratios = [entry[phase]["ratio"] for entry in result["parse"].values()]
            worst = max(ratios) if ratios else math.nan
            passed = sum(ratio <= import_parse.PARSE_TARGET for ratio in ratios)
            targets.append(
                {
                    "what": f"Example DAG parse vs EmptyOperator twin, {label}",
                    "target": f"<= {import_parse.PARSE_TARGET}x each",
                    "value": f"{passed} of {len(ratios)} files; worst {worst:.2f}x",
                    "ok": passed == len(ratios),
                }
            )
        return targets
    if name == streaming.NAME:
        hook, log = result["throughput"][streaming.HOOK], result["latency"][streaming.OPERATOR_LOG]
        return [
            {
                "what": "No target set by issue 6 (reference figures)",
                "target": "-",
                "value": f"hook {hook['chunks_per_s']:,.0f} events/s; log line p50 {log['p50_ms']:.2f} ms, "
                f"p99 {log['p99_ms']:.2f} ms",
                "ok": None,
            }
        ]
    return list(result.get("targets", []))


def _reproduce_and_caveats() -> list[str]:
    return [
        "## Reproduce",
        "",
        "```bash",
        "make bench                                   # installs the bench extra (openai, matplotlib), then:",
        ".venv/bin/python -m benchmarks               # every benchmark; rewrites this page and docs/img/bench-*.png",
        ".venv/bin/python -m benchmarks --only overhead --only streaming   # some of them (writes build/benchmarks/)",
        ".venv/bin/python -m benchmarks --quick       # tiny sizes in about a minute: does everything still run?",
        "make bench-batch                             # = python benchmarks/batch_throughput.py, the batch part only",
        "```",
        "",
        "The sizes of the full run are the `FULL` dictionaries at the top of each module in `benchmarks/`. Run it "
        "on an otherwise idle machine: every figure is sensitive to other load.",
        "",
        "## Caveats",
        "",
        "- **One machine, 2 cores.** The emulator and the client under test run on the same machine and share its "
        "cores; each runs in its own process, so they do not share a GIL, but they do compete for CPU. The "
        "emulator is a Python server with a thread per connection: its own cost per request is shown as the "
        "ceiling rows, and the client CPU columns do not depend on it.",
        "- **Loopback, no TLS.** The emulator answers over 127.0.0.1 in plain HTTP with no network latency. Against "
        "the real API every call also pays TLS (once per connection) and the network, and a chat completion takes "
        "from hundreds of milliseconds to minutes, so per-call differences of a fraction of a millisecond measured "
        "here are a small share of a real call.",
        "- **Medians of few runs.** Each figure is the median of the stated number of repetitions; the raw "
        "figures are printed next to the tables so the spread can be judged.",
        "- **`dag.test()`.** The batch figures run through `dag.test()`, which runs tasks in-process and mapped "
        "task instances one after another; a deployment adds scheduling and worker start-up per task instance.",
        "",
    ]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())

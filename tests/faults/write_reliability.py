"""Write docs/reliability.md from the summaries ``make test-faults`` leaves in build/faults/.

Every figure on the page comes from those JSON files; the open provider bugs come from the strict xfail tests
of tests/faults/test_provider_gaps.py. Run it after the suite::

    make test-faults && .venv/bin/python tests/faults/write_reliability.py
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "faults"
PAGE = REPO / "docs" / "reliability.md"
GAPS_MODULE = REPO / "tests" / "faults" / "test_provider_gaps.py"
SOURCES = {
    "chaos": "chaos-summary.json",
    "stream": "stream-chaos-summary.json",
    "resume": "resume-summary.json",
    "requests": "fuzz-requests.json",
    "responses": "fuzz-responses.json",
}

# What the provider does with each fault (the behaviour the chaos test asserts); the counts come from the run.
BEHAVIOUR = {
    "429_retry_after_1": "`AimlRateLimitError`; the record waits the server's `Retry-After`, every worker pauses as "
    "long and the concurrency limit halves",
    "429_retry_after_0": "`AimlRateLimitError`; retried at once (`Retry-After: 0`), the concurrency limit halves",
    "429_no_retry_after": "`AimlRateLimitError`; exponential backoff with jitter (0.5-1 s, then 1-2 s), every "
    "worker pauses, the concurrency limit halves",
    "503": "`AimlServerError` with the API's message; retried after the backoff",
    "502_html": "`AimlServerError` whose message is the page's title (`HTML page: 502 Bad Gateway`); retried",
    "reset": "`AimlTransportError` (the read fails: connection reset by peer); retried after the backoff",
    "cut": "`AimlTransportError` (`RemoteProtocolError`: incomplete body); retried, nothing of the half answer kept",
    "timeout": "`AimlTimeoutError` after the connection's timeout; retried after the backoff",
}


def load() -> dict[str, Any]:
    data = {}
    missing = []
    for key, name in SOURCES.items():
        path = BUILD / name
        if not path.exists():
            missing.append(str(path.relative_to(REPO)))
            continue
        data[key] = json.loads(path.read_text(encoding="utf-8"))
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `make test-faults` first")
    return data


def open_gaps() -> list[tuple[str, str]]:
    """``(test name, reason)`` of every strict xfail in test_provider_gaps.py."""
    tree = ast.parse(GAPS_MODULE.read_text(encoding="utf-8"))
    gaps = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "xfail":
                reason = next((k.value for k in decorator.keywords if k.arg == "reason"), None)
                if isinstance(reason, ast.Constant):
                    gaps.append((node.name, str(reason.value)))
    return gaps


def n(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def chaos_section(chaos: dict[str, Any]) -> list[str]:
    records, tries = chaos["records"], 1 + chaos["max_retries"]
    lines = [
        "## The chaos run",
        "",
        f"{records:,} records go through `AimlBatchChatCompletionOperator` in a real `dag.test()` run "
        f'(concurrency {chaos["concurrency"]}, `on_error="continue"`). The connection has a '
        f"{chaos['timeout_s']:g} s timeout and `max_retries` {chaos['max_retries']}, so a record gets at most "
        f"{tries} tries. The emulator draws a fault for each request at random (seed {chaos['seed']}):",
        "",
        "| Fault | Rate | What the provider did | Requests hit | Records answered after it | Records it exhausted |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fault in chaos["faults"]:
        lines.append(
            f"| {fault['label']} | {fault['rate']:.0%} | {BEHAVIOUR[fault['key']]} | {n(fault['injected'])} | "
            f"{n(fault['records_recovered'])} | {n(fault['records_exhausted'])} |"
        )
    total_rate = sum(f["rate"] for f in chaos["faults"])
    lines += [
        f"| **All faults** | {total_rate:.0%} | | {n(chaos['faulted_requests'])} | {n(chaos['recovered'])} | "
        f"{n(chaos['exhausted'])} |",
        "",
        '"Records answered after it" counts the records that met the fault at least once and still got their '
        'answer; "records it exhausted" counts those whose last try failed with it.',
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Chat requests | {n(chaos['requests'])} ({n(chaos['clean_requests'])} answered normally, "
        f"{n(chaos['faulted_requests'])} with a fault); the bound is {records:,} x {tries} = {records * tries:,} |",
        f"| Retries | {n(chaos['retries'])}, of which {n(chaos['rate_limited'])} after a 429 |",
        "| Records by tries | "
        + ", ".join(f"{n(count)} on try {t}" for t, count in chaos["records_by_tries"].items())
        + " |",
        f"| Answered | {n(chaos['succeeded'])} of {records:,} ({pct(chaos['succeeded'], records)}); "
        f"{n(chaos['recovered'])} of them after at least one fault |",
        f"| Exhausted | {n(chaos['exhausted'])} records, each after exactly {tries} failed tries, with the "
        "last failure in its `error` |",
        f"| Billed by the emulator | {n(chaos['billed_requests'])}: every answer once, plus "
        f"{n(chaos['billed_not_read'])} slow answers the client had stopped waiting for |",
        f"| Highest concurrency seen | {chaos['max_in_flight']} (the 429s keep halving the limit of "
        f"{chaos['concurrency']}) |",
        f"| Time | batch {chaos['batch_elapsed_s']:.1f} s, whole `dag.test()` run {chaos['dag_run_elapsed_s']:.1f} s |",
        "",
        "What the test asserts, record by record:",
        "",
        "- `return_value` has one item per input, in input order (`index` i is input i), and every answer is the "
        "emulator's reply to that record's own text: nothing lost, duplicated or swapped.",
        "- The requests of a record (found by its `X-Client-Request-Id`, `...:r<index>`) are: faulted tries, then "
        f"one clean try that gave the answer, at most {tries} in all; a record with an `error` had exactly {tries} "
        "tries, all faulted, and its `error` names the last one.",
        "- What the provider raised on each try is the exception class of the fault injected into it (table above).",
        "- The XCom `batch` counts, `usage` totals and the task log's `Batch finished` line (requests, retries, "
        "rate-limited) match the emulator's request log.",
        f"- Each retry waited what the policy says: `Retry-After` to the second, else the backoff; "
        f"{n(chaos['retry_after_followed'])} waits followed a `Retry-After`.",
        "",
        "### Keeping the run short without switching the behaviour off",
        "",
        "The batch runner sleeps for real before a retry and pauses every worker after a 429; both durations come "
        "from the retry policy's `delay_before_retry`. The test swaps in a subclass whose decisions are unchanged "
        f"(which errors retry, how many times, `Retry-After` or backoff, how long) and which returns each wait "
        f"multiplied by {chaos['wait_scale']:g}. The batch's clock is compressed {1 / chaos['wait_scale']:.0f} times; "
        "the pauses of all workers and the halving of the concurrency limit still happen. The waits the policy "
        f"chose add up to {n(chaos['retry_wait_chosen_s'])} s of record waits and "
        f"{n(chaos['rate_limit_pause_chosen_s'])} s of pauses after a 429 (overlapping). `Retry-After` values are "
        "0 or 1 s. The read timeouts are real: each costs its worker the full connection timeout.",
        "",
    ]
    return lines


def stream_section(stream: dict[str, Any], chaos: dict[str, Any]) -> list[str]:
    labels = {fault["key"]: fault["label"] for fault in chaos["faults"]}
    injected = "; ".join(f"{labels.get(key, key)}: {count}" for key, count in stream["injected"].items())
    return [
        "## The streamed variant",
        "",
        "The batch operator never streams: it builds its request bodies with `stream: false`, and `extra_body` may "
        "not set `stream`. On a non-streamed answer the emulator's `cut_stream` fault sends half of the body and "
        'closes the connection, which is the "answer cut mid-body" row above. To cut streams in the middle of the '
        f"answer's content, {stream['records']:,} records are streamed through the hook's async "
        f"`astream_chat_completion` ({stream['concurrency']} at a time) with the same fault mix; `cut_stream` lets "
        f"{stream['cut_after_events']} SSE events through, two of them carrying answer text.",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Faults injected | {injected} |",
        f"| Requests | {n(stream['requests'])} ({n(stream['retries'])} retries) |",
        f"| Answered | {n(stream['succeeded'])} ({n(stream['recovered'])} after a fault); "
        f"{n(stream['exhausted'])} exhausted |",
        f"| Streams cut mid-answer | {n(stream['streams_cut_mid_answer'])}: each broke with `AimlTransportError` after "
        "part of the answer had been yielded, and was retried |",
        f"| Time | {stream['elapsed_s']:.1f} s |",
        "",
        "The pieces a cut try yielded carry their `attempt` number; the pieces of the last try add up to the "
        "final answer, and the answer is the record's own.",
        "",
    ]


def resume_section(resume: dict[str, Any]) -> list[str]:
    return [
        "## Kill and resume",
        "",
        f"A batch of {resume['records']} records (concurrency {resume['concurrency']}, `checkpoint_path` set) runs "
        "under the same fault mix in a `dag.test()` subprocess. The emulator is a thread of the test process, so "
        "it outlives the worker. Once the checkpoint holds enough records the worker is killed with `SIGKILL`, and "
        "the DAG runs again with the same checkpoint, as a retried task or a rerun would (`dag.test()` cannot "
        "resume the killed run itself, so the second run is a new DAG run).",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Killed after | {resume['killed_after_s']:.1f} s, {resume['requests_before_kill']} requests, "
        f"{resume['records_asked_before_kill']} records asked |",
        f"| Finished in the checkpoint | {resume['finished_in_checkpoint']} |",
        f"| Lost with the calls in flight | {resume['lost_in_flight']} (at most the concurrency, "
        f"{resume['concurrency']}) |",
        f"| Exhausted before the kill (never checkpointed) | {resume['exhausted_before_kill']} |",
        f"| Asked in the second run | {resume['records_asked_after']} records, {resume['requests_after']} requests |",
        f"| **Finished records asked again** | **{resume['finished_asked_again']}** |",
        f"| Second run | {resume['resumed']} resumed from the checkpoint, {resume['succeeded']} answered in all, "
        f"{resume['failed']} exhausted |",
        "",
        "The test compares the emulator's request log with the checkpoint: the second run (told apart by the run "
        "id in each `X-Client-Request-Id`) asked for exactly the records the checkpoint did not hold, and each "
        "checkpointed record had its answer in the killed run.",
        "",
    ]


def fuzz_section(requests: dict[str, Any], responses: dict[str, Any], gaps: list[tuple[str, str]]) -> list[str]:
    def table(examples: dict[str, int]) -> list[str]:
        kinds: dict[str, dict[str, int]] = {}
        for label, count in examples.items():
            kind, _, verdict = label.partition(": ")
            verdict = verdict.removeprefix("provider error: ")
            if verdict.startswith("known gap: "):
                verdict = "known gap " + verdict.removeprefix("known gap: ").split()[0]
            kinds.setdefault(kind, {})[verdict] = kinds.get(kind, {}).get(verdict, 0) + count
        rows = []
        for kind, verdicts in kinds.items():
            total = sum(verdicts.values())
            shown = ", ".join(f"{verdict} {count}" for verdict, count in sorted(verdicts.items()))
            rows.append(f"| {kind} | {total:,} | {shown} |")
        return rows

    lines = [
        "## Property-based tests",
        "",
        "Hypothesis generates the inputs; respx stands in for the network, so nothing leaves the process. The CI "
        "profile is derandomized (the same examples every run); `AIML_FAULTS_PROFILE=faults-deep make test-faults` "
        "draws ten times as many at random.",
        "",
        "**Requests** (`test_fuzz_requests.py`). Generated: every generation parameter with valid values, values "
        "just outside the documented ranges, wrong types, NaN and infinities, huge integers, nulls, unknown names; "
        "`extra_body` with model-specific, reserved and duplicated keys and values JSON cannot encode; message lists "
        "with every role, string/part/odd content, image parts with good and bad URLs, names, tool calls and tool "
        "call ids, extra keys; for the operators also prompts, system prompts, local image files (a real PNG, a "
        "text file named `.png`, a missing path, a folder), batch records, per-record templates and batch limits. "
        "The property: the call fails with `AimlParameterError`/`AimlImageError` naming the culprit and **no request "
        "is sent**, or every body sent is standard JSON that the emulator's validator and the documented ranges "
        "(`wire_checks.py`) both accept, holding exactly the keys that were asked for.",
        "",
        "| Called | Examples | Outcomes |",
        "| --- | --- | --- |",
        *table(requests["examples"]),
        "",
        "**Responses** (`test_fuzz_responses.py`). Generated: a valid completion or SSE stream with up to three "
        "fields deleted, emptied or replaced by anything (wrong types, nulls, NaN, infinities, huge numbers), bodies "
        "cut at any byte or replaced by garbage or HTML, statuses from 200 to 599, every content type, odd cost and "
        "`Retry-After` headers; for streams also dropped chunks, comment/`event:`/`retry:` lines, broken `data:` "
        "lines, `[DONE]`, error events, LF or CRLF separators. The property: the call (plain, streamed, async) "
        "returns a valid result or raises an `AimlApiError` subclass, nothing else.",
        "",
        "| Called | Examples | Outcomes |",
        "| --- | --- | --- |",
        *table(responses["examples"]),
        "",
        '"Known gap" counts examples that hit one of the open bugs below: the property tests let those pass so '
        "that they keep guarding everything else.",
        "",
    ]
    if gaps:
        lines += [
            "### Open provider bugs",
            "",
            "Found by the tests above and reproduced one by one in `tests/faults/test_provider_gaps.py`, each "
            "marked `xfail(strict=True)` until it is fixed:",
            "",
            *[f"- `{name}`: {reason}" for name, reason in gaps],
            "",
        ]
    else:
        lines += ["No open provider bugs: `tests/faults/test_provider_gaps.py` holds no expected failure.", ""]
    return lines


def render(data: dict[str, Any]) -> str:
    meta = data["chaos"]["meta"]
    lines = [
        "# Reliability under faults",
        "",
        "`make test-faults` runs the fault-injection suite (`tests/faults/`) against the project's "
        "[emulator](emulator.md#faults) on 127.0.0.1: a chaos batch, a streamed chaos run, a worker killed "
        "mid-batch and resumed, and property-based tests of what goes on the wire and what comes back. The "
        "behaviour it checks is described in [Errors](errors.md#the-retry-policy) and "
        "[Batch enrichment](batch.md#concurrency-rate-limits-and-429s).",
        "",
        '!!! note "Generated page"',
        "    Every figure below comes from the JSON summaries the suite writes to `build/faults/`. Regenerate "
        "the page with",
        "    `make test-faults && .venv/bin/python tests/faults/write_reliability.py`.",
        "",
        f"- Measured: {meta['generated_at']} on {meta['machine']}",
        f"- Versions: {meta['versions']}",
        "",
    ]
    lines += chaos_section(data["chaos"])
    lines += stream_section(data["stream"], data["chaos"])
    lines += resume_section(data["resume"])
    lines += fuzz_section(data["requests"], data["responses"], open_gaps())
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    PAGE.write_text(render(load()), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)}")  # noqa: T201


if __name__ == "__main__":
    main()

"""The files the docs pages include their samples from (docs/snippets/), run against the emulator.

Each test runs one file (a DAG through ``dag.test()``, or the functions of a script) and checks that the
sample did what its page says. Together with tests/unit/test_docs_samples.py this keeps every code sample in
the docs working code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_aiml.models import ChatCompletionResult
from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.e2e.test_operator_dags import run, xcom, xcoms

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = REPO / "docs" / "snippets"
RUN_HERE = {
    "dags/operator_guide.py",
    "dags/batch_guide.py",
    "dags/taskflow_guide.py",
    "hook_guide.py",
    "dags/models_guide.py",
    "dags/reconcile_guide.py",
    "async_labels.py",
    "emulator_usage.py",
    "my_project/dags/review_labels.py",
    "my_project/tests/conftest.py",
    "my_project/tests/test_review_labels.py",
}
MESSAGES = [{"role": "user", "content": "Name one use of Apache Airflow."}]


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def load(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_snippet_{Path(relative).stem}", SNIPPETS / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requests_of(emulator: AimlApiEmulator, task_id: str) -> list[Any]:
    return [r for r in emulator.chat_requests if f":{task_id}:" in (r.client_request_id or "")]


def test_every_snippet_file_is_run_by_this_module():
    on_disk = {str(path.relative_to(SNIPPETS)) for path in SNIPPETS.rglob("*.py")}
    assert on_disk == RUN_HERE


def test_operator_guide_dag_sends_what_the_page_describes(dagbag, emulator):
    dag_run = run(dagbag, "docs_operator_guide")

    assert dag_run.state == "success"
    (summarize,) = requests_of(emulator, "summarize")
    assert summarize.json["messages"][0] == {"role": "system", "content": "You write short, factual summaries."}
    assert summarize.json["messages"][1]["content"].endswith("Airflow 3 ships a new UI and task SDK.")
    assert summarize.json["max_completion_tokens"] == 4096
    (guide,) = requests_of(emulator, "guide")
    assert guide.json["messages"][1]["content"] == [{"type": "text", "text": "One sight in Lyon?"}]
    (from_file,) = requests_of(emulator, "summarize_from_file")
    assert "in at most 2 sentences" in from_file.json["messages"][0]["content"]
    (chart,) = requests_of(emulator, "describe_chart")
    parts = chart.json["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What does this chart show?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2]["image_url"] == {"url": "https://example.com/photo.jpg", "detail": "low"}
    (quick,) = requests_of(emulator, "quick_answer")
    assert (quick.json["model"], quick.json["reasoning_effort"]) == ("openai/gpt-5", "low")
    (think,) = requests_of(emulator, "think_hard")
    assert think.json["stream"] is True
    assert (think.json["enable_thinking"], think.json["thinking_budget"]) == (True, 2048)
    invoice = xcom(dag_run, "parsed", "extract_invoice")
    assert set(invoice) == {"vendor", "total", "currency"}
    assert invoice["total"] >= 0
    labels = xcoms(dag_run, "parsed", "classify")
    assert len(labels) == 2
    assert all(label["sentiment"] in {"positive", "neutral", "negative"} for label in labels)
    assert xcom(dag_run, "return_value", "report").endswith(" USD)")


def test_batch_guide_dag_labels_every_ticket_and_checkpoints(dagbag, emulator, tmp_path):
    dag_run = run(dagbag, "docs_batch_guide", run_conf={"checkpoint_dir": str(tmp_path)})

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "label_tickets")
    assert [item["index"] for item in results] == [0, 1]
    assert all(item["parsed"]["category"] in {"delivery", "quality", "other"} for item in results)
    assert sorted(r.json["messages"][1]["content"] for r in emulator.chat_requests) == [  # sent concurrently
        "Ticket T-1: The parcel never came.",
        "Ticket T-2: The lid cracked.",
    ]
    (checkpoint,) = (tmp_path / "docs_batch_guide").glob("*.jsonl")
    assert len(checkpoint.read_text().splitlines()) == 2


def test_taskflow_guide_dag_maps_and_batches(dagbag, emulator):
    dag_run = run(dagbag, "docs_taskflow_guide")

    assert dag_run.state == "success"
    notes = xcoms(dag_run, "return_value", "release_note")
    assert len(notes) == 2
    assert xcom(dag_run, "return_value", "publish") == "\n".join(f"- {note}" for note in notes)
    assert len(xcom(dag_run, "return_value", "people")) == 3
    assert len(emulator.chat_requests) == 5


def test_models_guide(emulator, dagbag):
    dag_run = run(dagbag, "docs_models_guide")
    assert dag_run.state == "success"
    sent = emulator.chat_requests[-1].json
    assert sent["model"] == "anthropic/claude-sonnet-4.5"
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert "reasoning_budget_tokens" not in sent  # the provider's switch never goes on the wire
    chosen = xcom(dag_run, "return_value", "cheapest_vision_model")
    vision = [
        m for m in emulator.catalog.items() if "vision" in m["capabilities"] and m["type"].endswith("chat-completions")
    ]
    assert chosen["model"] == "openai/gpt-4o-mini"  # the cheapest of the emulator's vision models
    assert len(vision) > 3
    assert chosen["usd_per_1k_in_1k_out"] == pytest.approx((0.15 + 0.6) / 1000)
    assert chosen["price"] == "$0.15 in / $0.6 out per 1M tokens"


def test_hook_guide_calls(emulator, monkeypatch, capsys):
    guide = load("hook_guide.py")
    hook = guide.AimlApiHook()

    result = guide.ask()
    assert result.content
    assert emulator.chat_requests[-1].json["temperature"] == 0.3
    assert f"{result.usage.total_tokens} {result.usage.usd_spent}" in capsys.readouterr().out

    vectors = guide.embed_texts()
    assert [len(vector) for vector in vectors] == [256, 256, 256]
    assert emulator.embedding_requests[-1].json == {
        "model": "text-embedding-3-small",
        "input": ["a red kettle", "a blue kettle", "an oak desk"],
        "dimensions": 256,
    }
    assert any(line.startswith("3 256 ") for line in capsys.readouterr().out.splitlines())

    monkeypatch.chdir(REPO / "example_dags")
    assert guide.chart_messages()[0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert guide.request_id() == "nightly_batch:2026-03-14:17"

    streamed = guide.stream(hook, MESSAGES)
    assert isinstance(streamed, ChatCompletionResult)
    assert emulator.chat_requests[-1].json["stream"] is True
    assert streamed.content in capsys.readouterr().out.replace("\n", "")
    assert asyncio.run(guide.astream(hook, MESSAGES)).content == streamed.content

    assert "alibaba/qwen3-vl-32b-thinking" in guide.model_ids(hook)
    ok, message = guide.check(hook)
    assert ok
    assert message.startswith("API key accepted")


def test_hook_guide_error_samples(emulator, capsys):
    guide = load("hook_guide.py")

    emulator.add_fault(Fault.status(429, retry_after=7), times=3)
    assert guide.ask_or_report(guide.one_try_only(), MESSAGES) is None
    assert len(emulator.chat_requests) == 1  # RetryPolicy(max_retries=0): one try only
    assert capsys.readouterr().out.startswith("429 7 airflow-aiml:")

    emulator.reset()
    emulator.add_fault(Fault.status(403))
    answer = guide.answer_or_reason(guide.AimlApiHook(), MESSAGES)
    assert answer.startswith("(no answer: AI/ML API error 403")


def test_hook_guide_tour_and_async_labels(emulator):
    ok, message = asyncio.run(load("hook_guide.py").tour(MESSAGES))
    assert ok
    assert message.endswith(" models)")

    labels = asyncio.run(load("async_labels.py").label_all(["Great!", "Broken on arrival."]))
    assert len(labels) == 2
    assert all(labels)
    assert sorted(r.json["messages"][0]["content"] for r in emulator.chat_requests[-2:]) == [
        "Label the sentiment: Broken on arrival.",
        "Label the sentiment: Great!",
    ]


def test_emulator_samples(emulator, capsys):
    usage = load("emulator_usage.py")

    started = usage.start_one()
    assert not started.running  # stopped when the with block ends
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("http://127.0.0.1:")
    assert printed.endswith("/v1")
    assert started.pending_faults == 1
    usage.queue_faults(emulator)
    assert emulator.pending_faults == 3


def test_my_project_example_passes_its_own_tests(tmp_path):
    """docs/emulator.md's complete example, run as a user would: pytest in a fresh process and environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = str(REPO)
    tests = SNIPPETS / "my_project" / "tests"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tests)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "2 passed" in completed.stdout
    assert json.dumps(completed.stdout).count("failed") == 0


def test_reconcile_guide_reads_back_what_the_mapped_calls_cost(dagbag, emulator):
    dag_run = run(dagbag, "docs_reconcile_guide")

    assert dag_run.state == "success"
    summary = xcom(dag_run, "return_value", "reconcile")
    assert len(emulator.chat_requests) == 2
    assert summary["billed_calls"] == 2
    assert summary["billed_credits"] == emulator.credits_used
    assert summary["billed_usd"] == pytest.approx(emulator.usd_spent, abs=1e-9)
    assert (summary["failed_calls"], summary["missing_client_request_ids"], summary["complete"]) == (0, 0, True)

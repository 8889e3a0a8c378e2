"""Template files are read when the DAG is parsed, and nothing else is: no Jinja environment without a file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from airflow.sdk import DAG

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator


def _dag(folder: Path) -> DAG:
    return DAG("templates", schedule=None, start_date=datetime(2026, 1, 1), template_searchpath=[str(folder)])


def _no_jinja(*args: object, **kwargs: object) -> None:
    raise AssertionError("a Jinja environment was built at parse time")


def test_lists_and_plain_text_build_no_jinja_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(AimlChatCompletionOperator, "get_template_env", _no_jinja)
    monkeypatch.setattr(AimlBatchChatCompletionOperator, "get_template_env", _no_jinja)
    messages = [{"role": "user", "content": "Describe {{ ds }}"}]
    with _dag(tmp_path):
        chat = AimlChatCompletionOperator(
            task_id="chat",
            prompt="What does this chart show?",
            system_prompt="Summarize the attached notes.txt",  # a sentence, not a file name
            images=["images/bar_chart.png", {"url": "https://example.com/a.png"}],
        )
        with_messages = AimlChatCompletionOperator(task_id="messages", messages=messages)
        batch = AimlBatchChatCompletionOperator(task_id="batch", inputs=["a", "b.txt"], prompt="{{ record }}")

    for task in (chat, with_messages, batch):
        task.resolve_template_files()

    assert chat.images == ["images/bar_chart.png", {"url": "https://example.com/a.png"}]
    assert chat.system_prompt == "Summarize the attached notes.txt"
    assert with_messages.messages == messages
    assert batch.inputs == ["a", "b.txt"]  # the batch operator has no template files: "b.txt" is a record


@pytest.mark.parametrize("name", ["summary.j2", "summary.jinja2", "summary.txt"])
def test_a_template_file_is_read_and_a_sentence_next_to_it_is_left_alone(tmp_path, name):
    (tmp_path / name).write_text("Summarize {{ ds }} in three sentences.")
    with _dag(tmp_path):
        task = AimlChatCompletionOperator(
            task_id="chat", prompt=name, system_prompt="Keep it short, like notes.txt", images=["chart.png"]
        )

    task.resolve_template_files()

    assert task.prompt == "Summarize {{ ds }} in three sentences."
    assert task.system_prompt == "Keep it short, like notes.txt"
    assert task.images == ["chart.png"]

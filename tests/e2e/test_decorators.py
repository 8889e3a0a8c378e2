"""``@task.aiml`` and ``@task.aiml_batch`` in real DAG runs against the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.e2e.test_operator_dags import run, xcom, xcoms


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def test_task_aiml_returns_the_answer_and_pushes_reasoning_and_usage(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_basic")

    assert dag_run.state == "success"
    body = emulator.chat_requests[-1].json
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarize this: The quick brown fox jumps over the lazy dog."},
    ]
    assert body["max_completion_tokens"] == 500
    answer = xcom(dag_run, "return_value", "summarize")
    assert answer == xcom(dag_run, "content", "summarize")
    assert xcom(dag_run, "answer", "use") == answer
    assert xcom(dag_run, "reasoning", "use") == xcom(dag_run, "reasoning", "summarize") != ""
    assert xcom(dag_run, "usage", "use")["total_tokens"] > 0


def test_task_aiml_works_with_expand(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_expand")

    assert dag_run.state == "success"
    answers = xcoms(dag_run, "return_value", "describe")
    assert len(answers) == 3
    for answer, city in zip(answers, ["Oslo", "Lyon", "Porto"], strict=True):
        assert city in answer
    assert {r.json["temperature"] for r in emulator.chat_requests} == {0.2}


def test_task_aiml_accepts_a_message_list(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_messages")

    assert dag_run.state == "success"
    assert emulator.chat_requests[-1].json["messages"][0] == {"role": "system", "content": "You are terse."}


def test_task_aiml_with_output_type_returns_the_validated_object(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_typed")

    assert dag_run.state == "success"
    returned = xcom(dag_run, "return_value", "extract")
    assert set(returned) == {"city", "country", "population"}
    assert isinstance(returned["population"], int)
    assert returned == xcom(dag_run, "parsed", "extract")
    assert emulator.chat_requests[-1].json["response_format"]["json_schema"]["name"] == "CityFacts"


def test_task_aiml_deferrable_resumes_with_the_function_prompt(dagbag, emulator, capsys):
    dag_run = run(dagbag, "aiml_decorator_deferrable")

    assert dag_run.state == "success"
    assert "Deferring the AI/ML API call" in capsys.readouterr().out
    assert emulator.chat_requests[-1].json["messages"] == [{"role": "user", "content": "Explain deferral."}]
    assert xcom(dag_run, "return_value", "ask_later") == xcom(dag_run, "content", "ask_later")


def test_task_aiml_rejects_an_empty_prompt(dagbag, emulator, capsys):
    dag_run = run(dagbag, "aiml_decorator_bad_return")

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert "must return a prompt string or a list of messages" in capsys.readouterr().out


def test_task_aiml_batch_runs_the_template_over_the_returned_records(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_batch")

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "people")
    assert [item["index"] for item in results] == [0, 1, 2]
    assert [name in item["content"] for item, name in zip(results, ["Ada", "Grace", "Linus"], strict=True)] == [
        True
    ] * 3
    assert xcom(dag_run, "usage", "people")["total_tokens"] > 0


def test_task_aiml_batch_without_a_template_sends_each_record_as_the_prompt(dagbag, emulator):
    dag_run = run(dagbag, "aiml_decorator_batch_plain")

    assert dag_run.state == "success"
    sent = sorted(r.json["messages"][0]["content"] for r in emulator.chat_requests)
    assert sent == ["First question?", "Second question?"]

"""``deferrable`` left unset follows ``[operators] default_deferrable`` wherever the task runs or resumes.

In a deployment a resumed task is a fresh operator built from the parsed DAG: only ``execute_complete`` runs on
it, so the setting must be read there too, not only in ``execute``.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator


def _event(content: str) -> dict[str, Any]:
    result = {
        "id": "chatcmpl-1",
        "model": "qwen3-vl-32b-thinking",
        "requested_model": "alibaba/qwen3-vl-32b-thinking",
        "content": content,
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "client_request_id": "dag:chat:run:-1:1",
    }
    state = {"request_id": "dag:chat:run:-1:1", "attempt": 0, "spent": {}}
    return {"status": "success", "result": result, "resume_state": state}


def _fresh_operator(**kwargs: Any) -> AimlChatCompletionOperator:
    return AimlChatCompletionOperator(
        task_id="chat", prompt="Give the vendor as JSON.", response_format={"type": "json_object"}, **kwargs
    )


@pytest.mark.parametrize(("setting", "expected"), [("True", True), ("False", False)])
def test_an_unset_deferrable_reads_the_setting_when_asked(monkeypatch, setting, expected):
    operator = _fresh_operator()
    assert operator.deferrable is None  # nothing read when the DAG file is parsed
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    assert operator.defers() is expected


def test_an_explicit_deferrable_wins_over_the_setting(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert _fresh_operator(deferrable=False).defers() is False


def test_a_resumed_task_defers_its_validation_reask_when_the_setting_says_so(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    resumed = _fresh_operator(max_validation_retries=1)  # built anew, as a worker resuming the task does
    ti = mock.Mock()

    with pytest.raises(TaskDeferred) as deferred:
        resumed.execute_complete({"ti": ti}, _event("not JSON at all"))

    # The re-ask went to the triggerer (no HTTP call from the worker), carrying the rejected answer back.
    trigger = deferred.value.trigger
    assert trigger.client_request_id == "dag:chat:run:-1:1:v1"
    assert any("not JSON at all" in str(message.get("content")) for message in trigger.messages)
    assert {call.kwargs["key"] for call in ti.xcom_push.call_args_list} >= {"content", "usage"}

"""``AimlApprovalOperator``: the request written for the reviewer, and what each response does.

The responses are the events Airflow's human-in-the-loop hands ``execute_complete``; the real UI round trip is
in scripts/ui_test.py (``make test-ui``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from airflow.providers.standard.exceptions import HITLRejectException, HITLTimeoutError
from airflow.sdk.exceptions import TaskAwaitingInput

from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.operators.approval import AimlApprovalOperator

ANSWER = "Release 2.4 adds streaming exports."


def context() -> dict[str, Any]:
    ti = mock.Mock()
    ti.id = "0196-ti"
    task = mock.Mock()
    task.get_direct_relatives.return_value = []
    return {"ti": ti, "task_instance": ti, "task": task}


def pushed(ctx: dict[str, Any]) -> dict[str, Any]:
    return {call.kwargs["key"]: call.kwargs["value"] for call in ctx["ti"].xcom_push.call_args_list}


def event(option: str | None, **answers: Any) -> dict[str, Any]:
    return {
        "chosen_options": [option] if option else [],
        "params_input": answers,
        "responded_at": datetime(2026, 12, 6, tzinfo=UTC),
        "responded_by_user": {"id": "7", "name": "ana"},
    }


def make(**kwargs: Any) -> AimlApprovalOperator:
    return AimlApprovalOperator(task_id="review", content=ANSWER, **kwargs)


def test_the_request_shows_the_answer_and_offers_it_for_editing():
    operator = make()
    ctx = context()
    with (
        mock.patch("airflow.providers.standard.operators.hitl.upsert_hitl_detail") as upsert,
        pytest.raises(TaskAwaitingInput),
    ):
        operator.execute(ctx)

    request = upsert.call_args.kwargs
    assert request["options"] == ["Approve", "Reject"]
    assert request["body"] == ANSWER
    assert request["params"]["content"]["value"] == ANSWER
    assert request["params"]["content"]["schema"]["format"] == "multiline"  # a text area keeps line breaks
    assert request["defaults"] == ["Reject"]  # a timeout rejects unless on_timeout says otherwise
    assert pushed(ctx) == {"model_content": ANSWER}


def test_it_sits_in_a_dag_with_params_and_offers_only_its_own_form():
    from airflow.sdk import DAG

    with DAG("release", schedule=None, params={"version": "2.4"}):
        operator = AimlApprovalOperator(task_id="review", content=ANSWER, subject="Release {{ params.version }}")
    ctx = context()
    with (
        mock.patch("airflow.providers.standard.operators.hitl.upsert_hitl_detail") as upsert,
        pytest.raises(TaskAwaitingInput),
    ):
        operator.execute(ctx)

    assert sorted(upsert.call_args.kwargs["params"]) == ["comment", "content"]


def test_a_structured_answer_is_reviewed_as_json():
    operator = AimlApprovalOperator(task_id="review", content={"title": "Release 2.4", "items": ["exports"]})
    with (
        mock.patch("airflow.providers.standard.operators.hitl.upsert_hitl_detail") as upsert,
        pytest.raises(TaskAwaitingInput),
    ):
        operator.execute(context())

    shown = upsert.call_args.kwargs["params"]["content"]["value"]
    assert shown == '{\n  "title": "Release 2.4",\n  "items": [\n    "exports"\n  ]\n}'


def test_approving_as_is_passes_the_models_answer_on():
    ctx = context()
    result = make().execute_complete(ctx, event("Approve", content=ANSWER, comment=""))

    assert result == ANSWER
    values = pushed(ctx)
    assert values["content"] == values["model_content"] == ANSWER
    assert values["edited"] is False
    assert values["reviewed_by"] == "ana"


def test_an_edited_answer_is_what_goes_on_and_the_original_is_kept():
    ctx = context()
    edited = "Release 2.4 adds streaming CSV exports."
    result = make().execute_complete(ctx, event("Approve", content=edited, comment="more precise"))

    assert result == edited
    values = pushed(ctx)
    assert (values["content"], values["model_content"], values["edited"]) == (edited, ANSWER, True)
    assert values["comment"] == "more precise"


def test_a_rejection_skips_downstream_or_fails_as_chosen(capsys):
    ctx = context()
    assert make().execute_complete(ctx, event("Reject", content=ANSWER, comment="wrong version")) is None
    assert "Rejected by ana: wrong version" in capsys.readouterr().out
    assert pushed(ctx)["comment"] == "wrong version"
    assert "content" not in pushed(ctx)

    with pytest.raises(HITLRejectException):
        make(on_reject="fail").execute_complete(context(), event("Reject", content=ANSWER, comment="no"))


def test_on_timeout_fail_fails_and_approve_lets_the_answer_through():
    with pytest.raises(HITLTimeoutError):
        make(on_timeout="fail").execute_complete(context(), {"error": "timed out", "error_type": "timeout"})

    timed_out = {**event("Approve"), "responded_by_user": None}
    assert make(on_timeout="approve").execute_complete(context(), timed_out) == ANSWER


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"on_reject": "ignore"}, "on_reject must be"), ({"on_timeout": "later"}, "on_timeout must be")],
)
def test_wrong_choices_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(AimlParameterError, match=message):
        make(**kwargs)


def test_an_empty_answer_is_refused_before_anything_is_asked():
    with (
        mock.patch("airflow.providers.standard.operators.hitl.upsert_hitl_detail") as upsert,
        pytest.raises(AimlParameterError, match="content must be the non-empty answer"),
    ):
        AimlApprovalOperator(task_id="review", content="  ").execute(context())
    assert upsert.call_count == 0

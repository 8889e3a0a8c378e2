"""Wrong literal arguments fail when the DAG file is imported, naming the task and the argument; switches must be
real booleans and token counts whole numbers (``stream="no"`` is truthy, ``max_tokens=10.5`` was sent)."""

from __future__ import annotations

import textwrap
from typing import Any, get_args

import pytest
from airflow.dag_processing.dagbag import DagBag

from airflow_provider_aiml.decorators.aiml import aiml_task
from airflow_provider_aiml.exceptions import AimlParameterError
from airflow_provider_aiml.models import GenerationParams
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator
from airflow_provider_aiml.parameters import NUMERIC_PARAMETERS

CHAT_CASES: list[tuple[dict[str, Any], str]] = [
    ({"stream": "no"}, "'stream' must be True or False, got 'no'"),
    ({"stream": 1}, "'stream' must be True or False, got 1"),
    ({"deferrable": "no"}, "'deferrable' must be True, False or None, got 'no'"),
    ({"max_tokens": 10.5}, "'max_tokens' must be a whole number >= 1, got 10.5"),
    ({"max_completion_tokens": 0}, "'max_completion_tokens' must be a whole number >= 1, got 0"),
    ({"max_completion_tokens": True}, "'max_completion_tokens' must be a whole number >= 1, got True"),
    ({"temperature": 5}, "'temperature' must be a number from 0 to 2, got 5"),
    ({"temperature": float("nan")}, "'temperature' must be a number from 0 to 2, got nan"),
    ({"top_p": "0.5"}, "'top_p' must be a number from 0.01 to 1, got '0.5'"),
    ({"seed": 1.0}, "'seed' must be a whole number >= 1, got 1.0"),
    ({"repetition_penalty": 0}, "'repetition_penalty' must be a number > 0, got 0"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "'stop' must be a string or a list of 1 to 4 strings"),
    ({"parallel_tool_calls": "yes"}, "'parallel_tool_calls' must be True or False, got 'yes'"),
    ({"max_validation_retries": -1}, "'max_validation_retries' must be a whole number >= 0, got -1"),
]


@pytest.mark.parametrize(("arguments", "message"), CHAT_CASES, ids=lambda v: str(v)[:40])
def test_a_wrong_literal_argument_fails_when_the_operator_is_created(arguments, message):
    with pytest.raises(AimlParameterError) as raised:
        AimlChatCompletionOperator(task_id="ask", prompt="Hi", **arguments)
    assert str(raised.value).startswith(f"Task 'ask': {message}")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"concurrency": 0}, "'concurrency' must be a whole number > 0, got 0"),
        ({"concurrency": "8"}, "'concurrency' must be a whole number > 0, got '8'"),
        ({"max_cost_usd": -1}, "'max_cost_usd' must be a number > 0, got -1"),
        ({"max_total_tokens": 10.5}, "'max_total_tokens' must be a whole number > 0, got 10.5"),
        ({"on_error": "skip"}, "'on_error' must be 'fail' or 'continue', got 'skip'"),
        ({"temperature": 3}, "'temperature' must be a number from 0 to 2, got 3"),
    ],
)
def test_the_batch_operator_checks_its_literals_too(arguments, message):
    with pytest.raises(AimlParameterError, match=r"^Task 'batch': ") as raised:
        AimlBatchChatCompletionOperator(task_id="batch", inputs=["a"], prompt="{{ record }}", **arguments)
    assert message in str(raised.value)


def test_the_decorator_checks_its_literals_when_the_dag_is_built():
    @aiml_task(stream="off")
    def ask() -> str:
        return "Hi"

    with pytest.raises(AimlParameterError, match="'stream' must be True or False, got 'off'"):
        ask()  # calling the decorated function in a DAG file creates the task


def test_right_values_and_templated_fields_pass_untouched():
    task = AimlChatCompletionOperator(
        task_id="ask",
        prompt="{{ params.question }}",
        model="{{ params.model }}",  # templated: checked once rendered, when the task runs
        stream=True,
        deferrable=None,
        max_tokens=10,
        temperature=0,
        top_p=1,
        repetition_penalty=1.05,
        stop=("END",),
    )
    assert (task.stream, task.max_tokens, task.stop) == (True, 10, ("END",))


def test_a_dag_file_with_a_wrong_literal_is_an_import_error(tmp_path):
    (tmp_path / "bad_literal.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import DAG
            from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

            with DAG("bad_literal", schedule=None, start_date=datetime(2026, 1, 1)):
                AimlChatCompletionOperator(task_id="summarize", prompt="Summarize {{ ds }}", max_tokens=10.5)
            """
        )
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert "bad_literal" not in bag.dags
    (error,) = bag.import_errors.values()
    assert "Task 'summarize': 'max_tokens' must be a whole number >= 1, got 10.5" in error


def test_the_parse_time_ranges_are_the_wire_models_ranges():
    """One table feeds both checks: the pydantic field constraints equal :data:`NUMERIC_PARAMETERS`."""
    for name, expected in NUMERIC_PARAMETERS.items():
        annotation = GenerationParams.model_fields[name].annotation
        (member,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        kind, *metadata = get_args(member)
        constraints = [c for field in metadata for c in getattr(field, "metadata", [field])]
        found = {bound: getattr(c, bound) for c in constraints for bound in ("ge", "le", "gt") if hasattr(c, bound)}
        assert kind is expected.kind, name
        assert found == {
            k: v for k, v in (("ge", expected.ge), ("le", expected.le), ("gt", expected.gt)) if v is not None
        }

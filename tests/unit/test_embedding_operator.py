"""``AimlEmbeddingOperator``'s own checks: wrong arguments fail when the DAG file is parsed, wrong inputs before
any request (the runs themselves: tests/e2e/test_embedding_dags.py)."""

from __future__ import annotations

import pytest
import respx

from airflow_provider_aiml.exceptions import AimlFileError, AimlParameterError
from airflow_provider_aiml.operators.embedding import AimlEmbeddingOperator


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, "Task 'embed': 'batch_size' must be a whole number > 0, got 0"),
        ({"concurrency": 2.5}, "Task 'embed': 'concurrency' must be a whole number > 0, got 2.5"),
        ({"dimensions": -8}, "Task 'embed': 'dimensions' must be a whole number > 0, got -8"),
        ({"max_files": True}, "Task 'embed': 'max_files' must be a whole number > 0, got True"),
    ],
)
def test_wrong_literal_arguments_fail_when_the_dag_is_parsed(arguments, message):
    with pytest.raises(AimlParameterError, match=message):
        AimlEmbeddingOperator(task_id="embed", inputs=["a"], **arguments)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("a text, not a list", "inputs must be a list of texts, or files .* got the string 'a text, not a list'"),
        ({"a": "b"}, "inputs must be a list of texts, got dict"),
        (42, "inputs must be a list of texts, got int"),
    ],
)
def test_inputs_that_are_neither_texts_nor_files_fail_before_any_request(inputs, message):
    operator = AimlEmbeddingOperator(task_id="embed", inputs=inputs)

    with respx.mock(assert_all_called=False) as api, pytest.raises(AimlParameterError, match=message):
        operator.execute(context={})

    assert api.calls.call_count == 0


def test_no_texts_is_an_empty_result_without_a_request():
    operator = AimlEmbeddingOperator(task_id="embed", inputs=[])

    with respx.mock(assert_all_called=False) as api:
        assert operator.execute(context={}) == []

    assert api.calls.call_count == 0


def test_a_local_file_outside_the_folder_is_refused_naming_the_setting_that_allows_it(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere" / "notes.txt"
    outside.parent.mkdir()
    outside.write_text("private notes")
    inside = tmp_path / "dags"
    inside.mkdir()
    monkeypatch.chdir(inside)  # a task without a DAG is confined to the working directory
    operator = AimlEmbeddingOperator(task_id="embed", inputs=[outside.as_uri()], confine_files_to_dag_folder=True)

    with (
        respx.mock(assert_all_called=False) as api,
        pytest.raises(AimlFileError, match=r"is not inside the DAG folder .* Set confine_files_to_dag_folder=False"),
    ):
        operator.execute(context={})

    assert api.calls.call_count == 0

"""No catalog request (nor any other) is made while DAG files are parsed: catalog reads start with a task."""

from __future__ import annotations

import httpx
import pytest
import respx

from tests.airflow_env import DAGS_FOLDER


@pytest.mark.catalog
def test_parsing_every_dag_file_sends_no_request() -> None:
    from airflow.dag_processing.dagbag import DagBag

    with respx.mock(assert_all_called=False) as api:
        anything = api.route().mock(return_value=httpx.Response(500))
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    assert "aiml_catalog_reasoning" in bag.dag_ids  # the DAGs that name models, reasoning switches and fallbacks
    assert "aiml_catalog_fallback" in bag.dag_ids
    assert anything.call_count == 0


@pytest.mark.catalog
def test_a_wrong_reasoning_switch_fails_the_dag_file_without_a_request() -> None:
    from airflow_provider_aiml.exceptions import AimlParameterError
    from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

    with respx.mock(assert_all_called=False) as api:
        anything = api.route().mock(return_value=httpx.Response(500))
        with pytest.raises(AimlParameterError, match="'reasoning_effort' must be one of 'low', 'medium', 'high'"):
            AimlChatCompletionOperator(task_id="t", prompt="p", reasoning_effort="max")
        with pytest.raises(AimlParameterError, match="'fallback_models' must be a list of model ids"):
            AimlChatCompletionOperator(task_id="t", prompt="p", fallback_models="openai/gpt-4o")
    assert anything.call_count == 0

"""DAGs of the model-catalog tests: a reasoning switch sent in each family's own keys, a fallback model, and a
request a model cannot take (refused before anything is sent)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

START = datetime(2026, 1, 1)
IMAGE = "https://example.com/shelf.jpg"

with DAG("aiml_catalog_reasoning", schedule=None, start_date=START, catchup=False, tags=["test"]):
    for model, switch in (
        ("openai/gpt-5", {"reasoning_effort": "low"}),
        ("anthropic/claude-sonnet-4.5", {"reasoning_budget_tokens": 2048, "max_tokens": 4096}),
        ("alibaba/qwen3-32b", {"reasoning_budget_tokens": 512, "stream": True}),  # it thinks only when streamed
    ):
        AimlChatCompletionOperator(
            task_id=model.split("/")[1].replace(".", "_"), prompt="Is 97 prime?", model=model, **switch
        )

with DAG("aiml_catalog_fallback", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlChatCompletionOperator(
        task_id="ask",
        prompt="Summarise: the kettle arrived late.",
        model="openai/gpt-4-0613",  # deprecated: the API answers 404 "Model is deprecated"
        fallback_models=["openai/gpt-4o-mini"],
        max_completion_tokens=200,
    )

with DAG("aiml_catalog_refused", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlChatCompletionOperator(
        task_id="image_to_text_model",
        prompt="What is on the shelf?",
        images=[IMAGE],
        model="alibaba/qwen3-32b",  # text only: refused before the call
    )

with DAG("aiml_catalog_batch", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlBatchChatCompletionOperator(
        task_id="label",
        inputs=["late kettle", "broken lid", "great tea"],
        prompt="Label this review in one word: {{ record }}",
        model="anthropic/claude-sonnet-4.5",
        reasoning_budget_tokens=1024,
        max_tokens=2048,
        temperature=0.5,
    )

with DAG("aiml_catalog_scope_fallback", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlChatCompletionOperator(
        task_id="ask",
        prompt="Summarise: the lid was broken.",
        model="grok-4-07-09",  # by its alias; outside the key's scopes in the test: the API answers 403
        fallback_models=["anthropic/claude-sonnet-4.5"],
        reasoning_budget_tokens=2048,
        max_tokens=4096,
    )

with DAG("aiml_catalog_outage", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlChatCompletionOperator(task_id="ask", prompt="Summarise: the tea was great.", model="openai/gpt-4o-mini")

with DAG("aiml_catalog_thinking_needs_stream", schedule=None, start_date=START, catchup=False, tags=["test"]):
    AimlChatCompletionOperator(
        task_id="ask", prompt="Is 97 prime?", model="alibaba/qwen3-32b", reasoning_budget_tokens=512
    )

"""The sample of docs/reconciliation.md: what a mapped enrichment really cost, read back from the API's logs."""

from __future__ import annotations

from datetime import datetime

# --8<-- [start:reconcile]
from airflow.sdk import DAG, task

from airflow_provider_aiml.hooks.aiml import AimlApiHook


@task
def reconcile(responses: list[dict]) -> dict:
    hook = AimlApiHook()
    ids = [response["client_request_id"] for response in responses]
    usage = hook.billed_usage(ids, period="24h")
    return usage.summary()


# --8<-- [end:reconcile]

with DAG("docs_reconcile_guide", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    from airflow.sdk import XComArg

    from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

    labels = AimlChatCompletionOperator.partial(task_id="label", max_completion_tokens=200).expand(
        prompt=["Label: late kettle", "Label: broken lid"]
    )
    reconcile(XComArg(labels, key="response"))

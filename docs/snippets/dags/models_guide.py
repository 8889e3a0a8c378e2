"""The samples of docs/models.md: a task with the reasoning switch and a fallback model, and a task that reads
the catalog to choose the cheapest model that takes images.

The test suite runs them against the emulator (``aiml_default`` pointed at it), whose catalog serves the same
families as the real API.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator


# --8<-- [start:read-catalog]
@task
def cheapest_vision_model() -> dict:
    hook = AimlApiHook()
    listed = hook.list_models(include=["pricing"], type="openai/chat-completions", capabilities="vision")
    entries = [hook.get_model(item["id"]) for item in listed]
    priced = [
        (entry.pricing.cost(1_000, 1_000), entry.id, entry.pricing.describe())
        for entry in entries
        if entry is not None and entry.pricing is not None
    ]
    usd, model, price = min(priced)  # the cheapest for 1,000 tokens in and 1,000 out
    return {"model": model, "price": price, "usd_per_1k_in_1k_out": usd}


# --8<-- [end:read-catalog]

with DAG("docs_models_guide", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    # --8<-- [start:reasoning-switch]
    AimlChatCompletionOperator(
        task_id="check_invoice",
        prompt="Does this invoice add up? 3 x 4.50 + 2 x 1.25 = 16.00",
        model="anthropic/claude-sonnet-4.5",
        reasoning_budget_tokens=4096,  # sent as thinking={"type": "enabled", "budget_tokens": 4096}
        max_tokens=8192,
        fallback_models=["x-ai/grok-4-07-09"],  # if it answers instead: reasoning={"max_tokens": 4096}
    )
    # --8<-- [end:reasoning-switch]
    cheapest_vision_model()

"""The sample of docs/models.md: a task with the reasoning switch and a fallback model.

The test suite runs them against the emulator (``aiml_default`` pointed at it), whose catalog serves the same
families as the real API.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

with DAG("docs_models_guide", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    # --8<-- [start:reasoning-switch]
    AimlChatCompletionOperator(
        task_id="check_invoice",
        prompt="Does this invoice add up? 3 x 4.50 + 2 x 1.25 = 16.00",
        model="anthropic/claude-sonnet-4.5",
        reasoning_budget_tokens=4096,  # sent as thinking={"type": "enabled", "budget_tokens": 4096}
        max_tokens=8192,
        fallback_models=["alibaba/qwen3-32b"],  # if it answers instead: enable_thinking=True, thinking_budget=4096
    )
    # --8<-- [end:reasoning-switch]

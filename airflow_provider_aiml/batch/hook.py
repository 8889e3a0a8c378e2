"""The batch operator's hook: one quiet try per call, counting the answers and the model names they report."""

from __future__ import annotations

from typing import Any

from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat
from airflow_provider_aiml.models import ChatCompletionResult


class BatchHook(AimlApiHook):
    """An ``AimlApiHook`` that counts answers and notes reported model names (the records keep usage only).

    The batch retries, paces and logs progress itself, so the operator creates it with one try per call and
    without the per-call log line.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers = 0
        self.models: dict[str, None] = {}  # the reported model names, an ordered set

    async def asend_chat(self, call: PreparedChat) -> ChatCompletionResult:
        result = await super().asend_chat(call)
        self.answers += 1
        self.models.setdefault(result.model)
        return result

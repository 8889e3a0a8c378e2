"""The batch operator's hook: one quiet try per call, counting the answers and the model names they report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from airflow_provider_aiml.exceptions import AimlDailyBudgetError, AimlLimitStoreError
from airflow_provider_aiml.hooks.aiml import AimlApiHook, Call, PreparedChat, R
from airflow_provider_aiml.models import ChatCompletionResult


class BatchHook(AimlApiHook):
    """An ``AimlApiHook`` that counts answers and notes reported model names (the records keep usage only).

    The batch retries, paces and logs progress itself, so the operator creates it with one try per call and
    without the per-call log line. It also notes the client request id of every request it posts (fallbacks'
    ``:f<n>`` and re-asks' ``:v<n>`` included), which the billing reconciliation looks up.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers = 0
        self.models: dict[str, None] = {}  # the reported model names, an ordered set
        self.sent_request_ids: dict[str, None] = {}
        """The client request ids of the requests posted (an ordered set)."""

    async def asend_chat(self, call: PreparedChat) -> ChatCompletionResult:
        result = await super().asend_chat(call)
        self.answers += 1
        self.models.setdefault(result.model)
        return result

    async def _apost(
        self,
        path: str,
        call: Call,
        parse: Callable[[httpx.Response, Call, float], R],
        finish: Callable[[R, int], R],
    ) -> R:
        try:
            result = await super()._apost(path, call, parse, finish)
        except (AimlDailyBudgetError, AimlLimitStoreError):
            raise  # refused by the connection's limits before anything was sent
        except BaseException:
            self.sent_request_ids.setdefault(call.client_request_id)  # sent, perhaps billed (a timeout)
            raise
        self.sent_request_ids.setdefault(call.client_request_id)
        return result

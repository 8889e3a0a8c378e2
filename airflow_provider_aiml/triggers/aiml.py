"""``AimlChatTrigger``: makes a chat-completion call in the triggerer, so a deferred task holds no worker slot.

The trigger's serialized form holds the connection id, never the key: the triggerer reads the connection
itself. The call goes through the same hook, so validation, retries and error handling are those of a direct
call; errors travel back as an event and are raised again, with their type, in the resumed task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aiml import exceptions
from airflow_provider_aiml.exceptions import AimlApiError
from airflow_provider_aiml.models import ChatCompletionResult

_ERROR_FIELDS = ("status_code", "client_request_id", "api_request_id", "inference_id", "retry_after")


class AimlChatTrigger(BaseTrigger):
    """Runs one chat completion on the async client and fires one event with its result or its error."""

    def __init__(
        self,
        *,
        aiml_conn_id: str,
        messages: Sequence[Mapping[str, Any]],
        model: str | None = None,
        client_request_id: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        resume_state: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.resume_state = dict(resume_state or {})
        """What the resumed task needs besides the result; echoed back in the event (JSON-able, no secrets)."""
        self.aiml_conn_id = aiml_conn_id
        self.messages = [dict(message) for message in messages]
        self.model = model
        self.client_request_id = client_request_id
        self.extra_body = dict(extra_body) if extra_body is not None else None
        self.params = params

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aiml_conn_id": self.aiml_conn_id,
                "messages": self.messages,
                "model": self.model,
                "client_request_id": self.client_request_id,
                "extra_body": self.extra_body,
                "resume_state": self.resume_state,
                **self.params,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_aiml.hooks.aiml import AimlApiHook

        hook = AimlApiHook(aiml_conn_id=self.aiml_conn_id)
        try:
            result = await hook.achat_completion(
                self.messages,
                model=self.model,
                client_request_id=self.client_request_id,
                extra_body=self.extra_body,
                **self.params,
            )
            payload = result.model_dump(mode="json", exclude={"raw"})
            yield TriggerEvent({"status": "success", "result": payload, **self._echo()})
        except AimlApiError as error:
            yield TriggerEvent({"status": "error", "error": error_to_event(error), **self._echo()})
        except Exception as error:  # anything else must still reach the task rather than kill the trigger
            unexpected = AimlApiError(f"The deferred call failed unexpectedly: {type(error).__name__}")
            yield TriggerEvent({"status": "error", "error": error_to_event(unexpected), **self._echo()})
        finally:
            await hook.aclose()

    def _echo(self) -> dict[str, Any]:
        echo: dict[str, Any] = {"resume_state": self.resume_state}
        if self.resume_state.get("echo_messages"):
            echo["messages"] = self.messages
        return echo


def error_to_event(error: AimlApiError) -> dict[str, Any]:
    """A JSON-able description of a provider error, to raise it again after the trigger fired."""
    return {"type": type(error).__name__, "message": error.message, **{f: getattr(error, f) for f in _ERROR_FIELDS}}


def result_from_event(event: Mapping[str, Any]) -> ChatCompletionResult:
    """The result a trigger event carries; a failed call is raised again as the provider's own error type."""
    if event.get("status") == "success":
        return ChatCompletionResult.model_validate(event["result"])
    error = event.get("error") or {}
    error_type = getattr(exceptions, str(error.get("type")), None)
    if not (isinstance(error_type, type) and issubclass(error_type, AimlApiError)):
        error_type = AimlApiError
    raise error_type(
        str(error.get("message") or f"The deferred AI/ML API call failed: {event!r}"),
        **{field: error.get(field) for field in _ERROR_FIELDS},
    )

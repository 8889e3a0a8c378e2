"""``@task.aiml``: write the prompt as a Python function.

The function returns the prompt string (or a message list); the task asks the model and returns the answer
text, or the validated object when ``output_type`` is given. ``reasoning``, ``usage`` and ``response`` are pushed
as XCom keys as with the operator. Works with ``.expand()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call, _take_prompt, decorated_renderers, decorated_template_fields
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.models import ChatCompletionResult


class _AimlDecoratedOperator(DecoratedOperator, AimlChatCompletionOperator):
    """Runs the decorated function for the prompt, then asks the model like the chat operator."""

    template_fields: Sequence[str] = decorated_template_fields(AimlChatCompletionOperator)
    template_fields_renderers: ClassVar[dict[str, str]] = decorated_renderers(AimlChatCompletionOperator)
    custom_operator_name = "@task.aiml"
    overwrite_rtif_after_execution = True
    resume_with_messages = True  # the prompt came from the function: a resumed task cannot rebuild it

    def execute(self, context: Context) -> Any:
        _take_prompt(self, _call(self, context), self.custom_operator_name)
        return super().execute(context)

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """The answer text, or the validated object when ``output_type`` is set."""
        return parsed if self.output_type is not None else result.content


def aiml_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns a prompt (or messages) into an AI/ML API chat task: ``@task.aiml(...)``."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AimlDecoratedOperator,
        prompt=SET_DURING_EXECUTION,  # the function gives it when the task runs
        **kwargs,
    )

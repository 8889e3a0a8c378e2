"""``@task.aiml``: write the prompt as a Python function.

The function returns the prompt string (or a message list); the task asks the model and returns the answer
text, or the validated object when ``output_type`` is given. ``reasoning``, ``usage`` and ``response`` are pushed
as XCom keys as with the operator. Works with ``.expand()``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.models import ChatCompletionResult


class _AimlDecoratedOperator(DecoratedOperator, AimlChatCompletionOperator):
    """Runs the decorated function for the prompt, then asks the model like the chat operator."""

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *AimlChatCompletionOperator.template_fields)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **AimlChatCompletionOperator.template_fields_renderers,
    }
    custom_operator_name = "@task.aiml"
    overwrite_rtif_after_execution = True
    resume_with_messages = True  # the prompt came from the function: a resumed task cannot rebuild it

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            prompt=SET_DURING_EXECUTION,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        from airflow_provider_aiml.exceptions import AimlParameterError

        produced = _call(self, context)
        if isinstance(produced, str) and produced.strip():
            self.prompt, self.messages = produced, None
        elif isinstance(produced, list | tuple) and produced:
            self.prompt, self.messages = None, list(produced)
        else:
            raise AimlParameterError(
                f"A @task.aiml function must return a prompt string or a list of messages, got {produced!r:.80}"
            )
        return super().execute(context)

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """The answer text, or the validated object when ``output_type`` is set."""
        return parsed if self.output_type is not None else result.content


def aiml_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns a prompt (or messages) into an AI/ML API chat task: ``@task.aiml(...)``."""
    return task_decorator_factory(
        python_callable=python_callable, decorated_operator_class=_AimlDecoratedOperator, **kwargs
    )

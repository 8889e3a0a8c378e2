"""``@task.aiml_batch``: write the records as a Python function.

The function returns the records; the task runs the batch operator over them with the ``prompt``/``messages``
template given to the decorator (``"{{ record }}"`` when neither is given).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call, decorated_renderers, decorated_template_fields
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AimlBatchDecoratedOperator(DecoratedOperator, AimlBatchChatCompletionOperator):
    """Runs the decorated function for the records, then enriches them like the batch operator."""

    template_fields: Sequence[str] = decorated_template_fields(AimlBatchChatCompletionOperator)
    template_fields_renderers: ClassVar[dict[str, str]] = decorated_renderers(AimlBatchChatCompletionOperator)
    custom_operator_name = "@task.aiml_batch"
    overwrite_rtif_after_execution = True

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("prompt") is None and kwargs.get("messages") is None:
            kwargs["prompt"] = "{{ record }}"
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            inputs=SET_DURING_EXECUTION,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        self.inputs = _call(self, context)
        return super().execute(context)


def aiml_batch_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns records into an AI/ML API batch task: ``@task.aiml_batch(prompt=...)``."""
    return task_decorator_factory(
        python_callable=python_callable, decorated_operator_class=_AimlBatchDecoratedOperator, **kwargs
    )

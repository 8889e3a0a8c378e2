"""``@task.aiml_branch``: write the question that picks the branch as a Python function.

The function returns the prompt string (or a message list); the model chooses among the task's downstream tasks
like :class:`~airflow_provider_aiml.operators.branch.AimlBranchOperator`, and Airflow skips the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call, _take_prompt, decorated_renderers, decorated_template_fields
from airflow_provider_aiml.operators.branch import AimlBranchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AimlBranchDecoratedOperator(DecoratedOperator, AimlBranchOperator):
    """Runs the decorated function for the question, then lets the model choose the branch."""

    template_fields: Sequence[str] = decorated_template_fields(AimlBranchOperator)
    template_fields_renderers: ClassVar[dict[str, str]] = decorated_renderers(AimlBranchOperator)
    custom_operator_name = "@task.aiml_branch"
    overwrite_rtif_after_execution = True
    resume_with_messages = True  # the prompt came from the function: a resumed task cannot rebuild it

    def execute(self, context: Context) -> Any:
        _take_prompt(self, _call(self, context), self.custom_operator_name)
        return super().execute(context)


def aiml_branch_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns a question into a model-chosen branch: ``@task.aiml_branch(choices=...)``."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AimlBranchDecoratedOperator,
        prompt=SET_DURING_EXECUTION,  # the function gives it when the task runs
        **kwargs,
    )

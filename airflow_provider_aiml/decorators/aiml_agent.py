"""``@task.aiml_agent``: write the agent's question as a Python function.

The function returns the prompt string (or a message list); the task runs the agent loop like
:class:`~airflow_provider_aiml.operators.agent.AimlAgentOperator` with the ``tools`` given to the decorator and
returns the final answer, or the validated object when ``output_type`` is given. ``steps``, ``reasoning`` and
``usage`` are pushed as XCom keys as with the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call, _take_prompt, decorated_renderers, decorated_template_fields
from airflow_provider_aiml.operators.agent import AimlAgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.models import ChatCompletionResult


class _AimlAgentDecoratedOperator(DecoratedOperator, AimlAgentOperator):
    """Runs the decorated function for the question, then runs the agent loop."""

    template_fields: Sequence[str] = decorated_template_fields(AimlAgentOperator)
    template_fields_renderers: ClassVar[dict[str, str]] = decorated_renderers(AimlAgentOperator)
    custom_operator_name = "@task.aiml_agent"
    overwrite_rtif_after_execution = True

    def execute(self, context: Context) -> Any:
        _take_prompt(self, _call(self, context), self.custom_operator_name)
        return super().execute(context)

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """The final answer, or the validated object when ``output_type`` is set."""
        return parsed if self.output_type is not None else result.content


def aiml_agent_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns a question into an agent task: ``@task.aiml_agent(tools=[...])``."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AimlAgentDecoratedOperator,
        prompt=SET_DURING_EXECUTION,  # the function gives it when the task runs
        **kwargs,
    )

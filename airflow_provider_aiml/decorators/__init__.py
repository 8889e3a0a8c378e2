"""TaskFlow decorators: ``@task.aiml``, ``@task.aiml_batch``, ``@task.aiml_embed``, ``@task.aiml_agent`` and
``@task.aiml_branch``.

Each is its own module, so a DAG file using one does not load the other's operator when it is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.decorator import DecoratedOperator, determine_kwargs
from airflow.sdk.definitions.context import context_merge

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context


def _call(operator: DecoratedOperator, context: Context) -> Any:
    context_merge(context, operator.op_kwargs)
    kwargs = determine_kwargs(operator.python_callable, operator.op_args, context)
    return operator.python_callable(*operator.op_args, **kwargs)


def _take_prompt(operator: Any, produced: Any, decorator: str) -> None:
    """Set the operator's ``prompt`` (a string) or ``messages`` (a list) from what the decorated function returned."""
    from airflow_provider_aiml.exceptions import AimlParameterError

    if isinstance(produced, str) and produced.strip():
        operator.prompt, operator.messages = produced, None
    elif isinstance(produced, list | tuple) and produced:
        operator.prompt, operator.messages = None, list(produced)
    else:
        raise AimlParameterError(
            f"A {decorator} function must return a prompt string or a list of messages, got {produced!r:.80}"
        )


def decorated_template_fields(operator: type[BaseOperator]) -> tuple[str, ...]:
    """The template fields of a decorated ``operator``: the decorator's own, then the operator's."""
    return (*DecoratedOperator.template_fields, *operator.template_fields)


def decorated_renderers(operator: type[BaseOperator]) -> dict[str, str]:
    """How the UI renders those fields."""
    return {**DecoratedOperator.template_fields_renderers, **operator.template_fields_renderers}

"""TaskFlow decorators: ``@task.aiml`` (:mod:`.aiml`) and ``@task.aiml_batch`` (:mod:`.aiml_batch`).

Each is its own module, so a DAG file using one does not load the other's operator when it is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.decorator import DecoratedOperator, determine_kwargs
from airflow.sdk.definitions.context import context_merge

if TYPE_CHECKING:
    from airflow.sdk import Context


def _call(operator: DecoratedOperator, context: Context) -> Any:
    context_merge(context, operator.op_kwargs)
    kwargs = determine_kwargs(operator.python_callable, operator.op_args, context)
    return operator.python_callable(*operator.op_args, **kwargs)

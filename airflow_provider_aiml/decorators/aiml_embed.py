"""``@task.aiml_embed``: write the texts to embed as a Python function.

The function returns the texts (or files: a glob, a storage URL, a list of paths); the task embeds them like
:class:`~airflow_provider_aiml.operators.embedding.AimlEmbeddingOperator` and returns the vectors (or, with
``output_path``, the manifest of the file they were written to).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider_aiml.decorators import _call, decorated_renderers, decorated_template_fields
from airflow_provider_aiml.operators.embedding import AimlEmbeddingOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AimlEmbedDecoratedOperator(DecoratedOperator, AimlEmbeddingOperator):
    """Runs the decorated function for the texts, then embeds them."""

    template_fields: Sequence[str] = decorated_template_fields(AimlEmbeddingOperator)
    template_fields_renderers: ClassVar[dict[str, str]] = decorated_renderers(AimlEmbeddingOperator)
    custom_operator_name = "@task.aiml_embed"
    overwrite_rtif_after_execution = True

    def execute(self, context: Context) -> Any:
        self.inputs = _call(self, context)
        return super().execute(context)


def aiml_embed_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function that returns texts into an AI/ML API embeddings task: ``@task.aiml_embed(model=...)``."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AimlEmbedDecoratedOperator,
        inputs=SET_DURING_EXECUTION,  # the function gives it when the task runs
        **kwargs,
    )

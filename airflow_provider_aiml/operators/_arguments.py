"""Checks of the operators' plain (non-templated) arguments, made when the operator is created.

An operator is created when its DAG file is parsed, so a literal ``temperature=5`` or ``stream="no"`` fails the
DAG's import with a clear message instead of a task run hours later; the same checks run again when the task
runs (the worker parses the file too, and mapped tasks get their values then). These checks import nothing
heavy: a DAG file is parsed again and again. Templated values are checked in ``execute()``, once rendered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from airflow_provider_aiml.parameters import literal_parameter_problem


def check_generation_arguments(operator: Any, names: Iterable[str]) -> None:
    """Raise naming the first generation parameter of ``operator`` (by API name) whose literal value is wrong."""
    for name in names:
        problem = literal_parameter_problem(name, getattr(operator, name, None))
        if problem is not None:
            raise_parameter_error(operator, problem)


def check_model_list(operator: Any, name: str) -> None:
    """An optional list of model ids (``fallback_models``): not a single string, no empty ids."""
    value = getattr(operator, name)
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise_parameter_error(operator, f"{name!r} must be a list of model ids, got {value!r}")
    for model in value:
        if not isinstance(model, str) or not model.strip():
            raise_parameter_error(operator, f"{name!r} must hold model ids (non-empty strings), got {model!r}")


def check_flag(operator: Any, name: str, *, optional: bool = False) -> None:
    """A switch must be ``True`` or ``False`` (``"no"`` is truthy; it would turn the switch on)."""
    value = getattr(operator, name)
    if isinstance(value, bool) or (optional and value is None):
        return
    allowed = "True, False or None" if optional else "True or False"
    raise_parameter_error(operator, f"{name!r} must be {allowed}, got {value!r}")


def check_count(operator: Any, name: str, *, minimum: int = 0) -> None:
    """A count must be a whole number (not a bool, not ``2.0``) of at least ``minimum``."""
    value = getattr(operator, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise_parameter_error(operator, f"{name!r} must be a whole number >= {minimum}, got {value!r}")


def check_positive(operator: Any, name: str, *, whole: bool = False, optional: bool = True) -> None:
    """A limit must be a number > 0 (a whole one when ``whole``); ``None`` means no limit when ``optional``."""
    value = getattr(operator, name)
    if value is None and optional:
        return
    kind = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise_parameter_error(operator, f"{name!r} must be a {'whole ' if whole else ''}number > 0, got {value!r}")


def check_media_arguments(operator: Any) -> None:
    """The file-fitting limits and PDF settings of an operator (``pages`` syntax is checked when it runs)."""
    for name in ("max_image_pixels", "max_image_bytes", "max_pages"):
        check_positive(operator, name, whole=True)
    check_positive(operator, "pdf_dpi")
    if operator.pdf_text not in ("auto", "only", "never"):
        raise_parameter_error(operator, f"'pdf_text' must be 'auto', 'only' or 'never', got {operator.pdf_text!r}")


def raise_parameter_error(operator: Any, problem: str) -> NoReturn:
    """Raise :class:`AimlParameterError` with ``problem``, naming the task."""
    from airflow_provider_aiml.exceptions import AimlParameterError  # loaded only when there is a problem

    task_id = getattr(operator, "task_id", None)
    raise AimlParameterError(f"Task {task_id!r}: {problem}" if task_id else problem)

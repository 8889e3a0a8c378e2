"""``AimlBranchOperator``: the model chooses which downstream task(s) run; Airflow skips the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BranchMixIn

from airflow_provider_aiml.operators._arguments import check_flag
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import BaseModel

    from airflow_provider_aiml.models import ChatCompletionResult


class AimlBranchOperator(AimlChatCompletionOperator, BranchMixIn):
    """Ask the model which branch of the DAG runs next.

    The choices are the task's direct downstream task ids, or the ``choices`` given (a subset of them, each
    with a description the model reads). They are sent as a strict ``json_schema`` whose ``choice`` is an enum
    of the ids, with a ``reason``; the chosen task runs and Airflow's branching skips the other downstream
    tasks. An answer outside the choices is shown to the model and asked again (``max_validation_retries``,
    default 1), then fails the task.

    XCom: ``return_value`` is the chosen task id (a list with ``allow_multiple``), ``choice`` the same,
    ``reason`` the model's reason, and ``reasoning``, ``usage``, ``content``, ``response`` and ``parsed`` as for
    the chat operator.

    :param choices: the downstream task ids the model may choose, as a list or as ``{task_id: description}``;
        every direct downstream task when not given.
    :param allow_multiple: let the model choose one or more branches.

    Every other argument is the chat operator's
    (:class:`~airflow_provider_aiml.operators.chat.AimlChatCompletionOperator`), except ``response_format`` and
    ``output_type``, which the choices define.
    """

    inherits_from_skipmixin = True
    ui_color = "#fef7e0"

    def __init__(
        self,
        *,
        choices: Sequence[str] | Mapping[str, str] | None = None,
        allow_multiple: bool = False,
        max_validation_retries: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_validation_retries=max_validation_retries, **kwargs)
        self.choices = choices
        self.allow_multiple = allow_multiple
        self._branch_context: Context | None = None
        """The running task's context, for :meth:`return_value` to branch with."""
        check_flag(self, "allow_multiple")

    def check_arguments(self) -> None:
        super().check_arguments()
        if hasattr(self, "allow_multiple"):  # the chat operator checks before this class's fields are set
            check_flag(self, "allow_multiple")

    def execute(self, context: Context) -> Any:
        self.output_type, self._branch_context = self.choice_model(), context
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        self.output_type, self._branch_context = self.choice_model(), context
        return super().execute_complete(context, event)

    def choice_model(self) -> type[BaseModel]:
        """The answer's shape: ``choice`` (or ``choices``) among the branches, and ``reason``."""
        from pydantic import Field, create_model

        from airflow_provider_aiml.exceptions import AimlParameterError

        if self.response_format is not None or self.output_type is not None:
            raise AimlParameterError(
                f"Task {self.task_id!r}: response_format and output_type cannot be set on a branch task; the "
                "choices define the answer's shape"
            )
        described = self._described_choices()
        choice = Literal[tuple(described)]  # type: ignore[valid-type]
        menu = "; ".join(f"{task_id}: {text}" if text else task_id for task_id, text in described.items())
        if self.allow_multiple:
            field: Any = (list[choice], Field(min_length=1, description=f"The branches to run, among: {menu}"))  # type: ignore[valid-type]
            return create_model("BranchChoices", choices=field, reason=(str, Field(description="Why, briefly")))
        field = (choice, Field(description=f"The branch to run, one of: {menu}"))
        return create_model("BranchChoice", choice=field, reason=(str, Field(description="Why, briefly")))

    def _described_choices(self) -> dict[str, str]:
        from airflow_provider_aiml.exceptions import AimlParameterError

        downstream = sorted(self.downstream_task_ids)
        if self.choices is None:
            described = dict.fromkeys(downstream, "")
        elif isinstance(self.choices, Mapping):
            described = {str(task_id): str(text) for task_id, text in self.choices.items()}
        else:
            described = dict.fromkeys((str(task_id) for task_id in self.choices), "")
        if not described:
            raise AimlParameterError(f"Task {self.task_id!r} has no downstream tasks to choose from")
        unknown = sorted(set(described) - set(downstream))
        if unknown:
            raise AimlParameterError(
                f"Task {self.task_id!r}: choices {unknown} are not direct downstream tasks of it (those are "
                f"{downstream})"
            )
        return described

    def return_value(self, result: ChatCompletionResult, parsed: Any) -> Any:
        """Branch to the chosen task(s); push ``choice`` and ``reason``."""
        assert self._branch_context is not None  # set by execute / execute_complete
        chosen = parsed["choices"] if self.allow_multiple else parsed["choice"]
        if self.do_xcom_push:
            ti = self._branch_context["ti"]
            ti.xcom_push(key="choice", value=chosen)
            ti.xcom_push(key="reason", value=parsed["reason"])
        self.log.info("The model chose %s: %s", chosen, parsed["reason"])
        return self.do_branch(self._branch_context, chosen)

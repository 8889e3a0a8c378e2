"""``AimlApprovalOperator``: a person approves, edits or rejects a model's answer in the Airflow UI.

Built on the standard provider's human-in-the-loop :class:`ApprovalOperator` (Airflow 3.1+): the task waits
for a response in Airflow's own "Required actions" view, with the answer shown and editable in the form.
A separate task rather than a flag on the AI operators: the wait is a state of its own in Airflow, and a
person deciding must never make the model be asked (and billed) again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

if TYPE_CHECKING:
    from airflow.sdk import Context

OnTimeout = Literal["reject", "approve", "fail"]


class AimlApprovalOperator(ApprovalOperator):
    """Wait for a person to approve (possibly after editing), or reject, an answer before it goes downstream.

    XCom: ``return_value`` and ``content`` hold the approved text (the edited one when the reviewer changed
    it), ``model_content`` the model's original, ``edited`` whether they differ, ``comment`` the reviewer's
    comment and ``reviewed_by`` who responded. A rejection skips the downstream tasks, or fails this task with
    ``on_reject="fail"``; the comment is logged either way.

    :param content: the answer to review, usually an upstream task's XCom
        (``"{{ ti.xcom_pull(task_ids='write') }}"``). Templated.
    :param subject: the headline shown to the reviewer. Templated.
    :param body: Markdown shown above the form; the answer itself when not given. Templated.
    :param allow_edit: offer the answer as an editable field, so the reviewer can correct it before approving.
    :param on_reject: ``"skip"`` (default): skip the downstream tasks; ``"fail"``: fail this task.
    :param on_timeout: what ``response_timeout`` passing means: ``"reject"`` (default: nothing unreviewed goes
        on), ``"approve"``, or ``"fail"``.
    :param response_timeout: how long to wait for a response; forever when not given.
    """

    template_fields: Sequence[str] = ("subject", "body", "content")
    template_fields_renderers = {"content": "md", "body": "md"}
    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        content: str,
        subject: str = "Review the model's answer",
        body: str | None = None,
        allow_edit: bool = True,
        on_reject: Literal["skip", "fail"] = "skip",
        on_timeout: OnTimeout = "reject",
        response_timeout: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_aiml.exceptions import AimlParameterError

        if on_reject not in ("skip", "fail"):
            raise AimlParameterError(f"on_reject must be 'skip' or 'fail', got {on_reject!r}")
        if on_timeout not in ("reject", "approve", "fail"):
            raise AimlParameterError(f"on_timeout must be 'reject', 'approve' or 'fail', got {on_timeout!r}")
        kwargs.pop("params", None)  # the DAG's params, passed to every task; the form's fields are these:
        params: dict[str, Param] = {}
        if allow_edit:
            params["content"] = Param(
                "",
                type="string",
                format="multiline",  # a text area: the answer keeps its line breaks
                title="Answer",
                description="Edit the answer before approving, if needed.",
            )
        params["comment"] = Param("", type=["null", "string"], title="Comment", description="Why, for the log.")
        defaults = {"reject": self.REJECT, "approve": self.APPROVE, "fail": None}[on_timeout]
        super().__init__(
            subject=subject,
            body=body,
            params=params,
            defaults=defaults,
            fail_on_reject=on_reject == "fail",
            response_timeout=response_timeout,
            **kwargs,
        )
        self.content = content
        self.allow_edit = allow_edit
        self.on_reject = on_reject
        self.on_timeout = on_timeout

    def execute(self, context: Context) -> Any:
        text = self._checked_content()
        if self.body is None:
            self.body = text
        if self.allow_edit:
            self.params["content"] = text  # the form opens with the model's answer in it
        if self.do_xcom_push:
            context["ti"].xcom_push(key="model_content", value=text)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        original = self._checked_content()  # rendered again from the same upstream value when the task resumes
        answers = event.get("params_input") or {}
        comment = answers.get("comment") or ""
        chosen = (event.get("chosen_options") or [None])[0]
        reviewer = (event.get("responded_by_user") or {}).get("name")
        ti = context["ti"]
        if chosen != self.APPROVE and "error" not in event:
            self.log.warning("Rejected by %s: %s", reviewer or "the reviewer", comment or "(no comment)")
            if self.do_xcom_push:
                ti.xcom_push(key="comment", value=comment)
                ti.xcom_push(key="reviewed_by", value=reviewer)
        super().execute_complete(context, event)  # a rejection skips downstream (or fails) here
        if chosen != self.APPROVE:
            return None
        edited_text = answers.get("content") if self.allow_edit else None
        content = edited_text if isinstance(edited_text, str) and edited_text.strip() else original
        edited = content != original
        by = (reviewer or "the reviewer") if event.get("responded_by_user") else "the timeout default (on_timeout)"
        self.log.info(
            "Approved by %s%s%s",
            by,
            " after editing the answer" if edited else "",
            f": {comment}" if comment else "",
        )
        if self.do_xcom_push:
            for key, value in {
                "content": content,
                "model_content": original,
                "edited": edited,
                "comment": comment,
                "reviewed_by": reviewer,
            }.items():
                ti.xcom_push(key=key, value=value)
        return content

    def _checked_content(self) -> str:
        """The answer to review as text: a structured answer (a typed agent's dict, rendered natively) as JSON."""
        from airflow_provider_aiml.exceptions import AimlParameterError

        if isinstance(self.content, dict | list) and self.content:
            return json.dumps(self.content, indent=2, ensure_ascii=False, default=str)
        if not isinstance(self.content, str) or not self.content.strip():
            raise AimlParameterError(
                f"Task {self.task_id!r}: content must be the non-empty answer to review, got {self.content!r:.80}"
            )
        return self.content

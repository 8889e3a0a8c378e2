"""``AimlBatchChatCompletionOperator``: one model call per record, many records in one task."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from airflow_provider_aiml.operators._arguments import check_positive, raise_parameter_error
from airflow_provider_aiml.operators._base import AimlBaseOperator, reads_as_text, task_client_request_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.batch.checkpoint import Checkpoint
    from airflow_provider_aiml.batch.runner import BatchItem, BatchLimits, BatchReport, RecordOutcome
    from airflow_provider_aiml.hooks.aiml import AimlApiHook
    from airflow_provider_aiml.operators._spend import TaskSpend

T = TypeVar("T")
PROMPT_FILE_EXTENSIONS = (".j2", ".jinja2", ".txt")
OnError = Literal["fail", "continue"]


class AimlBatchChatCompletionOperator(AimlBaseOperator):
    """Enrich many records in one task: one chat completion per record, run concurrently on the async client.

    Give ``inputs`` (a list of strings or dicts, usually an upstream XCom) and either ``prompt`` (a Jinja
    template per record, or the path of a ``.j2``/``.jinja2``/``.txt`` file) or ``messages`` (a message list
    template per record). The templates see the record as ``record``, its position as ``index``, and the whole
    task context (``ds``, ``params``, ...). ``images`` is rendered per record too.

    XCom ``return_value`` is a list aligned with ``inputs``: ``{index, content, reasoning, usage, parsed?, error}``
    per record (``parsed`` when JSON is asked for). XCom ``usage`` holds the batch totals and ``batch`` the counts.

    :param inputs: the records. Templated.
    :param prompt: the per-record prompt template.
    :param messages: the per-record message list template, instead of ``prompt``.
    :param concurrency: calls in flight at most (a 429 lowers it for a while).
    :param max_requests_per_minute: start at most this many calls in any minute.
    :param max_tokens_per_minute: let at most this many tokens be used in any minute (estimated when starting
        a call, corrected by the usage reported).
    :param max_total_tokens: token budget: no new call starts once it would be passed; the task then fails
        with every result kept.
    :param max_cost_usd: cost budget in US dollars, like ``max_total_tokens``.
    :param on_error: ``"fail"``: failed records fail the task after the batch settles (results still pushed);
        ``"continue"``: failed records carry ``error`` and the task succeeds.
    :param checkpoint_path: a local path or an ``ObjectStoragePath`` URL (templated, e.g. with ``{{ run_id }}``);
        finished records are written there as they complete and a retried task skips them.
    :param progress_interval: seconds between progress lines in the task log.

    Connection, model, system prompt, response format, typed output and generation parameters are those of
    :class:`~airflow_provider_aiml.operators._base.AimlBaseOperator`.
    """

    template_fields: Sequence[str] = (
        "inputs",
        "system_prompt",
        "model",
        "response_format",
        "extra_body",
        "checkpoint_path",
    )
    template_fields_renderers = {"inputs": "json", "response_format": "json", "extra_body": "json"}
    # No template files for the task-level fields: a record such as "notes.txt" must stay a record. The
    # per-record prompt may still name a file (PROMPT_FILE_EXTENSIONS).
    template_ext: Sequence[str] = ()
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        inputs: Sequence[Any] | str,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        concurrency: int = 8,
        max_requests_per_minute: float | None = None,
        max_tokens_per_minute: float | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        on_error: OnError = "fail",
        checkpoint_path: str | None = None,
        progress_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs = inputs
        self.prompt = prompt
        self.messages = messages
        self.concurrency = concurrency
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_minute = max_tokens_per_minute
        self.max_total_tokens = max_total_tokens
        self.max_cost_usd = max_cost_usd
        self.on_error = on_error
        self.checkpoint_path = checkpoint_path
        self.progress_interval = progress_interval
        self.check_arguments()

    def check_arguments(self) -> None:
        super().check_arguments()
        check_positive(self, "concurrency", whole=True, optional=False)
        check_positive(self, "progress_interval", optional=False)
        for name in ("max_requests_per_minute", "max_tokens_per_minute", "max_cost_usd"):
            check_positive(self, name)
        check_positive(self, "max_total_tokens", whole=True)
        if self.on_error not in ("fail", "continue"):
            raise_parameter_error(self, f"'on_error' must be 'fail' or 'continue', got {self.on_error!r}")

    def make_hook(self) -> AimlApiHook:
        """A quiet hook that makes one try per call: the batch retries, paces and logs progress itself."""
        from airflow_provider_aiml.batch.hook import BatchHook
        from airflow_provider_aiml.hooks.retry import RetryPolicy

        return BatchHook(
            aiml_conn_id=self.aiml_conn_id,
            retry_policy=RetryPolicy(max_retries=0),
            log_calls=False,
            max_concurrency=self.concurrency,
        )

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_provider_aiml.batch.runner import BatchRunner
        from airflow_provider_aiml.hooks.retry import RetryPolicy

        self.check_output_settings()
        limits = self._limits()
        records = self._records()
        items = self._build_items(context, records)
        checkpoint, resumed = self._open_checkpoint(items)
        retry_policy = RetryPolicy(max_retries=self.hook.settings.max_retries)
        runner = BatchRunner(
            self.hook,
            [item for item in items if item.index not in resumed],
            total=len(items),
            call_kwargs=self._call_kwargs(),
            request_id_prefix=task_client_request_id(context),
            limits=limits,
            retry_policy=retry_policy,
            parse=self.parse_answer,
            max_validation_retries=self.max_validation_retries,
            checkpoint=checkpoint,
            resumed=resumed,
            progress_interval=self.progress_interval,
            log=self.log,
        )
        report = _run(runner.run())
        results = [outcome.to_xcom(self.wants_parsed) for outcome in report.outcomes]
        self.spend = self._spend(report)
        self._push(context, report, results, resumed=len(resumed))
        self._raise_for(report)
        return results

    # --- preparing the records ------------------------------------------------------------------------------

    def _limits(self) -> BatchLimits:
        from airflow_provider_aiml.batch.runner import BatchLimits

        return BatchLimits(
            concurrency=self.concurrency,
            requests_per_minute=self.max_requests_per_minute,
            tokens_per_minute=self.max_tokens_per_minute,
            max_total_tokens=self.max_total_tokens,
            max_cost_usd=self.max_cost_usd,
        )

    def _records(self) -> list[Any]:
        from airflow_provider_aiml.exceptions import AimlParameterError

        inputs = self.inputs
        # Airflow's lazy XCom sequences are iterable and sized but not Sequence subclasses.
        if (
            isinstance(inputs, str | bytes | Mapping)
            or not isinstance(inputs, Iterable)
            or not isinstance(inputs, Sized)
        ):
            hint = ""
            if isinstance(inputs, str):
                hint = " (a templated list renders as text unless the DAG sets render_template_as_native_obj=True)"
            raise AimlParameterError(
                f"inputs must be a list of records (strings or dicts), got {type(inputs).__name__}{hint}"
            )
        return list(inputs)

    def _build_items(self, context: Context, records: list[Any]) -> list[BatchItem]:
        """Render and check every record before the first call, naming the record that is wrong."""
        from airflow_provider_aiml.batch.runner import BatchItem
        from airflow_provider_aiml.exceptions import AimlParameterError
        from airflow_provider_aiml.hooks.building import build_chat_request, with_messages
        from airflow_provider_aiml.hooks.sizing import check_body_size
        from airflow_provider_aiml.messages import build_messages

        if (self.prompt is None) == (self.messages is None):
            raise AimlParameterError(
                "Give exactly one of 'prompt' (a per-record template) or 'messages' (a per-record message list)."
            )
        env = self.get_template_env()
        base_dirs = [self.dag.folder] if self.has_dag() else []
        params = self.generation_params()
        budget_tokens = self.max_completion_tokens or self.max_tokens or 0
        prompt_template = None if self.prompt is None else self._compile_prompt(env)
        model = self.model or self.hook.settings.model
        max_request_mb = self.hook.settings.max_request_mb
        image_folder = self.image_folder() if self.images else None
        template_body: dict[str, Any] | None = None
        items = []
        for index, record in enumerate(records):
            scope = cast("Context", {**context, "record": record, "index": index})
            try:
                prompt = None if prompt_template is None else _as_text(self._render(prompt_template, scope))
                messages = None if self.messages is None else self.render_template(self.messages, scope, env)
                images = None if self.images is None else self.render_template(self.images, scope, env)
            except Exception as error:
                raise AimlParameterError(
                    f"record {index}: the template failed to render: {type(error).__name__}: {error}"
                ) from None
            try:
                built = build_messages(
                    prompt=prompt,
                    messages=messages,
                    system_prompt=self.system_prompt,
                    images=images,
                    base_dirs=base_dirs,
                    confine_to=image_folder,
                )
                if template_body is None:  # parameters are the same for every record: check them once
                    request = build_chat_request(model, built, params, stream=False, extra_body=self.extra_body)
                    check_body_size(len(request.payload), max_request_mb)
                    body = template_body = request.body
                else:
                    body = with_messages(template_body, built, max_request_mb=max_request_mb)
                self.hook.check_context(model, body)
            except AimlParameterError as error:
                raise AimlParameterError(f"record {index}: {error.message}") from None
            fingerprint = _fingerprint(model, built, params, self.extra_body)
            # The item keeps the body's message list (not a second copy): 10,000 records should stay small.
            items.append(BatchItem(index, body["messages"], fingerprint, _estimate(built, budget_tokens), body))
        return items

    def _compile_prompt(self, env: Any) -> Any:
        """The prompt template, compiled once for all records (a file name is loaded like Airflow does)."""
        from airflow_provider_aiml.exceptions import AimlParameterError

        assert self.prompt is not None
        is_file = self.prompt.endswith(PROMPT_FILE_EXTENSIONS) and not reads_as_text(
            self.prompt, PROMPT_FILE_EXTENSIONS
        )
        try:
            return env.get_template(self.prompt) if is_file else env.from_string(self.prompt)
        except Exception as error:
            raise AimlParameterError(f"the prompt template is invalid: {type(error).__name__}: {error}") from None

    def _call_kwargs(self) -> dict[str, Any]:
        return {"model": self.model or None, "extra_body": self.extra_body, **self.generation_params()}

    def _open_checkpoint(self, items: list[BatchItem]) -> tuple[Checkpoint | None, dict[int, RecordOutcome]]:
        from airflow_provider_aiml.batch.checkpoint import Checkpoint
        from airflow_provider_aiml.batch.runner import RecordOutcome

        if not self.checkpoint_path:
            return None, {}
        checkpoint = Checkpoint(self.checkpoint_path)
        entries = checkpoint.load()
        fingerprints = {item.index: item.fingerprint for item in items}
        resumed = {
            index: RecordOutcome.from_checkpoint(entry)
            for index, entry in entries.items()
            if fingerprints.get(index) == entry.get("fingerprint")
        }
        stale = len(entries) - len(resumed)
        self.log.info(
            "Checkpoint %s: %d finished records reused%s",
            self.checkpoint_path,
            len(resumed),
            f", {stale} ignored because their record or parameters changed" if stale else "",
        )
        return checkpoint, resumed

    # --- results --------------------------------------------------------------------------------------------

    def _spend(self, report: BatchReport) -> TaskSpend:
        """What the batch spent, resumed records included (as in XCom ``usage``)."""
        from airflow_provider_aiml.batch.hook import BatchHook
        from airflow_provider_aiml.operators._spend import TaskSpend

        hook = self.hook
        models, answers = (tuple(hook.models), hook.answers) if isinstance(hook, BatchHook) else ((), 0)
        failed = len(report.failed)
        return TaskSpend(
            self.model or hook.settings.model,
            models,
            report.usage,
            calls=answers,
            records_succeeded=len(report.outcomes) - failed,
            records_failed=failed,
        )

    def _push(self, context: Context, report: BatchReport, results: list[dict[str, Any]], *, resumed: int) -> None:
        if not self.do_xcom_push:
            return
        failed = report.failed
        summary = {
            "total": len(results),
            "succeeded": len(results) - len(failed),
            "failed": len(failed),
            "not_run": sum(1 for outcome in failed if (outcome.error or "").startswith("not run")),
            "resumed": resumed,
            "requests": report.requests,
            "elapsed_s": round(report.elapsed_s, 3),
            "stop_reason": report.stop_reason,
        }
        ti = context["ti"]
        ti.xcom_push(key="usage", value=report.usage.model_dump())
        ti.xcom_push(key="batch", value=summary)
        if self._failure(report) is not None:
            ti.xcom_push(key="return_value", value=results)  # the task fails next; keep what was obtained

    def _raise_for(self, report: BatchReport) -> None:
        from airflow_provider_aiml.exceptions import AimlBatchError

        message = self._failure(report)
        if message is not None:
            raise AimlBatchError(message)

    def _failure(self, report: BatchReport) -> str | None:
        """Why the task fails after the batch settled, or ``None`` when it succeeds."""
        failed = report.failed
        done = len(report.outcomes) - len(failed)
        if report.stop_reason:
            return (
                f"Batch stopped: {report.stop_reason}. {done} of {len(report.outcomes)} records have results "
                f"(in XCom return_value); {len(failed)} have an 'error' saying why not."
            )
        if failed and self.on_error == "fail":
            first = failed[0]
            return (
                f"{len(failed)} of {len(report.outcomes)} records failed (first: record {first.index}: "
                f"{first.error}). The results of the other {done} are in XCom return_value; "
                "on_error='continue' lets the task succeed."
            )
        return None


def _as_text(rendered: Any) -> str:
    """A rendered prompt as text: a DAG rendering native objects turns "{{ record }}" into the record itself."""
    if isinstance(rendered, str):
        return rendered
    return json.dumps(rendered, ensure_ascii=False, default=str) if isinstance(rendered, dict | list) else str(rendered)


def _fingerprint(model: str | None, messages: list[dict[str, Any]], params: Mapping[str, Any], extra: Any) -> str:
    payload = json.dumps([model, messages, params, extra], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _estimate(messages: list[dict[str, Any]], completion_tokens: int) -> float:
    """A rough token count of a call (four characters a token), for the per-minute token limit."""
    chars = sum(len(json.dumps(message.get("content"), ensure_ascii=False)) for message in messages)
    return chars / 4 + completion_tokens


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the batch's event loop; in a thread of its own when the caller already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, name="aiml-batch")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def __getattr__(name: str) -> Any:
    """``AimlBatchError`` lives in :mod:`airflow_provider_aiml.exceptions`; it is still importable from here,
    loaded only when asked for (a DAG file importing the operator does not pay for the errors module)."""
    if name == "AimlBatchError":
        from airflow_provider_aiml.exceptions import AimlBatchError

        return AimlBatchError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

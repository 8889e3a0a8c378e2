"""``AimlBatchChatCompletionOperator``: one model call per record, many records in one task."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence, Sized
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from airflow_provider_aiml.operators._arguments import check_flag, check_positive, raise_parameter_error
from airflow_provider_aiml.operators._base import AimlBaseOperator, reads_as_text, task_client_request_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.batch.checkpoint import Checkpoint
    from airflow_provider_aiml.batch.costs import BatchEstimate
    from airflow_provider_aiml.batch.runner import BatchItem, BatchLimits, BatchReport, RecordOutcome
    from airflow_provider_aiml.catalog.entry import ModelEntry
    from airflow_provider_aiml.catalog.pricing import CostEstimate
    from airflow_provider_aiml.catalog.profile import ModelProfile
    from airflow_provider_aiml.hooks.aiml import AimlApiHook, PreparedChat
    from airflow_provider_aiml.media.attachments import MediaOptions
    from airflow_provider_aiml.operators._spend import TaskSpend
    from airflow_provider_aiml.storage import StoredFile

T = TypeVar("T")
FILE_TOKENS_ESTIMATE = 1_500
"""What a file record's attachment is taken to cost before it is read (a page image is about 1,000 tokens), for
the per-minute token limit and the first calls under a token budget."""
PROMPT_FILE_EXTENSIONS = (".j2", ".jinja2", ".txt")
OnError = Literal["fail", "continue"]


class AimlBatchChatCompletionOperator(AimlBaseOperator):
    """Enrich many records in one task: one chat completion per record, run concurrently on the async client.

    Give ``inputs`` (a list of strings or dicts, usually an upstream XCom; or files: see below) and either
    ``prompt`` (a Jinja
    template per record, or the path of a ``.j2``/``.jinja2``/``.txt`` file) or ``messages`` (a message list
    template per record). The templates see the record as ``record``, its position as ``index``, and the whole
    task context (``ds``, ``params``, ...). ``images`` is rendered per record too.

    **Files as records.** ``inputs`` may name files instead: a glob (``"s3://bucket/invoices/2026-12-*/*.pdf"``,
    ``"/data/scans/**/*.png"``), one path or URL, or a list of ``ObjectStoragePath`` values, ``pathlib`` paths or
    storage URLs. The files are listed (or looked up) when the task runs, sorted, and every one is checked to
    exist and be readable before the first call. In the templates ``record`` is the file: ``{{ record }}`` is
    its URL, ``{{ record.name }}``, ``{{ record.stem }}`` and ``{{ record.suffix }}`` its name's parts. The file
    is attached to the record's prompt (an image fitted, a PDF as its pages), read and rendered while other
    records' calls are in flight; a file that turns out unreadable fails its record only.

    XCom ``return_value`` is a list aligned with ``inputs``: ``{index, content, reasoning, usage, parsed?, error}``
    per record (``parsed`` when JSON is asked for; ``source`` too for files). XCom ``usage`` holds the batch totals
    and ``batch`` the counts. With ``output_path`` the results go to a JSON Lines file instead and
    ``return_value`` is a small manifest ``{path, records, succeeded, failed, usage}``.

    :param inputs: the records, or the files. Templated.
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
    :param output_path: a local path or object-storage URL (templated) to write the results to as JSON Lines,
        one line per record in input order; finished records are also written as they complete to
        ``<output_path>.progress.jsonl`` (the checkpoint, unless ``checkpoint_path`` names another), so a retried
        task asks only what is missing and rewrites the same file.
    :param max_files: file inputs beyond this many fail the task before any call (default 10,000).
    :param dry_run: render and check every record as a real run would (files are read and rendered too), log
        and return the cost estimate (XCom ``estimate``), and send nothing: no call, no checkpoint, no output.
    :param reconcile_billing: once the batch ends, read what the API billed for the calls it sent
        (``GET /v2/logs``) and add it to XCom ``usage`` (``billed_usd``, ...), logging the difference with the
        cost the answers reported. Its own failure is logged and never fails the task.
    :param reconcile_timeout: seconds to keep reading the logs while some calls have no row yet (charges are
        written after the answer; default 60).

    Before the first call the task logs the cost estimate of the records to run, from the catalog's price of the
    model; with ``max_cost_usd`` a batch whose low estimate already passes it fails before anything is sent.

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
        "output_path",
    )
    template_fields_renderers = {"inputs": "json", "response_format": "json", "extra_body": "json"}
    # No template files for the task-level fields: a record such as "notes.txt" must stay a record. The
    # per-record prompt may still name a file (PROMPT_FILE_EXTENSIONS).
    template_ext: Sequence[str] = ()
    ui_color = "#e8f0fe"
    FILE_FIELDS: Sequence[str] = ("images", "inputs")

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
        output_path: str | None = None,
        max_files: int = 10_000,
        dry_run: bool = False,
        reconcile_billing: bool = False,
        reconcile_timeout: float = 60.0,
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
        self.output_path = output_path
        self.max_files = max_files
        self.dry_run_only = dry_run
        """``dry_run`` (kept under another name: ``BaseOperator.dry_run()`` is Airflow's template-rendering check)."""
        self.reconcile_billing = reconcile_billing
        self.reconcile_timeout = reconcile_timeout
        self.template_call: PreparedChat | None = None
        """The first record's checked call; every record's call is built from it (its fallbacks too)."""
        self._profiles: list[ModelProfile] = []
        self.check_arguments()

    def check_arguments(self) -> None:
        super().check_arguments()
        check_positive(self, "concurrency", whole=True, optional=False)
        check_positive(self, "progress_interval", optional=False)
        for name in ("max_requests_per_minute", "max_tokens_per_minute", "max_cost_usd"):
            check_positive(self, name)
        check_positive(self, "max_total_tokens", whole=True)
        check_positive(self, "max_files", whole=True, optional=False)
        if self.on_error not in ("fail", "continue"):
            raise_parameter_error(self, f"'on_error' must be 'fail' or 'continue', got {self.on_error!r}")
        if not isinstance(self.dry_run_only, bool):
            raise_parameter_error(self, f"'dry_run' must be True or False, got {self.dry_run_only!r}")
        check_flag(self, "reconcile_billing")
        timeout = self.reconcile_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < float("inf"):
            raise_parameter_error(self, f"'reconcile_timeout' must be a number of seconds >= 0, got {timeout!r}")

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

    def execute(self, context: Context) -> Any:
        from airflow_provider_aiml.batch.runner import BatchRunner
        from airflow_provider_aiml.hooks.retry import RetryPolicy

        self.check_output_settings()
        limits = self._limits()
        files = self._files()
        if files is None:
            items = self._build_items(context, self._records())
        elif files:
            items = self._build_file_items(context, files)
        else:
            self.log.info("The inputs %r match no files: nothing to do", self.inputs)
            items = []
        if self.dry_run_only:
            return self._dry_run(context, items)
        checkpoint, resumed = self._open_checkpoint(items)
        pending = [item for item in items if item.index not in resumed]
        if pending:
            self._check_estimate(self._estimate(pending, resumed), resumed, dry_run=False)
        retry_policy = RetryPolicy(max_retries=self.hook.settings.max_retries)
        runner = BatchRunner(
            self.hook,
            pending,
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
            template=self.template_call,
        )
        started_at = datetime.now(UTC)
        report = run_coroutine(runner.run())
        results = [outcome.to_xcom(self.wants_parsed) for outcome in report.outcomes]
        self.spend = self._spend(report)
        returned: Any = results
        billed: dict[str, Any] | None = None
        try:
            if self.output_path:
                returned = self._write_output(results, report)
        finally:  # the results and the spend are pushed even when writing the output failed
            if self.reconcile_billing:
                billed = self._reconcile(report, started_at)
                if isinstance(returned, dict):
                    returned["usage"] = {**returned["usage"], **billed}
            self._push(context, report, returned, resumed=len(resumed), billed=billed)
        self._raise_for(report)
        return returned

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
                hint = (
                    " (a templated list renders as text unless the DAG sets render_template_as_native_obj=True; "
                    "to take files, give a storage URL or an absolute path, either may be a glob)"
                )
            raise AimlParameterError(
                f"inputs must be a list of records (strings or dicts), got {type(inputs).__name__}{hint}"
            )
        return list(inputs)

    def _build_items(self, context: Context, records: list[Any]) -> list[BatchItem]:
        """Render and check every record before the first call, naming the record that is wrong."""
        from airflow_provider_aiml.batch.runner import BatchItem
        from airflow_provider_aiml.exceptions import AimlParameterError
        from airflow_provider_aiml.hooks.building import with_messages
        from airflow_provider_aiml.messages import build_messages

        if (self.prompt is None) == (self.messages is None):
            raise AimlParameterError(
                "Give exactly one of 'prompt' (a per-record template) or 'messages' (a per-record message list)."
            )
        env = self.get_template_env()
        params = self.generation_params()
        budget_tokens = self.max_completion_tokens or self.max_tokens or 0
        prompt_template = None if self.prompt is None else self._compile_prompt(env)
        model = self.model or self.hook.settings.model
        max_request_mb = self.hook.settings.max_request_mb
        media = self.media_options() if self.images else None
        template_body: dict[str, Any] | None = None
        items = []
        for index, record in enumerate(records):
            scope = cast("Context", {**context, "record": record, "index": index})
            try:
                prompt, messages, images = self._render_record(prompt_template, env, scope)
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
                    media=media,
                )
                if template_body is None:  # parameters are the same for every record: check them once
                    self.template_call = self._template(model, built, params)
                    body = template_body = self.template_call.body
                else:
                    body = with_messages(template_body, built, max_request_mb=max_request_mb)
                    self._check_record(body["messages"])
                self.hook.check_context(model, body)
            except AimlParameterError as error:
                raise AimlParameterError(f"record {index}: {error.message}") from None
            fingerprint = _fingerprint(model, built, params, self.extra_body)
            # The item keeps the body's message list (not a second copy): 10,000 records should stay small.
            items.append(BatchItem(index, body["messages"], fingerprint, _estimate(built, budget_tokens), body))
        return items

    def _files(self) -> list[StoredFile] | None:
        """The input files when ``inputs`` names files (a glob, a path or URL, a list of paths), else ``None``."""
        from airflow_provider_aiml.storage import expand_inputs, is_file_reference, is_object_storage_path

        inputs: Any = self.inputs
        if isinstance(inputs, str):
            if not _names_files(inputs):
                return None
        elif not (is_object_storage_path(inputs) or isinstance(inputs, os.PathLike)):
            if not isinstance(inputs, Iterable) or isinstance(inputs, Mapping) or not isinstance(inputs, Sized):
                return None
            inputs = list(inputs)
            if not inputs or not all(is_file_reference(value) for value in inputs):
                return None
        files = expand_inputs(inputs, conn_id=self.storage_conn_id, max_files=self.max_files)
        self._confine(files)
        if files:
            size = sum(file.size or 0 for file in files)
            self.log.info("Inputs: %d files, %.1f MB in all (%s ... %s)", len(files), size / 1e6, files[0], files[-1])
        return files

    def _confine(self, files: list[StoredFile]) -> None:
        """Local input files named by a templated value must lie in the DAG folder (see ``file_folder``)."""
        from airflow_provider_aiml.storage import confine_local_files

        confine_local_files(
            files,
            self.file_folder("inputs"),
            setting="confine_images_to_dag_folder=False on the task or its connection",
        )

    def _build_file_items(self, context: Context, files: list[StoredFile]) -> list[BatchItem]:
        """Render and check every file record's prompt before the first call; the files themselves are read and
        rendered later, one record at a time, while other records' calls are in flight."""
        from airflow_provider_aiml.batch.runner import BatchItem
        from airflow_provider_aiml.exceptions import AimlParameterError
        from airflow_provider_aiml.hooks.building import with_messages
        from airflow_provider_aiml.messages import build_messages

        if (self.prompt is None) == (self.messages is None):
            raise AimlParameterError(
                "Give exactly one of 'prompt' (a per-record template) or 'messages' (a per-record message list)."
            )
        if self.messages is not None and self.images is not None:
            raise AimlParameterError("'images' only applies to 'prompt'; with 'messages', put them in the list.")
        env = self.get_template_env()
        params = self.generation_params()
        budget_tokens = self.max_completion_tokens or self.max_tokens or 0
        prompt_template = None if self.prompt is None else self._compile_prompt(env)
        model = self.model or self.hook.settings.model
        max_request_mb = self.hook.settings.max_request_mb
        media = self.media_options()
        template_body: dict[str, Any] | None = None
        items = []
        for index, file in enumerate(files):
            scope = cast("Context", {**context, "record": file, "index": index})
            try:
                prompt, messages, images = self._render_record(prompt_template, env, scope)
                text_only = build_messages(prompt=prompt, messages=messages, system_prompt=self.system_prompt)
                if template_body is None:
                    self.template_call = self._template(model, text_only, params)
                    template_body = self.template_call.body
                else:
                    with_messages(template_body, text_only)
            except AimlParameterError as error:
                raise AimlParameterError(f"record {index} ({file}): {error.message}") from None
            except Exception as error:
                raise AimlParameterError(
                    f"record {index} ({file}): the template failed to render: {type(error).__name__}: {error}"
                ) from None
            fingerprint = _fingerprint(model, text_only, params, self.extra_body, file.fingerprint(), repr(media))
            prepare = _FilePreparation(self, file, text_only, images, media, template_body, model, max_request_mb)
            estimate = _estimate(text_only, budget_tokens) + FILE_TOKENS_ESTIMATE
            items.append(BatchItem(index, [], fingerprint, estimate, None, prepare, file.url))
        return items

    def _render_record(self, prompt_template: Any, env: Any, scope: Context) -> tuple[Any, Any, Any]:
        """One record's prompt (or messages) and images, rendered from the task's templates."""
        prompt = None if prompt_template is None else _as_text(self._render(prompt_template, scope))
        messages = None if self.messages is None else self.render_template(self.messages, scope, env)
        images = None if self.images is None else self.render_template(self.images, scope, env)
        return prompt, messages, images

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

    def _template(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> PreparedChat:
        """The first record's call, checked against the model's catalog entry and schema (and each fallback
        model's): the other records share its parameters, so only their messages are checked."""
        template = self.hook.prepare_chat(
            messages, model, None, self.extra_body, params, stream=False, fallback_models=self.fallback_models or ()
        )
        self._profiles = [self.hook.model_profile(call.model) for call in template.chain()]
        return template

    def _check_record(self, messages: list[dict[str, Any]]) -> None:
        for profile in self._profiles:
            profile.check_messages(messages)

    def _call_kwargs(self) -> dict[str, Any]:
        fallbacks = {"fallback_models": list(self.fallback_models)} if self.fallback_models else {}
        return {"model": self.model or None, "extra_body": self.extra_body, **self.generation_params(), **fallbacks}

    def _open_checkpoint(self, items: list[BatchItem]) -> tuple[Checkpoint | None, dict[int, RecordOutcome]]:
        from airflow_provider_aiml.batch.checkpoint import Checkpoint
        from airflow_provider_aiml.batch.runner import RecordOutcome

        location = self.checkpoint_path or (f"{self.output_path}.progress.jsonl" if self.output_path else None)
        if not location:
            return None, {}
        checkpoint = Checkpoint(location, conn_id=self.storage_conn_id)
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
            location,
            len(resumed),
            f", {stale} ignored because their record or parameters changed" if stale else "",
        )
        return checkpoint, resumed

    # --- estimates and dry runs -----------------------------------------------------------------------------

    def _model(self) -> str:
        return self.template_call.model if self.template_call is not None else self.model or self.hook.settings.model

    def _entry(self, model: str) -> ModelEntry | None:
        """The model's catalog entry (read when the first record's call was checked, so cached by now)."""
        return self.hook.model_profile(model).entry

    def _estimate(
        self, pending: list[BatchItem], resumed: Mapping[int, RecordOutcome], read: Sequence[CostEstimate] = ()
    ) -> BatchEstimate:
        """The estimate of the records to run: built bodies as they are, file records not read yet by their
        text, and ``read``, the estimates of the file records a dry run read."""
        from airflow_provider_aiml.batch.costs import BatchEstimate

        model = self._model()
        bodies = [item.body for item in pending if item.body is not None]
        unread = [
            item.prepare.text_body()
            for item in pending
            if item.body is None and isinstance(item.prepare, _FilePreparation)
        ]
        return BatchEstimate.of(model, self._entry(model), bodies, unread, resumed=len(resumed), estimates=read)

    def _check_estimate(self, estimate: BatchEstimate, resumed: Mapping[int, RecordOutcome], *, dry_run: bool) -> None:
        """Log the estimate's one line, then refuse a batch whose low estimate passes ``max_cost_usd``."""
        line = estimate.log_line()
        if self.max_cost_usd is not None and estimate.estimate.low_usd is None:
            line += f"; max_cost_usd=${self.max_cost_usd:g} is enforced during the run, from each answer's cost"
        self.log.info("%s%s", "Dry run, nothing is sent. " if dry_run else "", line)
        spent = sum(outcome.usage.usd_spent or 0.0 for outcome in resumed.values())
        estimate.check_budget(self.max_cost_usd, spent)

    def _dry_run(self, context: Context, items: list[BatchItem]) -> dict[str, Any]:
        """Check every record as a real run would, files read and rendered; estimate; send nothing."""
        resumed = self._resumed(items)
        pending = [item for item in items if item.index not in resumed]
        files = [item for item in pending if item.body is None and item.prepare is not None]
        read = self._read_files(files, self._entry(self._model())) if files else []
        estimate = self._estimate([item for item in pending if item.body is not None], resumed, read)
        summary = {**estimate.summary(), "dry_run": True, "max_cost_usd": self.max_cost_usd}
        if self.do_xcom_push:
            context["ti"].xcom_push(key="estimate", value=summary)
        self._check_estimate(estimate, resumed, dry_run=True)
        return summary

    def _resumed(self, items: list[BatchItem]) -> dict[int, RecordOutcome]:
        """The records a checkpoint already holds (only read: a dry run writes nothing)."""
        if not (self.checkpoint_path or self.output_path):
            return {}
        return self._open_checkpoint(items)[1]

    def _read_files(self, files: list[BatchItem], entry: ModelEntry | None) -> list[CostEstimate]:
        """Read and build every file record as the runner would, keeping only each one's estimate; a record that
        fails its checks fails the dry run, named with the others that fail."""
        from concurrent.futures import ThreadPoolExecutor

        from airflow_provider_aiml.batch.runner import READER_THREADS
        from airflow_provider_aiml.catalog.estimate import estimate_call
        from airflow_provider_aiml.exceptions import AimlApiError

        def estimate_of(item: BatchItem) -> CostEstimate | AimlApiError:
            assert item.prepare is not None
            try:
                _, body = item.prepare.build(item.prepare.fetch())
            except AimlApiError as error:
                return error
            assert body is not None
            return estimate_call(body, entry)

        with ThreadPoolExecutor(max_workers=min(READER_THREADS, len(files)), thread_name_prefix="aiml-dry") as pool:
            outcomes = list(pool.map(estimate_of, files))
        estimates: list[CostEstimate] = []
        failed: list[tuple[BatchItem, AimlApiError]] = []
        for item, outcome in zip(files, outcomes, strict=True):
            if isinstance(outcome, AimlApiError):
                failed.append((item, outcome))
            else:
                estimates.append(outcome)
        if failed:
            item, error = failed[0]
            others = ""
            if len(failed) > 1:
                shown = ", ".join(str(other.index) for other, _ in failed[1:11]) + (", ..." if len(failed) > 11 else "")
                others = f" ({len(failed) - 1} more fail too: record{'s' if len(failed) > 2 else ''} {shown})"
            raise _with_message(error, f"record {item.index} ({item.source}): {error.message}{others}")
        return estimates

    def _reconcile(self, report: BatchReport, started_at: datetime) -> dict[str, Any]:
        """What the API billed for the calls this try sent, for XCom ``usage`` (never raises)."""
        from airflow_provider_aiml.batch.reconcile import FIELDS, reconcile_billing
        from airflow_provider_aiml.models import Usage

        sent = getattr(self.hook, "sent_request_ids", None)
        if sent is None:
            self.log.warning("Billing reconciliation skipped: the task's hook does not note the requests it sends")
            return dict.fromkeys(FIELDS)
        recorded = sum((outcome.usage for outcome in report.outcomes if not outcome.resumed), Usage())
        return reconcile_billing(
            self.hook, sent, started_at=started_at, recorded=recorded, timeout=self.reconcile_timeout, log=self.log
        )

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

    def _write_output(self, results: list[dict[str, Any]], report: BatchReport) -> dict[str, Any]:
        """Write every record's result, in input order, to ``output_path``; return the manifest for XCom."""
        from airflow_provider_aiml.storage import write_jsonl

        assert self.output_path is not None
        rows = ({"source": None, **row} if "source" not in row else row for row in results)
        location = write_jsonl(self.output_path, rows, conn_id=self.storage_conn_id)
        failed = len(report.failed)
        self.log.info("Results of %d records written to %s (%d failed)", len(results), location, failed)
        return {
            "path": location,
            "records": len(results),
            "succeeded": len(results) - failed,
            "failed": failed,
            "usage": report.usage.model_dump(),
        }

    def _push(
        self, context: Context, report: BatchReport, results: Any, *, resumed: int, billed: Mapping[str, Any] | None
    ) -> None:
        from airflow_provider_aiml.operators._spend import push_spend

        if not self.do_xcom_push:
            return
        failed = report.failed
        total = len(report.outcomes)
        summary = {
            "total": total,
            "succeeded": total - len(failed),
            "failed": len(failed),
            "not_run": sum(1 for outcome in failed if (outcome.error or "").startswith("not run")),
            "resumed": resumed,
            "requests": report.requests,
            "elapsed_s": round(report.elapsed_s, 3),
            "stop_reason": report.stop_reason,
        }
        ti = context["ti"]
        ti.xcom_push(key="usage", value={**report.usage.model_dump(), **(billed or {})})
        push_spend(context, self.spend, self.aiml_conn_id)
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
                f"(in {self._results_place()}); {len(failed)} have an 'error' saying why not."
            )
        if failed and self.on_error == "fail":
            first = failed[0]
            return (
                f"{len(failed)} of {len(report.outcomes)} records failed (first: record {first.index}: "
                f"{first.error}). The results of the other {done} are in {self._results_place()}; "
                "on_error='continue' lets the task succeed."
            )
        return None

    def _results_place(self) -> str:
        return f"{self.output_path} (manifest in XCom return_value)" if self.output_path else "XCom return_value"


class _FilePreparation:
    """Builds one file record's messages and body when its turn comes: :meth:`fetch` reads the file (waiting on
    storage, on a reader thread), :meth:`build` renders it and builds the body (on a preparer thread)."""

    def __init__(
        self,
        operator: AimlBatchChatCompletionOperator,
        file: StoredFile,
        text_only: list[dict[str, Any]],
        images: Any,
        media: MediaOptions,
        template_body: dict[str, Any],
        model: str,
        max_request_mb: float,
    ) -> None:
        self.operator = operator
        self.file = file
        self.text_only = text_only
        self.images = images
        self.media = media
        self.template_body = template_body
        self.model = model
        self.max_request_mb = max_request_mb

    def text_body(self) -> dict[str, Any]:
        """The record's body before its file is attached: what its estimate starts from."""
        return {**self.template_body, "messages": self.text_only}

    def fetch(self) -> bytes:
        from airflow_provider_aiml.media.attachments import read_file

        return read_file(self.file)

    def build(self, data: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from airflow_provider_aiml.hooks.building import with_messages
        from airflow_provider_aiml.media.attachments import attachment_parts, data_parts
        from airflow_provider_aiml.messages import as_image_list

        parts = data_parts(data, self.file.url, self.media)
        for image in as_image_list(self.images):
            parts.extend(attachment_parts(image, self.media))
        messages = _attach(self.text_only, parts, self.file)
        body = with_messages(self.template_body, messages, max_request_mb=self.max_request_mb)
        self.operator._check_record(messages)
        self.operator.hook.check_context(self.model, body)
        return messages, body


def _attach(messages: list[dict[str, Any]], parts: list[dict[str, Any]], file: StoredFile) -> list[dict[str, Any]]:
    """The messages with ``parts`` added to the last user message (after its text)."""
    from airflow_provider_aiml.exceptions import AimlParameterError

    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if message.get("role") == "user":
            content = message.get("content")
            text = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
            return [*messages[:position], {**message, "content": [*text, *parts]}, *messages[position + 1 :]]
    raise AimlParameterError(f"record {file}: the messages have no user message to attach the file to")


def _with_message(error: Exception, message: str) -> Exception:
    """An error of ``error``'s type with another message (a dry run names the record that failed)."""
    from airflow_provider_aiml.exceptions import AimlApiError

    try:
        return type(error)(message)
    except TypeError:
        return AimlApiError(message)


def _names_files(text: str) -> bool:
    """Whether a string ``inputs`` names files: a storage URL, or an absolute or home-relative path (either may
    be a glob)."""
    from airflow_provider_aiml.storage import storage_scheme

    stripped = text.strip()
    return storage_scheme(stripped) is not None or stripped.startswith(("/", "~", "./", "../"))


def _as_text(rendered: Any) -> str:
    """A rendered prompt as text: a DAG rendering native objects turns "{{ record }}" into the record itself."""
    if isinstance(rendered, str):
        return rendered
    return json.dumps(rendered, ensure_ascii=False, default=str) if isinstance(rendered, dict | list) else str(rendered)


def _fingerprint(
    model: str | None, messages: list[dict[str, Any]], params: Mapping[str, Any], extra: Any, *more: str
) -> str:
    payload = json.dumps([model, messages, params, extra, *more], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _estimate(messages: list[dict[str, Any]], completion_tokens: int) -> float:
    """A rough token count of a call (four characters a token), for the per-minute token limit."""
    chars = sum(len(json.dumps(message.get("content"), ensure_ascii=False)) for message in messages)
    return chars / 4 + completion_tokens


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
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

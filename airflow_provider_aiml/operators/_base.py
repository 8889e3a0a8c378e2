"""What the chat and batch operators share: connection, model, generation parameters and output handling."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from pydantic import BaseModel

from airflow_provider_aiml import DEFAULT_CONN_ID
from airflow_provider_aiml.operators._arguments import (
    check_count,
    check_flag,
    check_generation_arguments,
    check_media_arguments,
    check_model_list,
)
from airflow_provider_aiml.parameters import NUMERIC_PARAMETERS

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_aiml.hooks.aiml import AimlApiHook
    from airflow_provider_aiml.media.attachments import MediaOptions
    from airflow_provider_aiml.messages import ImageSource
    from airflow_provider_aiml.models import ChatCompletionResult
    from airflow_provider_aiml.operators._spend import TaskSpend

# The operator modules import what they need to run (the hook, the wire models, message building, output
# decoding, the errors) only when a task runs: a DAG file is parsed again and again, and this package (not under
# ``airflow.``) is imported again by every parse, as the DAG processor pre-imports only ``airflow.*`` modules.


@cache
def operator_parameters() -> tuple[str, ...]:
    """Generation parameters the operators take as keyword arguments (by their API names)."""
    from airflow_provider_aiml.models import GENERATION_PARAMETERS

    kept = (name for name in GENERATION_PARAMETERS if name not in ("response_format", "prediction", "stream_options"))
    return (*kept, *REASONING_SWITCHES)


REASONING_SWITCHES = ("reasoning_effort", "reasoning_budget_tokens")
LITERAL_PARAMETERS = (*NUMERIC_PARAMETERS, "stop", "parallel_tool_calls", *REASONING_SWITCHES)
"""Generation parameters that are never templated, so their values are known when the DAG file is parsed."""


class AimlBaseOperator(BaseOperator):
    """Arguments common to the AI/ML API operators.

    :param aiml_conn_id: connection of type ``aimlapi``.
    :param model: model id; the connection's default model when not set. Templated.
    :param system_prompt: instructions put before the prompt. Templated.
    :param images: image URLs or local file paths (sent inline as base64), or ``{"url"|"path", "detail"}``
        mappings, attached to the prompt. Templated.
    :param response_format: ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}`` to
        get JSON, decoded into XCom ``parsed``. Templated.
    :param output_type: a pydantic model class; its JSON schema is sent as a strict ``json_schema`` format and
        the answer is validated into it (``parsed`` holds ``model_dump(mode="json")``).
    :param max_validation_retries: when JSON was asked for (``output_type`` or a JSON ``response_format``) and
        the answer does not decode or validate, how many times to show the model its answer with the problem and
        ask again (each one is a billed call, traced with ``:v<n>`` appended to the client request id).
    :param extra_body: model-specific keys merged into the request (``enable_thinking``, ``thinking_budget``,
        ``reasoning_effort``, ...). Templated.
    :param reasoning_effort: ``"low"``, ``"medium"`` or ``"high"``: how hard a thinking model thinks, sent in the
        chosen model's own key (``reasoning_effort`` or ``reasoning.effort``); a clear error before any call for
        a model that has no effort setting.
    :param reasoning_budget_tokens: the most tokens a thinking model may think for, sent in the chosen model's own
        key (``reasoning.max_tokens``, ``thinking_budget``, Anthropic's ``thinking.budget_tokens``).
    :param fallback_models: models to send the same call to, in order, when the model is deprecated (404), not
        allowed by the key's scopes (403) or keeps failing (5xx, timeouts) once its retries are spent; never after
        a 400, 401 or 429. Each is checked for the call before anything is sent; XCom ``response`` names the
        model that answered (``requested_model``) and those that failed before it (``fallback_from``).
    :param storage_conn_id: the Airflow connection that object-storage URLs in ``images`` (``s3://…``,
        ``gs://…``) and ``ObjectStoragePath`` values without a connection are read with; a URL may also name one
        itself (``s3://my_aws@bucket/key``).
    :param max_image_pixels: images with more pixels are scaled down before they are sent (default 2,621,440:
        the seed model's default per-image bound of 2,560 visual tokens of 32x32 pixels), PDF pages rendered
        within it.
    :param max_image_bytes: an image still larger than this after fitting fails the task before any call
        (default 20 MiB).
    :param pdf_dpi: resolution PDF pages are rendered at (default 100).
    :param pdf_text: ``"auto"`` (default): each PDF page as an image, with its text layer when it has one;
        ``"only"``: the text layer alone, no images (cheap, for born-digital PDFs); ``"never"``: images alone.
    :param pages: the PDF pages to send, 1-based (``"1-3,7"``, ``"2-"``, or a list of numbers); all by default.
    :param max_pages: a PDF with more pages selected fails before any call (default 50; ``None``: no cap).
    :param confine_images_to_dag_folder: where local image files may be read from. ``True``: only inside the
        DAG folder; ``False``: anywhere the worker can read; ``None`` (default): the connection's extra of the
        same name, else inside the DAG folder for files named by a templated value (Jinja, an XCom, a batch
        record, a mapped task's value) and anywhere for paths written as they are in the DAG file.

    The generation parameters (``max_completion_tokens``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``,
    ``frequency_penalty``, ``presence_penalty``, ``seed``, ``repetition_penalty``, ``tools``, ``tool_choice``,
    ``parallel_tool_calls``) keep their API names and are checked against the documented ranges before any call.
    """

    def __init__(
        self,
        *,
        aiml_conn_id: str = DEFAULT_CONN_ID,
        model: str | None = None,
        system_prompt: str | None = None,
        images: ImageSource | Sequence[ImageSource] | None = None,
        response_format: Mapping[str, Any] | None = None,
        output_type: type[BaseModel] | None = None,
        max_validation_retries: int = 0,
        extra_body: Mapping[str, Any] | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        repetition_penalty: float | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        reasoning_effort: str | None = None,
        reasoning_budget_tokens: int | None = None,
        fallback_models: Sequence[str] | None = None,
        confine_images_to_dag_folder: bool | None = None,
        storage_conn_id: str | None = None,
        max_image_pixels: int | None = None,
        max_image_bytes: int | None = None,
        pdf_dpi: float | None = None,
        pdf_text: str = "auto",
        pages: str | Sequence[int] | None = None,
        max_pages: int | None = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiml_conn_id = aiml_conn_id
        self.model = model
        self.system_prompt = system_prompt
        self.images = images
        self.response_format = response_format
        self.output_type = output_type
        self.max_validation_retries = max_validation_retries
        self.extra_body = extra_body
        self.max_completion_tokens = max_completion_tokens
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.stop = stop
        self.frequency_penalty = frequency_penalty
        self.presence_penalty = presence_penalty
        self.seed = seed
        self.repetition_penalty = repetition_penalty
        self.tools = tools
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.reasoning_effort = reasoning_effort
        self.reasoning_budget_tokens = reasoning_budget_tokens
        self.fallback_models = fallback_models
        self.confine_images_to_dag_folder = confine_images_to_dag_folder
        self.storage_conn_id = storage_conn_id
        self.max_image_pixels = max_image_pixels
        self.max_image_bytes = max_image_bytes
        self.pdf_dpi = pdf_dpi
        self.pdf_text = pdf_text
        self.pages = pages
        self.max_pages = max_pages
        self._templated_fields: dict[str, bool] = {}
        self.spend: TaskSpend | None = None
        """Set by ``execute`` once the API answered; read by the OpenLineage methods."""

    def check_arguments(self) -> None:
        """Check the plain (non-templated) arguments, so a wrong literal fails the DAG file's import. Each
        operator calls it at the end of ``__init__`` and again in ``execute()``."""
        check_generation_arguments(self, LITERAL_PARAMETERS)
        check_model_list(self, "fallback_models")
        check_count(self, "max_validation_retries")
        check_flag(self, "confine_images_to_dag_folder", optional=True)
        check_media_arguments(self)

    FILE_FIELDS: Sequence[str] = ("images",)
    """Fields that may name local files; what they name is confined when they are templated (see ``file_folder``)."""

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does, noting first which file fields are templated (see :meth:`file_folder`)."""
        from airflow_provider_aiml.messages import is_literal

        self._templated_fields = {name: not is_literal(getattr(self, name, None)) for name in self.FILE_FIELDS}
        super().render_template_fields(context, jinja_env)

    def image_folder(self) -> str | None:
        """The folder local image files must lie in, or ``None`` for anywhere the worker can read."""
        return self.file_folder("images")

    def file_folder(self, field: str) -> str | None:
        """The folder local files named by ``field`` must lie in, or ``None`` for anywhere the worker can read.

        ``confine_images_to_dag_folder`` on the task, else on the connection, decides; when neither sets it,
        files named by a templated value (Jinja, an XCom, a batch record) are confined to the DAG folder and
        paths written as they are in the DAG file are not.
        """
        from airflow_provider_aiml.messages import is_literal

        confine = self.confine_images_to_dag_folder
        if confine is None:
            confine = self.hook.settings.confine_images_to_dag_folder
        if confine is None and field in self._templated_fields:
            confine = self._templated_fields[field]
        if confine is None:
            # A mapped task's values were resolved (from XComs, say) before it was built: count them as templated.
            confine = getattr(self, "_BaseOperator__from_mapped", False) or not is_literal(getattr(self, field, None))
        if not confine:
            return None
        return self.dag.folder if self.has_dag() else os.getcwd()

    def media_options(self) -> MediaOptions:
        """How this task reads and fits its files: folders, confinement, storage connection, limits, PDF pages."""
        from airflow_provider_aiml.media.attachments import MediaOptions
        from airflow_provider_aiml.media.images import ImageLimits
        from airflow_provider_aiml.media.pdf import PdfOptions, check_pdf_options

        defaults_image, defaults_pdf = ImageLimits(), PdfOptions()
        pdf = PdfOptions(
            dpi=self.pdf_dpi if self.pdf_dpi is not None else defaults_pdf.dpi,
            text=self.pdf_text,  # type: ignore[arg-type]  # checked just below
            pages=self.pages,
            max_pages=self.max_pages,
        )
        check_pdf_options(pdf)
        confine = self.image_folder() if self.images else None
        return MediaOptions(
            base_dirs=(self.dag.folder,) if self.has_dag() else (),
            confine_to=confine,
            storage_conn_id=self.storage_conn_id,
            image_limits=ImageLimits(
                max_pixels=self.max_image_pixels or defaults_image.max_pixels,
                max_bytes=self.max_image_bytes or defaults_image.max_bytes,
            ),
            pdf=pdf,
        )

    def render_template(
        self, content: Any, context: Context, jinja_env: Any = None, seen_oids: set[int] | None = None
    ) -> Any:
        """Render like Airflow does, except that text which merely ends in ``.txt`` (a sentence with spaces) is
        rendered as text instead of being opened as a template file."""
        if isinstance(content, str) and reads_as_text(content, self.template_ext):
            env = jinja_env or self.get_template_env()
            return self._render(env.from_string(content), context)
        return super().render_template(content, context, jinja_env, seen_oids)

    def resolve_template_files(self) -> None:
        """Airflow reads template files when the DAG is parsed; leave text that only ends like a file name alone.

        Airflow's own version builds a Jinja environment for every list-valued field (``images``, ``messages``)
        even when nothing in it names a file; that costs milliseconds on every parse, so it is called only when a
        field does name a template file.
        """
        extensions = tuple(self.template_ext)
        text_only: dict[str, str] = {}
        names_a_file = False
        for field in self.template_fields:
            value = getattr(self, field, None)
            if isinstance(value, str) and reads_as_text(value, extensions):
                text_only[field] = value
            elif isinstance(value, str | list):
                items = value if isinstance(value, list) else [value]
                names_a_file = names_a_file or any(isinstance(i, str) and i.endswith(extensions) for i in items)
        if not names_a_file:
            self.prepare_template()
            return
        for field in text_only:
            setattr(self, field, None)
        try:
            super().resolve_template_files()
        finally:
            for field, value in text_only.items():
                setattr(self, field, value)

    @cached_property
    def hook(self) -> AimlApiHook:
        """The hook of this task (one HTTP client per task)."""
        return self.make_hook()

    def make_hook(self) -> AimlApiHook:
        """Create the task's hook."""
        from airflow_provider_aiml.hooks.aiml import AimlApiHook

        return AimlApiHook(aiml_conn_id=self.aiml_conn_id)

    def check_output_settings(self) -> None:
        """Reject a bad ``output_type``/``response_format`` combination or retry count, before any call."""
        from airflow_provider_aiml.structured import check_output_type

        check_output_type(self.output_type, self.response_format)
        self.check_arguments()

    @property
    def effective_response_format(self) -> Mapping[str, Any] | None:
        """The response format sent: derived from ``output_type`` when one is given."""
        if self.output_type is not None:
            from airflow_provider_aiml.structured import response_format_for

            return response_format_for(self.output_type)
        return self.response_format

    def generation_params(self) -> dict[str, Any]:
        """The generation parameters that are set, by their API names."""
        params = {name: getattr(self, name) for name in operator_parameters()}
        params["response_format"] = self.effective_response_format
        return {name: value for name, value in params.items() if value is not None}

    @property
    def wants_parsed(self) -> bool:
        """Whether answers are decoded into ``parsed`` (JSON asked for, by any of the ways to ask)."""
        from airflow_provider_aiml.output import wants_json

        return self.output_type is not None or wants_json(self._json_format())

    def _json_format(self) -> Any:
        return self.response_format or (self.extra_body or {}).get("response_format")

    def parse_answer(self, content: str) -> Any:
        """``parsed`` for an answer: decoded JSON, validated into ``output_type`` when set; ``None`` otherwise."""
        from airflow_provider_aiml.structured import parse_output

        return parse_output(content, response_format=self._json_format(), output_type=self.output_type)

    # --- OpenLineage (called by apache-airflow-providers-openlineage when it is installed) --------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The run facet ``aiml_usage``: models, token counts, cost and calls of the task."""
        return self._openlineage_usage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        """The same facet for a failed task: what it spent before failing (a failed batch keeps its results)."""
        return self._openlineage_usage()

    def _openlineage_usage(self) -> OperatorLineage | None:
        try:
            from airflow_provider_aiml.lineage import operator_lineage
        except ImportError:  # OpenLineage is not installed (then nothing calls this)
            return None
        return operator_lineage(self.spend)


def reads_as_text(value: str, template_ext: Sequence[str]) -> bool:
    """A value ending in a template extension is a file name only if it has no whitespace in it."""
    return bool(template_ext) and value.endswith(tuple(template_ext)) and any(char.isspace() for char in value)


def result_xcom_values(result: ChatCompletionResult) -> dict[str, Any]:
    """The XCom values of one answer, keyed as the operators push them."""
    return {
        "content": result.content,
        "reasoning": result.reasoning,
        "usage": result.usage.model_dump(),
        "response": result.response_summary(),
    }


def task_client_request_id(context: Context) -> str:
    """The ``X-Client-Request-Id`` of a task's calls: DAG, task, run, map index and try, in the API's alphabet."""
    from airflow_provider_aiml.hooks.building import client_request_id

    ti = context["ti"]
    return client_request_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number)

"""``AimlEmbeddingOperator``: the embedding vectors of many texts (or text files) in one task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_aiml import DEFAULT_CONN_ID
from airflow_provider_aiml.operators._arguments import check_flag, check_positive
from airflow_provider_aiml.operators._base import task_client_request_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aiml.storage import StoredFile

MAX_TEXT_FILE_BYTES = 8 * 1024 * 1024
"""A text file over this is not read as one input (no embedding model takes that much text)."""


class AimlEmbeddingOperator(BaseOperator):
    """Embed texts through the AI/ML API (``POST /embeddings``), batched into few requests sent concurrently.

    ``inputs`` is a list of strings (usually an upstream XCom), or files: a glob or storage URL
    (``"s3://bucket/docs/*.txt"``) or a list of paths, each file's UTF-8 text being one input. XCom
    ``return_value`` is the list of vectors aligned with the inputs and ``usage`` the tokens and cost. With
    ``output_path`` the vectors go to a JSON Lines file instead (``{"index", "embedding"}`` per line, plus
    ``"source"``, the file's URL, for file inputs) and ``return_value`` is a manifest
    ``{path, records, dimensions, model, usage}``.

    :param inputs: the texts, or the files. Templated.
    :param aiml_conn_id: connection of type ``aimlapi``.
    :param model: the embedding model; the connection's ``embedding_model`` extra, else
        ``text-embedding-3-small``. Templated.
    :param dimensions: shorter vectors, for the models that allow it.
    :param batch_size: texts per request (default 256).
    :param concurrency: requests in flight at most.
    :param output_path: a local path or object-storage URL for the vectors (JSON Lines). Templated.
    :param storage_conn_id: the connection object-storage inputs and ``output_path`` are read and written with.
    :param max_files: file inputs beyond this many fail the task before any call.
    :param confine_files_to_dag_folder: where local input files may be read from. ``True``: only inside the DAG
        folder; ``False``: anywhere the worker can read; ``None`` (default): inside the DAG folder when
        ``inputs`` is templated (Jinja, an XCom), anywhere for paths written as they are in the DAG file.
    """

    template_fields: Sequence[str] = ("inputs", "model", "output_path")
    template_fields_renderers = {"inputs": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        inputs: Sequence[str] | str,
        aiml_conn_id: str = DEFAULT_CONN_ID,
        model: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 256,
        concurrency: int = 8,
        output_path: str | None = None,
        storage_conn_id: str | None = None,
        max_files: int = 10_000,
        confine_files_to_dag_folder: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs = inputs
        self.aiml_conn_id = aiml_conn_id
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.output_path = output_path
        self.storage_conn_id = storage_conn_id
        self.max_files = max_files
        self.confine_files_to_dag_folder = confine_files_to_dag_folder
        self._inputs_templated = False
        self.check_arguments()

    def check_arguments(self) -> None:
        """The plain arguments, checked when the DAG file is parsed and again when the task runs."""
        check_positive(self, "dimensions", whole=True)
        check_positive(self, "batch_size", whole=True, optional=False)
        check_positive(self, "concurrency", whole=True, optional=False)
        check_positive(self, "max_files", whole=True, optional=False)
        check_flag(self, "confine_files_to_dag_folder", optional=True)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does, noting first whether ``inputs`` is templated (see ``_folder``)."""
        from airflow_provider_aiml.messages import is_literal

        self._inputs_templated = not is_literal(self.inputs) or getattr(self, "_BaseOperator__from_mapped", False)
        super().render_template_fields(context, jinja_env)

    def _folder(self) -> str | None:
        """The folder local input files must lie in, or ``None`` for anywhere."""
        import os

        confine = self.confine_files_to_dag_folder
        if confine is None:
            confine = self._inputs_templated
        if not confine:
            return None
        return self.dag.folder if self.has_dag() else os.getcwd()

    def execute(self, context: Context) -> Any:
        from airflow_provider_aiml.hooks.aiml import AimlApiHook
        from airflow_provider_aiml.operators.batch import run_coroutine

        self.check_arguments()
        texts, sources = self._texts()
        if not texts:
            self.log.info("The inputs %r hold no texts or files: nothing to embed", self.inputs)
            return self._write([], sources, model=None, usage={}) if self.output_path else []
        hook = AimlApiHook(aiml_conn_id=self.aiml_conn_id, max_concurrency=self.concurrency)

        async def embed() -> Any:
            try:
                return await hook.aembed(
                    texts,
                    model=self.model or None,
                    dimensions=self.dimensions,
                    batch_size=self.batch_size,
                    client_request_id=task_client_request_id(context),
                    concurrency=self.concurrency,
                )
            finally:
                await hook.aclose()

        result = run_coroutine(embed())  # the hook logs the call's summary line (texts, requests, tokens, cost)
        if self.do_xcom_push:
            from airflow_provider_aiml.operators._spend import TaskSpend, push_spend

            context["ti"].xcom_push(key="usage", value=result.usage.model_dump())
            spend = TaskSpend(result.requested_model, (result.model,), result.usage, calls=result.requests)
            push_spend(context, spend, self.aiml_conn_id)
        if not self.output_path:
            return result.vectors
        return self._write(result.vectors, sources, model=result.model, usage=result.usage.model_dump())

    def _texts(self) -> tuple[list[str], list[str] | None]:
        """The texts to embed, and the files they came from (``None`` for texts given as such)."""
        from airflow_provider_aiml.exceptions import AimlParameterError
        from airflow_provider_aiml.storage import expand_inputs, is_file_reference

        inputs: Any = self.inputs
        if isinstance(inputs, str) or is_file_reference(inputs):
            if not is_file_reference(inputs) and not str(inputs).startswith(("/", "~", "./", "../")):
                raise AimlParameterError(
                    "inputs must be a list of texts, or files (a storage URL or an absolute path, either may be a "
                    f"glob); got the string {str(inputs)[:60]!r}"
                )
            return self._read(expand_inputs(inputs, conn_id=self.storage_conn_id, max_files=self.max_files))
        if not isinstance(inputs, Iterable) or not isinstance(inputs, Sized) or isinstance(inputs, dict):
            raise AimlParameterError(f"inputs must be a list of texts, got {type(inputs).__name__}")
        values = list(inputs)
        if values and all(is_file_reference(value) for value in values):
            return self._read(expand_inputs(values, conn_id=self.storage_conn_id, max_files=self.max_files))
        return values, None

    def _read(self, files: list[StoredFile]) -> tuple[list[str], list[str]]:
        from airflow_provider_aiml.exceptions import AimlFileError
        from airflow_provider_aiml.storage import confine_local_files

        confine_local_files(files, self._folder(), setting="confine_files_to_dag_folder=False on the task")
        texts = []
        for file in files:
            try:
                texts.append(file.read_bytes(MAX_TEXT_FILE_BYTES).decode("utf-8"))
            except UnicodeDecodeError as error:
                raise AimlFileError(f"file {file.url!r} is not UTF-8 text: {error}") from None
        return texts, [file.url for file in files]

    def _write(
        self, vectors: list[list[float]], sources: list[str] | None, *, model: str | None, usage: dict[str, Any]
    ) -> dict[str, Any]:
        from airflow_provider_aiml.storage import write_jsonl

        assert self.output_path is not None
        rows = (
            {"index": index, "source": sources[index], "embedding": vector}
            if sources
            else {"index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        )
        location = write_jsonl(self.output_path, rows, conn_id=self.storage_conn_id)
        self.log.info("%d vectors written to %s", len(vectors), location)
        return {
            "path": location,
            "records": len(vectors),
            "dimensions": len(vectors[0]) if vectors else 0,
            "model": model,
            "usage": usage,
        }

"""DAGs over files (local, file:// and a real S3 server) for the end-to-end tests, run against the emulator.

The tests pass the files, output paths and storage connection as params; ``render_template_as_native_obj`` keeps
a list param a list.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

START = datetime(2026, 1, 1)
FILE_ARGS = {"storage_conn_id": "aws_test", "confine_images_to_dag_folder": False}


def _dag(dag_id: str, **params: object) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["aiml-test"],
        params=params,
        render_template_as_native_obj=True,
    )


with _dag("aiml_files_chat", images=[]):
    AimlChatCompletionOperator(task_id="chat", prompt="What do these show?", images="{{ params.images }}", **FILE_ARGS)

with _dag("aiml_files_chat_forbidden", images=[]):
    # Its own storage connection: Airflow caches one filesystem per connection id for the whole process.
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="What does this show?",
        images="{{ params.images }}",
        storage_conn_id="aws_forbidden",
        confine_images_to_dag_folder=False,
    )

with _dag("aiml_files_chat_limits", images=[]):
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="What do these show?",
        images="{{ params.images }}",
        max_pages=2,
        max_image_pixels=40_000,
        **FILE_ARGS,
    )

with _dag("aiml_files_chat_text_only", images=[]):
    AimlChatCompletionOperator(
        task_id="chat", prompt="Summarize.", images="{{ params.images }}", pdf_text="only", pages="2-", **FILE_ARGS
    )

with _dag("aiml_files_batch", inputs="", output_path=None):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs="{{ params.inputs }}",
        prompt="Describe {{ record.name }} (stem {{ record.stem }}, record {{ index }}).",
        output_path="{{ params.output_path }}",
        on_error="continue",
        concurrency=4,
        progress_interval=0.5,
        **FILE_ARGS,
    )

with _dag("aiml_files_batch_capped", inputs=""):
    AimlBatchChatCompletionOperator(
        task_id="batch", inputs="{{ params.inputs }}", prompt="Describe {{ record }}.", max_files=3, **FILE_ARGS
    )

with _dag("aiml_files_record_images", records=[]):
    AimlBatchChatCompletionOperator(
        task_id="batch",
        inputs="{{ params.records }}",
        prompt="Describe product {{ record.sku }}.",
        images="{{ record.image_url }}",
        **FILE_ARGS,
    )

with _dag("aiml_files_batch_confined", inputs=""):
    AimlBatchChatCompletionOperator(task_id="batch", inputs="{{ params.inputs }}", prompt="Describe {{ record }}.")

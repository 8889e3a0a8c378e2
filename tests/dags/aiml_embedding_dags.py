"""Embedding DAGs for the end-to-end tests, run against the emulator."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.embedding import AimlEmbeddingOperator

START = datetime(2026, 1, 1)
TEXTS = [f"product {i}: a sturdy thing for the kitchen, model {i * 7}" for i in range(30)]


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


with _dag("aiml_embed_operator", output_path=None):

    @task
    def load() -> list[str]:
        return TEXTS

    AimlEmbeddingOperator(
        task_id="embed", inputs=load(), batch_size=8, concurrency=2, output_path="{{ params.output_path }}"
    )

with _dag("aiml_embed_files", inputs="", output_path=None):
    AimlEmbeddingOperator(
        task_id="embed",
        inputs="{{ params.inputs }}",
        output_path="{{ params.output_path }}",
        dimensions=64,
        confine_files_to_dag_folder=False,
    )

with _dag("aiml_embed_files_confined", inputs=""):
    AimlEmbeddingOperator(task_id="embed", inputs="{{ params.inputs }}")

with _dag("aiml_embed_decorator"):

    @task.aiml_embed(model="text-embedding-3-large", batch_size=4)
    def embed() -> list[str]:
        return TEXTS[:10]

    embed()

with _dag("aiml_embed_invalid"):
    AimlEmbeddingOperator(task_id="embed", inputs=["fine", ""])

with _dag("aiml_embed_s3", inputs="", output_path=None):
    # Its own storage connection: Airflow caches one filesystem per connection id for the whole process.
    AimlEmbeddingOperator(
        task_id="embed",
        inputs="{{ params.inputs }}",
        output_path="{{ params.output_path }}",
        storage_conn_id="aws_embed",
    )

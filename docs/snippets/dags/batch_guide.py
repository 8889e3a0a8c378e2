"""The samples of the batch guide (docs/batch.md), as one runnable DAG; the guide shows the marked parts."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

# --8<-- [start:batch-import]
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

# --8<-- [end:batch-import]

TICKET_LABEL = {
    "type": "json_schema",
    "json_schema": {
        "name": "ticket_label",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"category": {"type": "string", "enum": ["delivery", "quality", "other"]}},
            "required": ["category"],
            "additionalProperties": False,
        },
    },
}

with DAG(
    dag_id="docs_batch_guide",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"checkpoint_dir": Param("/data/checkpoints", type="string")},
    tags=["docs"],
):

    @task
    def load_tickets() -> list[dict[str, str]]:
        return [{"id": "T-1", "text": "The parcel never came."}, {"id": "T-2", "text": "The lid cracked."}]

    # --8<-- [start:first-batch]
    label = AimlBatchChatCompletionOperator(
        task_id="label_tickets",
        inputs=load_tickets(),  # an upstream XCom: a list of strings or dicts
        system_prompt="You label support tickets. Answer with JSON only.",
        prompt="Ticket {{ record.id }}: {{ record.text }}",  # a Jinja template per record
        response_format=TICKET_LABEL,  # or output_type=SomePydanticModel
        concurrency=16,
        max_cost_usd=5.0,
        on_error="continue",
        checkpoint_path="{{ params.checkpoint_dir }}/{{ dag.dag_id }}/{{ run_id | replace(':', '_') }}.jsonl",
    )
    # --8<-- [end:first-batch]

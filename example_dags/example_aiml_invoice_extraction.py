"""Every night, extract the fields of every invoice PDF in a folder into a typed model; results to storage.

``inputs`` is a glob, listed when the task runs: a local folder here, ``s3://bucket/invoices/{{ ds }}/*.pdf`` or
any other Airflow object-storage URL in production (with ``storage_conn_id``). Each PDF is sent as its pages:
page images plus the page's text layer when it has one, so scanned and born-digital invoices both work. The
results go to a JSON Lines file (one line per invoice, in file order) and XCom holds only a small manifest: a
thousand invoices do not land in the metadata database. A retried task asks only for the invoices not done.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, Param, task
from pydantic import BaseModel, Field

from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

INVOICES = Path(__file__).parent / "files" / "invoices"


class LineItem(BaseModel):
    description: str
    quantity: float
    amount: float = Field(description="The line's total, in the invoice's currency")


class Invoice(BaseModel):
    """The fields of one invoice, as printed on it."""

    vendor: str
    invoice_number: str
    invoice_date: date | None = Field(description="ISO date, or null when not printed")
    currency: str = Field(description="ISO 4217 code, e.g. EUR")
    total: float
    line_items: list[LineItem]


with DAG(
    dag_id="example_aiml_invoice_extraction",
    description="Typed fields of every invoice PDF in a folder, written to a JSON Lines file.",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example", "vision"],
    params={
        "invoices": Param(f"{INVOICES}/*.pdf", type="string", description="A glob of PDFs, local or s3://…"),
        "output_dir": Param("/tmp/aiml-examples/invoices", type="string", description="Where results go."),
    },
) as dag:
    # --8<-- [start:extract]
    extract = AimlBatchChatCompletionOperator(
        task_id="extract_invoices",
        inputs="{{ params.invoices }}",
        system_prompt="You read invoices. Copy values exactly as printed; use null when a field is missing.",
        prompt="Extract the fields of the invoice {{ record.name }}.",
        output_type=Invoice,
        max_validation_retries=1,
        max_completion_tokens=4096,
        max_pages=5,
        concurrency=8,
        max_cost_usd=2.0,
        on_error="continue",
        output_path="{{ params.output_dir }}/{{ ds }}/invoices.jsonl",
    )
    # --8<-- [end:extract]

    @task
    def total_by_vendor(manifest: dict[str, Any]) -> dict[str, float]:
        """Read the results back from storage (not from XCom) and sum the invoice totals per vendor."""
        totals: dict[str, float] = {}
        with ObjectStoragePath(manifest["path"]).open("r") as lines:
            for line in lines:
                result = json.loads(line)
                if result["error"] is None:
                    invoice = Invoice.model_validate(result["parsed"])
                    totals[invoice.vendor] = round(totals.get(invoice.vendor, 0.0) + invoice.total, 2)
        return totals

    total_by_vendor(extract.output)

"""Structured extraction: pull typed fields out of an invoice with a JSON schema, then use them downstream."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

INVOICE = """ACME Tools GmbH - Invoice 2026-0117
Date: 14 March 2026
2 x cordless drill, 89.00 EUR each
1 x drill bit set, 24.50 EUR
Total due: 202.50 EUR, payable within 30 days."""

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "description": "ISO 8601 date"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
    },
    "required": ["vendor", "invoice_number", "date", "total", "currency"],
    "additionalProperties": False,
}

with DAG(
    dag_id="example_aiml_structured",
    description="Extract invoice fields as JSON that matches a schema.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:
    # --8<-- [start:extract]
    extract = AimlChatCompletionOperator(
        task_id="extract_invoice",
        system_prompt="Extract the requested fields. Answer with JSON only.",
        prompt=f"Extract the invoice fields from this document:\n\n{INVOICE}",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": True, "schema": INVOICE_SCHEMA},
        },
        temperature=0.0,
        max_completion_tokens=4096,
    )
    # --8<-- [end:extract]

    @task
    def check_invoice(ti: Any = None) -> dict[str, Any]:
        """Use the typed fields: here, a simple plausibility check a finance pipeline might run."""
        # --8<-- [start:check-parsed]
        invoice = ti.xcom_pull(task_ids="extract_invoice", key="parsed")
        missing = [field for field in INVOICE_SCHEMA["required"] if field not in invoice]
        # --8<-- [end:check-parsed]
        if missing:
            raise ValueError(f"The model left out {missing}")
        return {"invoice": invoice, "plausible": float(invoice["total"]) > 0}

    extract >> check_invoice()

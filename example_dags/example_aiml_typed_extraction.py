"""Typed extraction: a pydantic model defines the answer; the provider sends its schema and validates the reply.

``output_type`` turns the model class into a strict ``json_schema`` response format. An answer that does not
validate is shown to the model with the validation errors and asked again (``max_validation_retries``); XCom
``parsed`` holds the validated object as plain JSON.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow.sdk import DAG, task
from pydantic import BaseModel, Field

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

EMAIL = """From: Ines Duarte <ines@example.org>
Subject: Order 55-2817 arrived damaged

Hello, the espresso machine from order 55-2817 (delivered 3 March 2026) has a cracked water tank.
I would like a replacement rather than a refund. Phone: +351 21 555 0199."""


class SupportRequest(BaseModel):
    """A customer request extracted from an email."""

    customer_name: str
    order_number: str = Field(description="As written in the email, e.g. 55-2817")
    delivered_on: date | None = Field(description="ISO date, or null when not given")
    problem: str
    wants: str = Field(description="What the customer asks for: replacement, refund, repair or information")


with DAG(
    dag_id="example_aiml_typed_extraction",
    description="Extract a typed support request from an email.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:
    extract = AimlChatCompletionOperator(
        task_id="extract_request",
        system_prompt="Extract the fields of the customer's request.",
        prompt=EMAIL,
        output_type=SupportRequest,
        max_validation_retries=2,
        max_completion_tokens=4096,
    )

    @task
    def route_request(ti: Any = None) -> str:
        """Use the validated fields downstream, here to pick a queue."""
        request = SupportRequest.model_validate(ti.xcom_pull(task_ids="extract_request", key="parsed"))
        return "replacements" if "replace" in request.wants.lower() else "general"

    extract >> route_request()

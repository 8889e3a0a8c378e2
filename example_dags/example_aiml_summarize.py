"""Daily summarization: the model summarizes a text, a downstream task reads answer, reasoning and usage.

Runs against the AI/ML API emulator in the demo and tests, and unchanged against the real API once the
``aiml_default`` connection holds a real key.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

log = logging.getLogger(__name__)

ARTICLE = (
    "The city council approved the 2027 budget on Tuesday after a four-hour session. Spending rises 3.2% to "
    "412 million euros, with most of the increase going to public transport: two new tram lines are planned "
    "for 2028, and bus fares stay frozen for another year. The opposition criticised the 18 million euro cut "
    "to library opening hours and announced a petition. The mayor said the cut was temporary and would be "
    "reviewed in the autumn."
)

# --8<-- [start:dag]
with DAG(
    dag_id="example_aiml_summarize",
    description="Summarize a text with a thinking model and report what it cost.",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
    params={
        "text": Param(ARTICLE, type="string", description="The text to summarize."),
        "max_sentences": Param(3, type="integer", minimum=1, maximum=10),
    },
) as dag:
    summarize = AimlChatCompletionOperator(
        task_id="summarize",
        system_prompt="You write short, factual summaries.",
        prompt="prompts/summarize.j2",
        max_completion_tokens=4096,
    )
    # --8<-- [end:dag]

    @task
    def report(ti: Any = None) -> dict[str, Any]:
        """Read the summary, the model's reasoning and the usage back from XCom."""
        # --8<-- [start:report-pull]
        content = ti.xcom_pull(task_ids="summarize", key="content")
        reasoning = ti.xcom_pull(task_ids="summarize", key="reasoning")
        usage = ti.xcom_pull(task_ids="summarize", key="usage")
        cost = f"${usage['usd_spent']:.6f}" if usage["usd_spent"] is not None else "not reported"
        # --8<-- [end:report-pull]
        log.info(
            "Summary of %d characters; %d tokens (%d reasoning), cost %s",
            len(content),
            usage["total_tokens"],
            usage["reasoning_tokens"],
            cost,
        )
        return {"summary": content, "reasoning_chars": len(reasoning), "usage": usage}

    summarize >> report()

"""DAGs that exercise one operator feature each; the end-to-end tests run them against the emulator."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from pydantic import BaseModel, Field

from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

START = datetime(2026, 1, 1)
LONG_PROMPT = (
    "Explain how server-sent events let a client read a long answer while the model is still writing it, why "
    "a proxy that buffers responses breaks this, what a client should do when the connection drops in the "
    "middle of an answer, and how to tell a finished answer from a cut one when no closing marker is sent."
)


def _dag(dag_id: str, **kwargs: object) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["aiml-test"], **kwargs)


with _dag("aiml_test_template_file", params={"topic": "tram lines"}):
    AimlChatCompletionOperator(
        task_id="chat", prompt="prompts/test_topic.j2", system_prompt="Be brief about {{ params.topic }}."
    )

with _dag("aiml_test_messages", params={"city": "Lyon"}):
    AimlChatCompletionOperator(
        task_id="chat",
        messages=[
            {"role": "system", "content": "You are a travel guide."},
            {"role": "user", "content": [{"type": "text", "text": "One sight in {{ params.city }}?"}]},
        ],
        model="{{ 'openai/' ~ 'gpt-4o' }}",
        extra_body={"reasoning_effort": "{{ 'low' }}"},
    )

with _dag("aiml_test_images"):
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="Describe the images.",
        images=["images/bar_chart.png", "https://example.com/photo.jpg"],
    )

with _dag("aiml_test_missing_image"):
    AimlChatCompletionOperator(task_id="chat", prompt="Describe it.", images=["images/no_such_file.png"])

with _dag("aiml_test_not_an_image"):
    AimlChatCompletionOperator(task_id="chat", prompt="Describe it.", images=["aiml_test_dags.py"])

with _dag("aiml_test_stream"):
    AimlChatCompletionOperator(task_id="chat", prompt=LONG_PROMPT, stream=True)

with _dag("aiml_test_no_stream"):
    AimlChatCompletionOperator(task_id="chat", prompt=LONG_PROMPT)

with _dag("aiml_test_json_object"):
    AimlChatCompletionOperator(
        task_id="chat", prompt="Give me JSON with a summary.", response_format={"type": "json_object"}
    )

with _dag("aiml_test_no_xcom"):
    AimlChatCompletionOperator(task_id="chat", prompt="Hello", do_xcom_push=False)

# A literal temperature=5 would fail this file's import (and every DAG in it); a rendered one fails the task.
with _dag("aiml_test_invalid_param", params={"temperature": 5}, render_template_as_native_obj=True):
    AimlChatCompletionOperator(task_id="chat", prompt="Hello", extra_body={"temperature": "{{ params.temperature }}"})

with _dag("aiml_test_image_from_params", params={"image": "images/bar_chart.png"}):
    AimlChatCompletionOperator(task_id="chat", prompt="Describe it.", images="{{ params.image }}")

with _dag("aiml_test_neither_prompt_nor_messages"):
    AimlChatCompletionOperator(task_id="chat")

with _dag("aiml_test_all_params"):
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="Hello",
        max_completion_tokens=500,
        max_tokens=400,
        temperature=0.7,
        top_p=0.9,
        stop=["END"],
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        seed=42,
        repetition_penalty=1.1,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        tool_choice="none",
        parallel_tool_calls=False,
        extra_body={"enable_thinking": True, "thinking_budget": 256},
    )

with _dag("aiml_test_tool_call"):
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="What is the weather in Oslo?",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                },
            }
        ],
    )


class Invoice(BaseModel):
    """An invoice's key fields."""

    vendor: str
    total: float = Field(ge=0)
    currency: str


with _dag("aiml_test_output_type"):
    AimlChatCompletionOperator(
        task_id="chat", prompt="Extract the invoice: ACME, 12.50 EUR.", output_type=Invoice, max_validation_retries=1
    )

with _dag("aiml_test_deferrable"):
    AimlChatCompletionOperator(task_id="chat", prompt=LONG_PROMPT, deferrable=True)

with _dag("aiml_test_deferrable_output_type"):
    AimlChatCompletionOperator(
        task_id="chat",
        prompt="Extract the invoice: ACME, 12.50 EUR.",
        output_type=Invoice,
        max_validation_retries=1,
        deferrable=True,
    )

with _dag("aiml_test_deferrable_invalid", params={"top_p": 3}, render_template_as_native_obj=True):
    AimlChatCompletionOperator(
        task_id="chat", prompt="Hello", extra_body={"top_p": "{{ params.top_p }}"}, deferrable=True
    )

with _dag("aiml_test_template_kinds", params={"topic": "trams"}):
    AimlChatCompletionOperator(task_id="txt_file", prompt="prompts/plain_prompt.txt")
    AimlChatCompletionOperator(task_id="jinja2_file", prompt="prompts/upper_prompt.jinja2")
    AimlChatCompletionOperator(task_id="sentence", prompt="Summarize the attached notes.txt for {{ params.topic }}")
    AimlChatCompletionOperator(
        task_id="nested",
        messages=[{"role": "user", "content": "Please review config.j2 about {{ params.topic }}"}],
    )

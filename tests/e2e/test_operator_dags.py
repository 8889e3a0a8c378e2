"""Real DAG runs through ``dag.test()`` against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.airflow_env import DAGS_FOLDER

EMULATOR_KEY = "sk-emulator-test-key"
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
USAGE_KEYS = {
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "credits_used",
    "usd_spent",
}


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def run(dagbag: Any, dag_id: str, **kwargs: Any) -> Any:
    return dagbag.dags[dag_id].test(**kwargs)


def xcom(dag_run: Any, key: str, task_id: str = "chat", map_index: int = -1) -> Any:
    """The stored XCom value, read from the table (the ORM's own xcom_pull decodes JSON-looking strings twice)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel.value)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
    return None if row is None else row.value


def xcoms(dag_run: Any, key: str, task_id: str) -> list[Any]:
    """The values of every map index of a mapped task, in map-index order."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel.value)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .order_by(XComModel.map_index)
            .all()
        )
    return [row.value for row in rows]


def state(dag_run: Any, task_id: str = "chat", map_index: int = -1) -> str:
    return dag_run.get_task_instance(task_id, map_index=map_index).state


def sent(emulator: AimlApiEmulator, index: int = -1) -> dict[str, Any]:
    return emulator.chat_requests[index].json


# --- the example DAGs ---------------------------------------------------------------------------------------


def test_summarize_example_hands_content_reasoning_and_usage_downstream(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_summarize")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 1
    body = sent(emulator)
    assert body["model"] == "alibaba/qwen3-vl-32b-thinking"
    assert body["max_completion_tokens"] == 4096
    assert body["messages"][0] == {"role": "system", "content": "You write short, factual summaries."}
    user = body["messages"][1]["content"]
    assert "in at most 3 sentences" in user
    assert "412 million euros" in user

    content = xcom(dag_run, "content", "summarize")
    reasoning = xcom(dag_run, "reasoning", "summarize")
    usage = xcom(dag_run, "usage", "summarize")
    response = xcom(dag_run, "response", "summarize")
    assert content
    assert reasoning
    assert xcom(dag_run, "return_value", "summarize") == content
    assert set(usage) == USAGE_KEYS
    assert usage["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["usd_spent"] == pytest.approx(usage["credits_used"] / 2_000_000)

    header_id = emulator.chat_requests[-1].client_request_id
    assert header_id == response["client_request_id"]
    assert CLIENT_ID_PATTERN.match(header_id)
    assert header_id.startswith("example_aiml_summarize:summarize:manual__")
    assert header_id.endswith(":-1:1")
    assert response["finish_reason"] == "stop"
    assert response["id"].startswith("chatcmpl-")
    assert response["inference_id"]

    assert xcom(dag_run, "summary", "report") == content  # a dict-returning @task pushes one key per item
    assert xcom(dag_run, "reasoning_chars", "report") == len(reasoning)
    assert xcom(dag_run, "usage", "report") == usage


def test_enrichment_example_makes_one_traceable_call_per_record(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_enrichment")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 3
    ids = sorted(r.client_request_id for r in emulator.chat_requests)
    assert [i.rsplit(":", 2)[1] for i in ids] == ["0", "1", "2"]
    assert all(sent(emulator, i)["response_format"]["type"] == "json_schema" for i in range(3))
    result = {key: xcom(dag_run, key, "collect") for key in ("labels", "answers", "total_tokens", "usd_spent")}
    assert len(result["labels"]) == 3
    assert set(result["labels"]) <= {"positive", "neutral", "negative"}
    usages = xcoms(dag_run, "usage", "classify")
    assert len(usages) == 3
    assert result["total_tokens"] == sum(u["total_tokens"] for u in usages) > 0


def test_vision_example_sends_the_local_image_inline(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_vision")

    assert dag_run.state == "success"
    parts = sent(emulator)["messages"][0]["content"]
    image = (DAGS_FOLDER / "images" / "bar_chart.png").read_bytes()
    assert parts[0]["type"] == "text"
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(image).decode()},
    }
    assert "1 image" in xcom(dag_run, "content", "describe_chart")


def test_structured_example_parses_json_for_downstream_use(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_structured")

    assert dag_run.state == "success"
    parsed = xcom(dag_run, "parsed", "extract_invoice")
    assert set(parsed) == {"vendor", "invoice_number", "date", "total", "currency"}
    assert parsed == json.loads(xcom(dag_run, "content", "extract_invoice"))
    assert xcom(dag_run, "invoice", "check_invoice") == parsed
    assert sent(emulator)["response_format"]["json_schema"]["name"] == "invoice"
    assert sent(emulator)["temperature"] == 0.0


# --- templating, messages and images ------------------------------------------------------------------------


def test_prompt_template_file_is_rendered(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_template_file")

    assert dag_run.state == "success"
    ds = dag_run.logical_date.strftime("%Y-%m-%d")
    assert sent(emulator)["messages"] == [
        {"role": "system", "content": "Be brief about tram lines."},
        {"role": "user", "content": f"Write one line about tram lines for the run of {ds}."},
    ]
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    rendered = RenderedTaskInstanceFields.get_templated_fields(dag_run.get_task_instance("chat"))
    assert rendered["prompt"] == f"Write one line about tram lines for the run of {ds}."


def test_messages_model_and_extra_body_are_templated(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_messages")

    assert dag_run.state == "success"
    body = sent(emulator)
    assert body["model"] == "openai/gpt-4o"
    assert body["reasoning_effort"] == "low"
    assert body["messages"][1]["content"] == [{"type": "text", "text": "One sight in Lyon?"}]


def test_urls_pass_through_and_files_go_inline(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_images")

    assert dag_run.state == "success"
    parts = sent(emulator)["messages"][0]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/photo.jpg"}}


@pytest.mark.parametrize(
    ("dag_id", "message"),
    [
        ("aiml_test_missing_image", "image file 'images/no_such_file.png' not found"),
        ("aiml_test_not_an_image", "is not a JPEG, PNG, GIF or WEBP image"),
        (
            "aiml_test_invalid_param",
            "'temperature' must be a number from 0 to 2 for 'alibaba/qwen3-vl-32b-thinking', got 5",
        ),
        ("aiml_test_neither_prompt_nor_messages", "Give exactly one of 'prompt'"),
    ],
)
def test_bad_input_fails_the_task_clearly_without_any_call(dagbag, emulator, capsys, dag_id, message):
    dag_run = run(dagbag, dag_id)

    assert dag_run.state == "failed"
    assert state(dag_run) == "failed"
    assert emulator.chat_requests == []
    assert message in capsys.readouterr().out


def test_every_generation_parameter_is_sent_by_its_api_name(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_all_params")

    assert dag_run.state == "success"
    body = sent(emulator)
    assert {k: v for k, v in body.items() if k not in ("messages", "tools")} == {
        "model": "alibaba/qwen3-vl-32b-thinking",
        "max_completion_tokens": 500,
        "max_tokens": 400,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["END"],
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 42,
        "repetition_penalty": 1.1,
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "enable_thinking": True,
        "thinking_budget": 256,
    }
    assert body["tools"][0]["function"]["name"] == "lookup"


def test_tool_calls_are_reported(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_tool_call")

    assert dag_run.state == "success"
    response = xcom(dag_run, "response")
    assert response["finish_reason"] == "tool_calls"
    assert response["tool_calls"][0]["function"]["name"] == "get_weather"
    assert "city" in json.loads(response["tool_calls"][0]["function"]["arguments"])


# --- streaming ----------------------------------------------------------------------------------------------


def test_streaming_gives_the_same_xcom_values_and_logs_while_arriving(dagbag, emulator, capsys):
    emulator.settings.stream_cost = True  # the cost then comes in the last chunk, so the usage can be compared
    plain = run(dagbag, "aiml_test_no_stream")
    capsys.readouterr()
    streamed = run(dagbag, "aiml_test_stream")
    out = capsys.readouterr().out

    assert plain.state == streamed.state == "success"
    assert sent(emulator)["stream"] is True
    for key in ("content", "reasoning", "return_value"):
        assert xcom(streamed, key) == xcom(plain, key)
    plain_usage, streamed_usage = xcom(plain, "usage"), xcom(streamed, "usage")
    assert streamed_usage == plain_usage
    reasoning_lines = [line for line in out.splitlines() if "[reasoning]" in line]
    answer_lines = [line for line in out.splitlines() if "[answer]" in line]
    assert reasoning_lines
    assert answer_lines
    # Logged by line or interval, not per token: far fewer records than words streamed.
    words = len(xcom(streamed, "content").split()) + len(xcom(streamed, "reasoning").split())
    assert words >= 40
    assert len(reasoning_lines) + len(answer_lines) <= words // 10


def test_a_cut_stream_is_retried_and_still_succeeds(dagbag, emulator):
    emulator.add_fault(Fault.cut_stream(after_chunks=3))
    dag_run = run(dagbag, "aiml_test_stream")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 2
    assert xcom(dag_run, "content")


# --- JSON output, XCom switches, retries --------------------------------------------------------------------


def test_json_output_is_parsed(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_json_object")

    assert dag_run.state == "success"
    assert xcom(dag_run, "parsed") == json.loads(xcom(dag_run, "content"))


def test_undecodable_json_fails_the_task_but_keeps_the_raw_answer(dagbag, emulator, capsys):
    emulator.set_reply(content="Sure! Here is your JSON: {summary: nope")
    dag_run = run(dagbag, "aiml_test_json_object")

    assert dag_run.state == "failed"
    assert xcom(dag_run, "content") == "Sure! Here is your JSON: {summary: nope"
    assert xcom(dag_run, "usage")["total_tokens"] > 0
    assert xcom(dag_run, "parsed") is None
    assert "asked for JSON but its answer does not decode" in capsys.readouterr().out


def test_do_xcom_push_false_pushes_nothing(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_no_xcom")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 1
    for key in ("return_value", "content", "reasoning", "usage", "response"):
        assert xcom(dag_run, key) is None


def test_transient_errors_are_retried_inside_the_task(dagbag, emulator, retry_waits):
    emulator.add_fault(Fault.status(429, retry_after=3), times=1)
    emulator.add_fault(Fault.status(502, body="html"), times=1)
    dag_run = run(dagbag, "aiml_test_no_stream")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 3
    assert retry_waits[0] == 3.0
    assert len({r.client_request_id for r in emulator.chat_requests}) == 1


def test_out_of_credits_is_not_retried(dagbag, emulator, capsys):
    emulator.add_fault(Fault.status(403), times=5)
    dag_run = run(dagbag, "aiml_test_no_stream")

    assert dag_run.state == "failed"
    assert len(emulator.chat_requests) == 1
    assert "run out of credits" in capsys.readouterr().out


# --- the key never leaks ------------------------------------------------------------------------------------


def test_the_api_key_appears_in_no_log_xcom_or_rendered_field(dagbag, emulator, capsys):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    emulator.add_fault(Fault.status(401, body="problem"), times=1)
    failed = run(dagbag, "aiml_test_no_stream")
    ok = run(dagbag, "example_aiml_summarize")
    captured = capsys.readouterr()

    assert failed.state == "failed"
    assert ok.state == "success"
    assert emulator.chat_requests[-1].headers["authorization"] == f"Bearer {EMULATOR_KEY}"
    with create_session() as session:
        xcoms = [json.dumps(row.value, default=str) for row in session.query(XComModel).all()]
        rendered = [
            json.dumps(row.rendered_fields, default=str) for row in session.query(RenderedTaskInstanceFields).all()
        ]
    assert xcoms
    assert rendered
    leaks = [text for text in [captured.out, captured.err, *xcoms, *rendered] if EMULATOR_KEY in text]
    assert leaks == []


def test_txt_and_jinja2_files_are_templates_but_sentences_ending_like_files_are_text(dagbag, emulator):
    dag_run = run(dagbag, "aiml_test_template_kinds")

    assert dag_run.state == "success"
    sent_by_task = {
        r.client_request_id.split(":")[1]: r.json["messages"][-1]["content"] for r in emulator.chat_requests
    }
    assert sent_by_task["txt_file"] == "Plain-text template for trams."
    assert sent_by_task["jinja2_file"] == "Jinja2 template: TRAMS"
    assert sent_by_task["sentence"] == "Summarize the attached notes.txt for trams"
    assert sent_by_task["nested"] == "Please review config.j2 about trams"

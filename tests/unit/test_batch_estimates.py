"""Cost estimates before the first call (batch, chat, agent), ``max_cost_usd`` refused before the start, the batch's
dry run, and the reconciliation of a finished batch with ``GET /v2/logs``.

Over a mocked HTTP layer (respx); the catalog item of the model is served with a price (each unit read with its
``per``) and an ``outputMax``, and no ``docsJson``, so the seed model's built-in ranges apply. The numbers the
tests expect are worked out here from the catalog's prices, not taken from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import respx

from airflow_provider_aiml.exceptions import AimlBatchError, AimlFileError, AimlParameterError
from airflow_provider_aiml.models import DEFAULT_MODEL, format_usd
from airflow_provider_aiml.operators.batch import AimlBatchChatCompletionOperator

pytestmark = pytest.mark.catalog

ROOT = "https://api.test.invalid"
CHAT_URL = f"{ROOT}/v1/chat/completions"
CATALOG_URL = f"{ROOT}/model/{DEFAULT_MODEL}?include=all"
LOGS_URL = f"{ROOT}/v2/logs"
PREFIX = "dag:enrich:run:-1:1"
"""The client request id prefix of the task below (DAG, task, run, map index, try)."""
IN_PRICE = {"name": "token", "measure": "input", "price": 0.5, "per": 1000}
OUT_PRICE = {"name": "token", "measure": "output", "price": 2, "per": 1000}
IN_RATE, OUT_RATE = 0.5 / 1000, 2 / 1000  # USD per token: the price over its ``per``
CONTEXT = 131_072
OUTPUT_MAX = 32_768
RECORDS = ["the river Thames at dawn", "a small harbour town", "an old stone bridge"]
PROMPT = "Describe {{ record }} in two sentences, please."


def catalog_item(*, priced: bool = True, **info: Any) -> httpx.Response:
    item: dict[str, Any] = {
        "id": DEFAULT_MODEL,
        "type": "openai/chat-completions",
        "info": {"contextLength": CONTEXT, "outputMax": OUTPUT_MAX, **info},
    }
    if priced:
        item["pricing"] = {"kind": "fixed", "currency": "USD", "units": [IN_PRICE, OUT_PRICE]}
    return httpx.Response(200, json={"object": "model", "data": item})


def answer(usd: float = 0.00001, content: str = "Fine.") -> httpx.Response:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3-vl-32b-thinking",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    headers = {"x-aimlapi-usd-spent": str(usd), "x-aimlapi-credits-used": str(round(usd * 2_000_000))}
    return httpx.Response(200, json=body, headers=headers)


def log_row(client_request_id: str, usd: float, n: int = 0, status: str = "succeeded") -> dict[str, Any]:
    return {
        "created": f"2030-01-01T00:00:{n % 60:02d}Z",
        "status": status,
        "origin": "api",
        "model": DEFAULT_MODEL,
        "cost": {"usd": usd, "credits": round(usd * 2_000_000)},
        "tokens": {"input": 12, "output": 3, "total": 15},
        "request_id": f"req-{n}",
        "inference_id": f"inf-{n}",
        "client_request_id": client_request_id,
    }


def logs_page(rows: list[dict[str, Any]]) -> httpx.Response:
    pagination = {"limit": 100, "offset": 0, "total": len(rows), "has_more": False}
    return httpx.Response(200, json={"data": rows, "pagination": pagination})


def batch(**kwargs: Any) -> AimlBatchChatCompletionOperator:
    kwargs.setdefault("inputs", RECORDS)
    kwargs.setdefault("prompt", PROMPT)
    return AimlBatchChatCompletionOperator(task_id="enrich", concurrency=1, **kwargs)


def context() -> tuple[dict[str, Any], mock.Mock]:
    ti = mock.Mock(dag_id="dag", task_id="enrich", run_id="run", map_index=-1, try_number=1)
    return {"ti": ti}, ti


def pushed(ti: mock.Mock) -> dict[str, Any]:
    return {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def sent_ids(route: respx.Route) -> list[str]:
    return [call.request.headers["x-client-request-id"] for call in route.calls]


# --- the expected numbers, from the prices ------------------------------------------------------------------


def text_range(text: str, completion: int) -> tuple[int, int, float, float]:
    """A one-message call's prompt tokens (8 characters a token at least, a token per byte plus 8 for the
    message at most) and its cost range (1 completion token at least, ``completion`` at most)."""
    low, high = len(text) // 8, 8 + len(text.encode())
    return low, high, round(low * IN_RATE + OUT_RATE, 7), round(high * IN_RATE + completion * OUT_RATE, 7)


def expected(texts: list[str], completion: int) -> tuple[int, int, float, float]:
    ranges = [text_range(text, completion) for text in texts]
    return (
        sum(r[0] for r in ranges),
        sum(r[1] for r in ranges),
        round(sum(r[2] for r in ranges), 7),
        round(sum(r[3] for r in ranges), 7),
    )


def prompts(records: list[str] = RECORDS) -> list[str]:
    return [f"Describe {record} in two sentences, please." for record in records]


# --- the estimate line --------------------------------------------------------------------------------------


def test_the_batch_logs_its_estimate_before_the_first_call(capsys):
    low, high, low_usd, high_usd = expected(prompts(), 200)
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        batch(max_completion_tokens=200).execute(ctx)
    assert chat.call_count == 3
    assert catalog.call_count == 1  # the estimate reads the entry the checks already read
    out = logged(capsys)
    [line] = [line for line in out.splitlines() if "Cost estimate of" in line]
    assert (
        f"Cost estimate of 3 records to {DEFAULT_MODEL}: {format_usd(low_usd)} to {format_usd(high_usd)} for 3 calls "
        f"(prompt {low:,}-{high:,} tokens, completion up to 600), at $500 in / $2000 out per 1M tokens"
    ) in line
    assert out.index("Cost estimate of") < out.index("Batch of 3 records")  # before the runner starts
    assert "billed_usd" not in pushed(ti)["usage"]  # no reconciliation unless asked


def test_without_a_completion_limit_the_models_output_max_bounds_the_estimate(capsys):
    low, high, low_usd, high_usd = expected(prompts(), OUTPUT_MAX)
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        api.post(CHAT_URL).mock(return_value=answer())
        batch().execute(context()[0])
    assert (
        f": {format_usd(low_usd)} to {format_usd(high_usd)} for 3 calls (prompt {low:,}-{high:,} tokens, "
        f"completion up to {3 * OUTPUT_MAX:,})"
    ) in logged(capsys)


def test_file_records_count_their_text_low_and_the_context_length_high(tmp_path, capsys):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 16), "white").save(tmp_path / name)
    texts = [f"Read {name}." for name in ("a.png", "b.png")]
    low = sum(len(text) // 8 for text in texts)
    low_usd = round(sum(round((len(t) // 8) * IN_RATE + OUT_RATE, 7) for t in texts), 7)
    high_usd = round(2 * round(CONTEXT * IN_RATE + 100 * OUT_RATE, 7), 7)
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        batch(inputs=str(tmp_path / "*.png"), prompt="Read {{ record.name }}.", max_completion_tokens=100).execute(
            context()[0]
        )
    assert chat.call_count == 2
    [line] = [line for line in logged(capsys).splitlines() if "Cost estimate of" in line]
    assert (
        f"{format_usd(low_usd)} to {format_usd(high_usd)} for 2 calls (prompt {low:,}-{2 * CONTEXT:,} tokens, "
        "completion up to 200)"
    ) in line
    assert "the attachments of 2 file records are not read yet" in line
    assert f"up to the model's {CONTEXT:,}-token context length (dry_run=True reads them)" in line


def test_without_a_price_the_line_says_so_and_the_budget_waits_for_the_run(capsys):
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item(priced=False))
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.001))
        with pytest.raises(AimlBatchError, match="the cost budget of \\$1e-06 would be passed"):
            batch(max_cost_usd=0.000001).execute(context()[0])
    assert chat.call_count == 1  # not refused before the start: the first call tells the cost
    out = logged(capsys)
    assert "unknown cost (no catalog price) for 3 calls" in out
    assert f"no price: the catalog gives no per-token price for {DEFAULT_MODEL}" in out
    assert "max_cost_usd=$1e-06 is enforced during the run, from each answer's cost" in out


# --- max_cost_usd before the start --------------------------------------------------------------------------


def test_a_low_estimate_over_max_cost_usd_is_refused_before_any_call():
    _, _, low_usd, _ = expected(prompts(), 200)
    cap = round(low_usd * 0.9, 6)
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlParameterError) as refused:
            batch(max_cost_usd=cap, max_completion_tokens=200).execute(context()[0])
    assert chat.call_count == 0
    message = refused.value.message
    assert f"max_cost_usd=${cap:g}" in message
    assert f"the 3 records to run cost at least ${low_usd:.6f}" in message
    assert "Nothing was sent" in message
    assert isinstance(refused.value, AimlParameterError)  # permanent: Airflow does not retry it


def test_a_low_estimate_under_max_cost_usd_starts(capsys):
    _, _, low_usd, _ = expected(prompts(), 200)
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.0000005))
        batch(max_cost_usd=low_usd * 1.5, max_completion_tokens=200).execute(context()[0])
    assert chat.call_count == 3


def test_the_spend_of_resumed_records_counts_against_max_cost_usd(tmp_path):
    checkpoint = str(tmp_path / "ck.jsonl")

    def first_run(request: httpx.Request) -> httpx.Response:
        content = json.loads(request.content)["messages"][0]["content"]
        return answer(usd=0.01) if RECORDS[2] not in content else httpx.Response(400, json={"message": "bad"})

    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        api.post(CHAT_URL).mock(side_effect=first_run)
        batch(max_completion_tokens=200, checkpoint_path=checkpoint, on_error="continue").execute(context()[0])

    _, _, low_usd, _ = expected(prompts(RECORDS[2:]), 200)  # the one record left to run
    cap = round(low_usd + 0.01, 6)  # over the record's low estimate alone, under it with the $0.02 spent
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlParameterError) as refused:
            batch(max_completion_tokens=200, checkpoint_path=checkpoint, max_cost_usd=cap).execute(context()[0])
    assert chat.call_count == 0
    assert f"the 1 record to run cost at least ${low_usd:.6f}" in refused.value.message
    assert "plus $0.020000 already spent on the 2 records resumed from the checkpoint" in refused.value.message


# --- dry runs -----------------------------------------------------------------------------------------------


def test_a_dry_run_sends_nothing_and_returns_the_estimate(tmp_path, capsys):
    low, high, low_usd, high_usd = expected(prompts(), 200)
    ctx, ti = context()
    output = tmp_path / "out.jsonl"
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        returned = batch(dry_run=True, max_completion_tokens=200, output_path=str(output)).execute(ctx)
    assert chat.call_count == 0
    assert returned == {
        "calls": 3,
        "prompt_tokens_low": low,
        "prompt_tokens_high": high,
        "completion_tokens_high": 600,
        "low_usd": low_usd,
        "high_usd": high_usd,
        "model": DEFAULT_MODEL,
        "records": 3,
        "resumed": 0,
        "price_per_1m_input_usd": 500.0,
        "price_per_1m_output_usd": 2000.0,
        "dry_run": True,
        "max_cost_usd": None,
    }
    values = pushed(ti)
    assert values == {"estimate": returned}  # no usage, batch or results
    assert not output.exists()
    assert not Path(f"{output}.progress.jsonl").exists()  # nor a checkpoint
    assert "Dry run, nothing is sent. Cost estimate of 3 records" in logged(capsys)


def test_a_dry_run_reads_every_file_and_counts_its_image(tmp_path):
    from PIL import Image

    from airflow_provider_aiml.catalog.estimate import IMAGE_TOKENS_AT_MOST

    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 16), "white").save(tmp_path / name)
    texts = [f"Read {name}." for name in ("a.png", "b.png")]
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        estimate = batch(
            inputs=str(tmp_path / "*.png"), prompt="Read {{ record.name }}.", max_completion_tokens=100, dry_run=True
        ).execute(context()[0])
    assert chat.call_count == 0
    high = sum(8 + len(text.encode()) + IMAGE_TOKENS_AT_MOST for text in texts)  # each file read: one image
    assert (estimate["prompt_tokens_low"], estimate["prompt_tokens_high"]) == (sum(len(t) // 8 for t in texts), high)
    assert estimate["high_usd"] == round(
        sum(round((8 + len(t.encode()) + IMAGE_TOKENS_AT_MOST) * IN_RATE + 100 * OUT_RATE, 7) for t in texts), 7
    )


def test_a_dry_run_fails_naming_the_file_record_that_fails_its_checks(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16), "white").save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image at all")
    (tmp_path / "c.png").write_bytes(b"nor this one")
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlFileError) as failed:
            batch(inputs=str(tmp_path / "*.png"), prompt="Read {{ record.name }}.", dry_run=True).execute(context()[0])
    assert chat.call_count == 0
    message = failed.value.message
    assert message.startswith(f"record 1 ({tmp_path / 'b.png'}): file ")
    assert "is not a JPEG, PNG, GIF or WEBP image" in message
    assert message.endswith("(1 more fail too: record 2)")


def test_a_dry_run_fails_on_images_the_model_cannot_take(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16), "white").save(tmp_path / "a.png")
    with respx.mock(assert_all_called=False) as api:
        item = {"id": DEFAULT_MODEL, "capabilities": ["chat"]}  # no vision among the capabilities listed
        api.get(CATALOG_URL).mock(return_value=httpx.Response(200, json={"object": "model", "data": item}))
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlParameterError, match=r"^record 0 \(.*a\.png\): .* does not take images"):
            batch(inputs=str(tmp_path / "*.png"), prompt="Read it.", dry_run=True).execute(context()[0])
    assert chat.call_count == 0


def test_a_dry_run_fails_naming_a_record_whose_template_fails():
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlParameterError, match=r"^record 1: the template failed to render"):
            batch(inputs=[{"name": "Ada"}, {}], prompt="Describe {{ record.name.upper() }}.", dry_run=True).execute(
                context()[0]
            )
    assert chat.call_count == 0


def test_a_dry_run_over_max_cost_usd_fails_after_pushing_its_estimate():
    _, _, low_usd, _ = expected(prompts(), 200)
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        with pytest.raises(AimlParameterError, match="would pass max_cost_usd"):
            batch(dry_run=True, max_cost_usd=low_usd / 2, max_completion_tokens=200).execute(ctx)
    assert chat.call_count == 0
    assert pushed(ti)["estimate"]["low_usd"] == low_usd


# --- reconciliation -----------------------------------------------------------------------------------------


def test_reconcile_billing_sets_usage_billed_usd_and_logs_the_difference(capsys):
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.00001))
        logs = api.get(url__startswith=LOGS_URL).mock(
            side_effect=lambda request: logs_page(
                [log_row(f"unrelated-{n}", 0.5, 90 + n) for n in range(2)]
                + [log_row(rid, 0.0000125, n) for n, rid in enumerate(sent_ids(chat))]
            )
        )
        batch(reconcile_billing=True).execute(ctx)
    assert sent_ids(chat) == [f"{PREFIX}:r{i}" for i in range(3)]
    assert logs.call_count == 1
    query = logs.calls[0].request.url.params
    assert query["start"] < query["end"]
    usage = pushed(ti)["usage"]
    assert usage["usd_spent"] == pytest.approx(0.00003)
    assert (usage["billed_usd"], usage["billed_credits"], usage["billed_calls"]) == (0.0000375, 75, 3)
    assert usage["unbilled_client_request_ids"] == 0
    out = logged(capsys)
    [line] = [line for line in out.splitlines() if "Billing reconciled for 3 client request ids" in line]
    assert "recorded $0.0000300, billed $0.0000375 (75 credits, 3 rows, 0 failed), difference +0.0000075 USD" in line
    assert "[warning" in line  # the difference is over $0.000001


def test_reconcile_billing_agrees_quietly_when_the_bill_matches(capsys):
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.00001))
        api.get(url__startswith=LOGS_URL).mock(
            side_effect=lambda request: logs_page([log_row(rid, 0.00001, n) for n, rid in enumerate(sent_ids(chat))])
        )
        batch(reconcile_billing=True).execute(ctx)
    assert pushed(ti)["usage"]["billed_usd"] == 0.00003
    [line] = [line for line in logged(capsys).splitlines() if "Billing reconciled" in line]
    assert "difference +0.0000000 USD; 0 ids not found" in line
    assert "[info" in line


def test_reconcile_billing_reads_again_while_rows_are_missing(capsys, retry_waits):
    ctx, ti = context()
    reads: list[int] = []

    def serve_logs(request: httpx.Request) -> httpx.Response:
        reads.append(1)
        ids = sent_ids(chat)
        shown = ids[:-1] if len(reads) == 1 else ids  # the last call's charge lands after the first read
        return logs_page([log_row(rid, 0.00001, n) for n, rid in enumerate(shown)])

    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.00001))
        api.get(url__startswith=LOGS_URL).mock(side_effect=serve_logs)
        batch(reconcile_billing=True).execute(ctx)
    assert len(reads) == 2
    assert retry_waits == [2.0]  # through the hook's sleep
    usage = pushed(ti)["usage"]
    assert (usage["billed_usd"], usage["billed_calls"], usage["unbilled_client_request_ids"]) == (0.00003, 3, 0)
    out = logged(capsys)
    assert "1 of 3 client request ids not in GET /v2/logs yet; reading again in 2s" in out
    assert "(2 reads of GET /v2/logs)" in out


def test_reconcile_billing_gives_up_after_its_timeout_and_says_which_ids_are_missing(capsys, retry_waits):
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.00001))
        logs = api.get(url__startswith=LOGS_URL).mock(
            side_effect=lambda request: logs_page(
                [log_row(rid, 0.00001, n) for n, rid in enumerate(sent_ids(chat)[1:])]
            )
        )
        batch(reconcile_billing=True, reconcile_timeout=10).execute(ctx)
    assert retry_waits == [2.0, 4.0, 4.0]  # 10 s in all, the last wait cut to what was left
    assert logs.call_count == 4
    usage = pushed(ti)["usage"]
    assert (usage["billed_usd"], usage["billed_calls"], usage["unbilled_client_request_ids"]) == (0.00002, 2, 1)
    [line] = [line for line in logged(capsys).splitlines() if "Billing reconciled" in line]
    assert f"1 ids not found after 10s (first: {PREFIX}:r0)" in line


@pytest.mark.parametrize("status", [500, 429])
def test_a_failed_reconciliation_does_not_fail_the_batch(capsys, status):
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.00001))
        api.get(url__startswith=LOGS_URL).mock(return_value=httpx.Response(status, json={"message": "down"}))
        results = batch(reconcile_billing=True).execute(ctx)
    assert chat.call_count == 3
    assert [item["content"] for item in results] == ["Fine."] * 3
    usage = pushed(ti)["usage"]
    assert usage["billed_usd"] is None
    assert usage["usd_spent"] == pytest.approx(0.00003)
    assert "Billing reconciliation failed" in logged(capsys)


def test_a_stopped_batch_is_reconciled_and_keeps_its_results(capsys):
    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(CATALOG_URL).mock(return_value=catalog_item(priced=False))
        chat = api.post(CHAT_URL).mock(return_value=answer(usd=0.001))
        api.get(url__startswith=LOGS_URL).mock(
            side_effect=lambda request: logs_page([log_row(rid, 0.001, n) for n, rid in enumerate(sent_ids(chat))])
        )
        with pytest.raises(AimlBatchError, match="Batch stopped"):
            batch(reconcile_billing=True, max_cost_usd=0.0015).execute(ctx)
    values = pushed(ti)
    assert values["usage"]["billed_usd"] == round(0.001 * chat.call_count, 7)
    assert values["usage"]["billed_calls"] == chat.call_count
    assert sum(1 for item in values["return_value"] if item["content"]) == chat.call_count


def test_reconcile_billing_counts_the_fallbacks_and_reasks_sent():
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    replies = iter([answer(content="not json"), answer(content='{"name": "Oslo"}')])

    def serve_chat(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["model"] == DEFAULT_MODEL:
            return httpx.Response(503, json={"message": "overloaded"})
        return next(replies)

    ctx, ti = context()
    with respx.mock(assert_all_called=False) as api:
        api.get(url__startswith=f"{ROOT}/model/").mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(side_effect=serve_chat)
        api.get(url__startswith=LOGS_URL).mock(
            side_effect=lambda request: logs_page(
                [log_row(rid, 0.0 if n % 2 == 0 else 0.00001, n) for n, rid in enumerate(sent_ids(chat))]
            )
        )
        batch(
            inputs=["Oslo"],
            reconcile_billing=True,
            output_type=City,
            max_validation_retries=1,
            fallback_models=["openai/gpt-4o"],
        ).execute(ctx)
    ids = set(sent_ids(chat))
    assert {f"{PREFIX}:r0", f"{PREFIX}:r0:f1"} <= ids
    assert any(i.startswith(f"{PREFIX}:r0:v1") for i in ids)
    assert pushed(ti)["usage"]["billed_calls"] == len(chat.calls)


# --- chat and agent -----------------------------------------------------------------------------------------


def test_the_chat_operator_logs_the_estimate_of_its_call(capsys):
    from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator

    text = "Summarize the history of the river Thames."
    low, high, low_usd, high_usd = text_range(text, 300)
    with respx.mock(assert_all_called=False) as api:
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_item())
        api.post(CHAT_URL).mock(return_value=answer())
        AimlChatCompletionOperator(task_id="chat", prompt=text, max_completion_tokens=300).execute(context()[0])
    assert catalog.call_count == 1
    out = logged(capsys)
    assert (
        f"Cost estimate of the call to {DEFAULT_MODEL}: {format_usd(low_usd)} to {format_usd(high_usd)} for 1 call "
        f"(prompt {low:,}-{high:,} tokens, completion up to 300), at $500 in / $2000 out per 1M tokens"
    ) in out
    assert out.index("Cost estimate of the call") < out.index("Calling the AI/ML API")


def test_the_agent_logs_the_estimate_of_its_first_step(capsys):
    from airflow_provider_aiml.operators.agent import AimlAgentOperator

    def lookup(city: str) -> str:
        """The weather of a city."""
        return f"sunny in {city}"

    text = "What is the weather in Oslo?"
    low, high, low_usd, high_usd = text_range(text, 500)
    with respx.mock(assert_all_called=False) as api:
        catalog = api.get(CATALOG_URL).mock(return_value=catalog_item())
        chat = api.post(CHAT_URL).mock(return_value=answer())
        AimlAgentOperator(task_id="agent", prompt=text, tools=[lookup], max_completion_tokens=500).execute(context()[0])
    assert chat.call_count == 1
    assert catalog.call_count == 1
    [line] = [line for line in logged(capsys).splitlines() if "Cost estimate of" in line]
    assert "Cost estimate of the first agent step (per step: " in line
    assert (
        f"to {DEFAULT_MODEL}: {format_usd(low_usd)} to {format_usd(high_usd)} for 1 call "
        f"(prompt {low:,}-{high:,} tokens, completion up to 500), at $500 in / $2000 out per 1M tokens"
    ) in line

"""``GET /v2/logs``: one row per chat or embeddings request of a key, newest first, paged and filtered; its
query checks, its rate limit, and how ``reset`` clears it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
ROW_KEYS = {
    "created",
    "status",
    "origin",
    "model",
    "cost",
    "tokens",
    "request_id",
    "inference_id",
    "client_request_id",
}
SEED = "alibaba/qwen3-vl-32b-thinking"


def _chat(model: str, text: str = "Hello there, how are you?", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _logs(http: httpx.Client, emulator: AimlApiEmulator, **params: Any) -> httpx.Response:
    return http.get(f"{emulator.url}/v2/logs", params=params)


def _page(http: httpx.Client, emulator: AimlApiEmulator, **params: Any) -> dict[str, Any]:
    response = _logs(http, emulator, **params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def two_keys() -> Iterator[AimlApiEmulator]:
    with AimlApiEmulator(api_keys={"sk-good", "sk-other"}) as emu:
        yield emu


@pytest.fixture
def history(client: httpx.Client, body: Body) -> list[httpx.Response]:
    """Three chats (client request ids a, b, c) and one refused with 400, in that order."""
    answers = [
        client.post("/chat/completions", json=body(text="First question?"), headers={"X-Client-Request-Id": "a"}),
        client.post("/chat/completions", json=_chat("gpt-4o"), headers={"X-Client-Request-Id": "b"}),
        client.post("/chat/completions", json=_chat("alibaba/qwen3-32b"), headers={"X-Client-Request-Id": "c"}),
        client.post("/chat/completions", json=body(temperature=5), headers={"X-Client-Request-Id": "bad"}),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 400]
    return answers


# ------------------------------------------------------------------------------ rows


def test_rows_are_listed_newest_first_with_their_costs_and_ids(
    client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response]
) -> None:
    before = datetime.now(UTC)
    page = _page(client, emulator, period="1h")
    assert page["pagination"] == {"limit": 20, "offset": 0, "total": 4, "has_more": False}
    rows = page["data"]
    assert len(rows) == 4
    assert all(set(row) == ROW_KEYS for row in rows)
    assert all(row["origin"] == "api" for row in rows)
    created = [datetime.fromisoformat(row["created"].replace("Z", "+00:00")) for row in rows]
    assert created == sorted(created, reverse=True)
    assert all(row["created"].endswith("Z") for row in rows)
    assert all(before - timedelta(minutes=1) < moment <= before for moment in created)

    failed, *succeeded = rows
    assert failed["status"] == "failed"
    assert failed["model"] == SEED
    assert failed["cost"] == {"usd": 0.0, "credits": 0}
    assert failed["tokens"] == {"input": 0, "output": 0, "total": 0}
    assert failed["client_request_id"] == "bad"
    assert failed["request_id"] == history[3].headers["x-request-id"]
    assert failed["inference_id"] == history[3].headers["x-inference-id"]

    assert [row["client_request_id"] for row in succeeded] == ["c", "b", "a"]
    assert [row["model"] for row in succeeded] == ["alibaba/qwen3-32b", "openai/gpt-4o", SEED]
    total_credits = 0
    for row, answer in zip(succeeded, reversed(history[:3]), strict=True):
        usage = answer.json()["usage"]
        credits = int(answer.headers["x-aimlapi-credits-used"])
        total_credits += credits
        assert row["status"] == "succeeded"
        assert row["cost"]["credits"] == credits
        assert row["cost"]["usd"] == pytest.approx(credits / 2_000_000)
        assert row["tokens"] == {
            "input": usage["prompt_tokens"],
            "output": usage["completion_tokens"],
            "total": usage["total_tokens"],
        }
        assert row["request_id"] == answer.headers["x-request-id"]
        assert row["inference_id"] == answer.headers["x-inference-id"]
        assert row["client_request_id"] == answer.headers["x-client-request-id"]
    assert total_credits == emulator.credits_used
    assert [row.client_request_id for row in emulator.usage_rows("sk-good")] == ["a", "b", "c", "bad"]


def test_an_invalid_client_request_id_is_logged_as_none(
    client: httpx.Client, emulator: AimlApiEmulator, body: Body
) -> None:
    client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "has space"})
    client.post("/chat/completions", json=body())
    rows = _page(client, emulator, period="24h")["data"]
    assert [row["client_request_id"] for row in rows] == [None, None]


def test_paging(client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response]) -> None:
    everything = _page(client, emulator, period="1h")["data"]
    first = _page(client, emulator, period="1h", limit=2, offset=0)
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 4, "has_more": True}
    assert first["data"] == everything[:2]
    second = _page(client, emulator, period="1h", limit=2, offset=2)
    assert second["pagination"] == {"limit": 2, "offset": 2, "total": 4, "has_more": False}
    assert second["data"] == everything[2:]
    middle = _page(client, emulator, period="1h", limit=1, offset=1)
    assert middle["data"] == everything[1:2]
    assert middle["pagination"]["has_more"] is True
    beyond = _page(client, emulator, period="1h", limit=100, offset=10)
    assert beyond == {"data": [], "pagination": {"limit": 100, "offset": 10, "total": 4, "has_more": False}}


def test_status_filter(client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response]) -> None:
    failed = _page(client, emulator, period="1h", status="failed")
    assert failed["pagination"]["total"] == 1
    assert [row["client_request_id"] for row in failed["data"]] == ["bad"]
    succeeded = _page(client, emulator, period="1h", status="succeeded")
    assert [row["client_request_id"] for row in succeeded["data"]] == ["c", "b", "a"]
    both = _page(client, emulator, period="1h", status=["succeeded", "failed"])
    assert both["pagination"]["total"] == 4
    assert _logs(client, emulator, period="1h", status="pending").status_code == 400


def test_model_filter(client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response]) -> None:
    one = _page(client, emulator, period="1h", model="openai/gpt-4o")
    assert [row["client_request_id"] for row in one["data"]] == ["b"]
    two = _page(client, emulator, period="1h", model=["openai/gpt-4o", "alibaba/qwen3-32b"])
    assert [row["client_request_id"] for row in two["data"]] == ["c", "b"]
    assert two["pagination"]["total"] == 2
    seed = _page(client, emulator, period="1h", model=SEED.upper())
    assert [row["client_request_id"] for row in seed["data"]] == ["bad", "a"]
    seed_failed = _page(client, emulator, period="1h", model=SEED, status="failed")
    assert [row["client_request_id"] for row in seed_failed["data"]] == ["bad"]
    assert _page(client, emulator, period="1h", model="acme/none")["pagination"]["total"] == 0


def test_a_key_sees_only_its_own_rows(client_for: ClientFor, two_keys: AimlApiEmulator, body: Body) -> None:
    good, other = client_for(two_keys), client_for(two_keys, key="sk-other")
    assert good.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "mine"}).status_code == 200
    assert good.post("/chat/completions", json=body(temperature=5)).status_code == 400
    assert client_for(two_keys, key="sk-wrong").post("/chat/completions", json=body()).status_code == 401

    assert _page(other, two_keys, period="1h") == {
        "data": [],
        "pagination": {"limit": 20, "offset": 0, "total": 0, "has_more": False},
    }
    assert _page(good, two_keys, period="1h")["pagination"]["total"] == 2
    assert other.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "theirs"}).status_code == 200
    assert [row["client_request_id"] for row in _page(other, two_keys, period="1h")["data"]] == ["theirs"]
    assert [row["client_request_id"] for row in _page(good, two_keys, period="1h")["data"]] == [None, "mine"]
    assert two_keys.usage_rows("sk-wrong") == []


def test_logs_need_a_valid_key(client_for: ClientFor, emulator: AimlApiEmulator) -> None:
    for key in (None, "", "sk-wrong"):
        response = _logs(client_for(emulator, key=key), emulator, period="1h")
        assert response.status_code == 401, key
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["instance"] == "/v2/logs"


@pytest.mark.parametrize(
    "params",
    [
        {"period": "bogus"},
        {"period": "0h"},
        {"period": "1w"},
        {"period": "93d"},
        {"period": "2209h"},
        {"period": "1h", "limit": "0"},
        {"period": "1h", "limit": "101"},
        {"period": "1h", "limit": "-1"},
        {"period": "1h", "limit": "ten"},
        {"period": "1h", "offset": "-1"},
        {"period": "1h", "start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"},
        {"period": "1h", "start": "2025-01-01T00:00:00Z"},
        {"start": "2025-01-01T00:00:00Z"},
        {"start": "yesterday", "end": "today"},
        {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-04-04T00:00:00Z"},
        {},
    ],
    ids=str,
)
def test_bad_queries_are_400(client: httpx.Client, emulator: AimlApiEmulator, params: dict[str, str]) -> None:
    response = _logs(client, emulator, **params)
    assert response.status_code == 400
    error = response.json()
    assert error["statusCode"] == "400"
    assert error["path"] == "/v2/logs"
    assert error["message"]


@pytest.mark.parametrize("params", [{"period": "92d"}, {"period": "2208h"}, {"period": "1h", "limit": "100"}], ids=str)
def test_edge_queries_are_taken(client: httpx.Client, emulator: AimlApiEmulator, params: dict[str, str]) -> None:
    assert _logs(client, emulator, **params).status_code == 200


def test_a_start_end_window(client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response]) -> None:
    now = datetime.now(UTC)
    past = {"start": (now - timedelta(hours=3)).isoformat(), "end": (now - timedelta(hours=2)).isoformat()}
    page = _page(client, emulator, **past)
    assert page == {"data": [], "pagination": {"limit": 20, "offset": 0, "total": 0, "has_more": False}}
    future = {"start": (now + timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=2)).isoformat()}
    assert _page(client, emulator, **future)["pagination"]["total"] == 0

    around = {
        "start": (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "end": (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    }
    assert _page(client, emulator, **around)["pagination"]["total"] == 4
    naive = {
        "start": (now - timedelta(minutes=5)).replace(tzinfo=None).isoformat(),
        "end": (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat(),
    }
    assert _page(client, emulator, **naive)["pagination"]["total"] == 4  # naive times are UTC
    offset = {
        "start": (now - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2))).isoformat(),
        "end": (now + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-5))).isoformat(),
    }
    assert _page(client, emulator, **offset)["pagination"]["total"] == 4


# ------------------------------------------------------------------------------ rate limit and reset


def test_reads_past_the_rate_limit_are_429(client: httpx.Client, emulator: AimlApiEmulator, body: Body) -> None:
    assert emulator.settings.logs_rate_limit == 200
    config = client.post(f"{emulator.url}/_emulator/config", json={"logs_rate_limit": 3})
    assert config.status_code == 200
    assert config.json()["logs_rate_limit"] == 3

    assert [_logs(client, emulator, period="1h").status_code for _ in range(3)] == [200, 200, 200]
    limited = _logs(client, emulator, period="1h")
    assert limited.status_code == 429
    assert limited.json()["statusCode"] == "429"
    assert _logs(client, emulator, period="1h").status_code == 429

    chat = client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "after-429"})
    assert chat.status_code == 200
    assert [row.client_request_id for row in emulator.usage_rows("sk-good")] == ["after-429"]

    emulator.settings.logs_rate_limit = 200
    page = _page(client, emulator, period="1h")
    assert [row["client_request_id"] for row in page["data"]] == ["after-429"]

    for bad in (0, -1, True, 2.5, "3"):
        assert client.post(f"{emulator.url}/_emulator/config", json={"logs_rate_limit": bad}).status_code == 400
    assert emulator.settings.logs_rate_limit == 200


def test_reset_clears_the_rows(
    client: httpx.Client, emulator: AimlApiEmulator, history: list[httpx.Response], body: Body
) -> None:
    assert len(emulator.usage_rows("sk-good")) == 4
    emulator.reset()
    assert emulator.usage_rows("sk-good") == []
    assert _page(client, emulator, period="1h")["pagination"]["total"] == 0
    client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "fresh"})
    assert [row["client_request_id"] for row in _page(client, emulator, period="1h")["data"]] == ["fresh"]

    assert client.post(f"{emulator.url}/_emulator/reset").status_code == 200
    assert _page(client, emulator, period="1h")["data"] == []


def test_reset_clears_the_rate_limit_count(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    emulator.settings.logs_rate_limit = 1
    assert _logs(client, emulator, period="1h").status_code == 200
    assert _logs(client, emulator, period="1h").status_code == 429
    emulator.reset()
    assert _logs(client, emulator, period="1h").status_code == 200


# ------------------------------------------------------------------------------ other requests


def test_embeddings_are_logged_too(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    answer = client.post(
        f"{emulator.url}/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "hi"},
        headers={"X-Client-Request-Id": "emb-1"},
    )
    assert answer.status_code == 200
    refused = client.post(f"{emulator.url}/v1/embeddings", json={"model": "text-embedding-3-small"})
    assert refused.status_code == 400

    failed, row = _page(client, emulator, period="1h")["data"]
    credits = int(answer.headers["x-aimlapi-credits-used"])
    tokens = answer.json()["usage"]["prompt_tokens"]
    assert credits >= 1
    assert row["status"] == "succeeded"
    assert row["model"] == "text-embedding-3-small"
    assert row["cost"]["credits"] == credits
    assert row["tokens"] == {"input": tokens, "output": 0, "total": tokens}
    assert row["client_request_id"] == "emb-1"
    assert row["request_id"] == answer.headers["x-request-id"]
    assert row["inference_id"] == answer.headers["x-inference-id"]
    assert emulator.credits_used == credits

    assert failed["status"] == "failed"
    assert failed["cost"]["credits"] == 0
    assert failed["model"] == "text-embedding-3-small"
    assert failed["request_id"] == refused.headers["x-request-id"]


def test_other_requests_add_no_rows(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    client.get("/models")
    client.get(f"{emulator.url}/v2/billing")
    client.get(f"{emulator.url}/v2/usage")
    _logs(client, emulator, period="1h")
    assert emulator.usage_rows("sk-good") == []


def test_a_refused_model_is_a_failed_row(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    emulator.settings.denied_models = ("openai/gpt-4o",)
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o")).status_code == 403
    assert client.post("/chat/completions", json=_chat("openai/gpt-4-0613")).status_code == 404
    assert client.post("/chat/completions", json=_chat("acme/none")).status_code == 404
    rows = _page(client, emulator, period="1h")["data"]
    assert [(row["model"], row["status"], row["cost"]["credits"]) for row in rows] == [
        ("acme/none", "failed", 0),
        ("openai/gpt-4-0613", "failed", 0),
        ("openai/gpt-4o", "failed", 0),
    ]
    assert emulator.credits_used == 0


def test_a_streamed_chat_is_logged_once_delivered(client: httpx.Client, emulator: AimlApiEmulator, body: Body) -> None:
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
        inference_id = response.headers["x-inference-id"]
    assert any(line.startswith("data: ") for line in lines)
    (row,) = _page(client, emulator, period="1h")["data"]
    assert row["status"] == "succeeded"
    assert row["inference_id"] == inference_id
    assert row["cost"]["credits"] == emulator.credits_used
    assert row["cost"]["credits"] == 2 * row["tokens"]["total"]


def test_odd_queries_are_400_not_crashes(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    for params in (
        {"period": "24h", "limit": "²"},
        {"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-02T00:00:00"},
    ):
        response = _logs(client, emulator, **params)
        assert response.status_code == 400, params


def test_an_answer_cut_mid_way_is_a_failed_row_at_no_cost(
    client: httpx.Client, emulator: AimlApiEmulator, body: Body
) -> None:
    emulator.add_fault(Fault.cut_stream(3))
    with pytest.raises(httpx.HTTPError):
        client.post("/chat/completions", json=body(), headers={"X-Client-Request-Id": "cut"})
    (row,) = emulator.usage_rows("sk-good")
    assert (row.status, row.credits, row.client_request_id) == ("failed", 0, "cut")
    assert emulator.credits_used == 0


def test_a_body_without_a_model_is_logged_as_unknown(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    assert client.post("/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}).status_code == 400
    (row,) = emulator.usage_rows("sk-good")
    assert (row.model, row.status) == ("unknown", "failed")


def test_denied_models_must_be_a_list_of_ids(emulator: AimlApiEmulator, client: httpx.Client) -> None:
    for bad in (None, {"gpt-4o": 1}, "gpt-4o"):
        response = client.post(f"{emulator.url}/_emulator/config", json={"denied_models": bad})
        assert response.status_code == 400, bad
    emulator.settings.denied_models = "gpt-4o"  # set as an attribute (not validated): still one id, not letters
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o")).status_code == 403

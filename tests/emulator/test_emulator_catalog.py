"""The catalog routes (``/v1/models``, ``/model/{id}``, ``/docs-json``), their caching, the catalog control
endpoints, catalog outages, deprecated and denied models, per-model validation and catalog-priced billing."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from airflow_provider_aiml.testing.catalog import DEPRECATED_MODELS, MODELS
from airflow_provider_aiml.testing.model_specs import CHAT_MODELS, SEED_MODEL, openapi_document

Body = Callable[..., dict[str, Any]]
ClientFor = Callable[..., httpx.Client]
DEFAULT_KEYS = {"id", "info", "type", "aliases", "tags"}
ALL_KEYS = DEFAULT_KEYS | {"modalities", "capabilities", "pricing"}
CHAT_ENDPOINT = "openai/chat-completions"


def _chat(model: str, text: str = "Hello there, how are you?", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _listing(emulator: AimlApiEmulator, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{emulator.url}/v1/models", params=params, trust_env=False)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["object"] == "list"
    return payload["data"]


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def _with(capability: str, emulator: AimlApiEmulator) -> list[str]:
    return [item["id"] for item in emulator.catalog.items() if capability in item["capabilities"]]


def _token_rates(item: dict[str, Any]) -> tuple[float, float]:
    """USD per input and per output token, from the item's ``pricing.units`` (each price read with its ``per``)."""
    rates = {
        unit["measure"]: unit["price"] / unit["per"] for unit in item["pricing"]["units"] if unit["name"] == "token"
    }
    return rates["input"], rates["output"]


# ------------------------------------------------------------------------------ sections


def test_default_listing_has_only_the_default_sections(emulator: AimlApiEmulator) -> None:
    items = _listing(emulator)
    assert _ids(items) == [item["id"] for item in MODELS]
    for item in items:
        assert set(item) == DEFAULT_KEYS, item["id"]
    for path in ("/models", "/api/v1/models"):
        assert httpx.get(f"{emulator.url}{path}", trust_env=False).json()["data"] == items


def test_include_pricing_adds_only_pricing(emulator: AimlApiEmulator) -> None:
    items = _listing(emulator, include="pricing")
    by_id = {item["id"]: item for item in emulator.catalog.items()}
    for item in items:
        assert set(item) == DEFAULT_KEYS | {"pricing"}
        assert item["pricing"] == by_id[item["id"]]["pricing"]
    gpt4o = next(item for item in items if item["id"] == "openai/gpt-4o")
    assert _token_rates(gpt4o) == (2.5 / 1_000_000, 10.0 / 1_000_000)


@pytest.mark.parametrize(
    "params",
    [
        {"include": "all"},
        {"include": "ALL"},
        {"details": "true"},
        {"details": "True"},
        {"include": "pricing,modalities,capabilities"},
        {"include": ["pricing", "modalities", "capabilities"]},
    ],
    ids=str,
)
def test_everything_asked_for_adds_every_section(emulator: AimlApiEmulator, params: dict[str, Any]) -> None:
    items = _listing(emulator, **params)
    assert items == emulator.catalog.items()
    assert all(set(item) == ALL_KEYS for item in items)


def test_unknown_include_values_are_ignored(emulator: AimlApiEmulator) -> None:
    assert all(set(item) == DEFAULT_KEYS for item in _listing(emulator, include="bogus,nothing"))
    mixed = _listing(emulator, include="bogus, Capabilities ,x")
    assert all(set(item) == DEFAULT_KEYS | {"capabilities"} for item in mixed)
    assert all(set(item) == DEFAULT_KEYS for item in _listing(emulator, details="false"))


# ------------------------------------------------------------------------------ filters


def test_capabilities_vision_lists_exactly_the_vision_models(emulator: AimlApiEmulator) -> None:
    expected = _with("vision", emulator)
    assert expected == [
        "alibaba/qwen3-vl-32b-thinking",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-5",
        "anthropic/claude-sonnet-4.5",
        "x-ai/grok-4-07-09",
    ]
    items = _listing(emulator, capabilities="vision")
    assert _ids(items) == expected
    assert all(set(item) == DEFAULT_KEYS for item in items)  # a filter does not add sections


def test_capability_filter_is_case_insensitive(emulator: AimlApiEmulator) -> None:
    tools = _ids(_listing(emulator, capabilities="tools"))
    assert tools == _with("tools", emulator)
    assert "deepseek/deepseek-r1" not in tools
    assert _ids(_listing(emulator, capabilities="TOOLS")) == tools
    assert _ids(_listing(emulator, capabilities=" Tools ")) == tools


def test_values_of_one_filter_are_ored(emulator: AimlApiEmulator) -> None:
    either = [item["id"] for item in emulator.catalog.items() if {"vision", "file_input"} & set(item["capabilities"])]
    assert "deepseek/deepseek-r1" in either  # file_input without vision
    assert "alibaba/qwen3-vl-32b-thinking" in either  # vision without file_input
    assert _ids(_listing(emulator, capabilities=["vision", "file_input"])) == either
    assert _ids(_listing(emulator, capabilities="vision,file_input")) == either
    ids = _ids(_listing(emulator, id=["gpt-4o", "openai/gpt-image-1"]))
    assert ids == ["openai/gpt-4o", "openai/gpt-image-1"]


def test_id_filter_matches_an_alias_case_insensitively(emulator: AimlApiEmulator) -> None:
    assert _ids(_listing(emulator, id="GPT-4O")) == ["openai/gpt-4o"]
    assert _ids(_listing(emulator, id="OpenAI/GPT-4o")) == ["openai/gpt-4o"]
    assert _ids(_listing(emulator, id="gpt-4")) == []  # no prefix matching
    assert _ids(_listing(emulator, id="no-such-model")) == []


def test_different_filters_are_anded(emulator: AimlApiEmulator) -> None:
    chat_vision = _ids(_listing(emulator, type=CHAT_ENDPOINT, capabilities="vision"))
    assert chat_vision == _with("vision", emulator)
    image_vision = _ids(_listing(emulator, type="openai/image-generations", capabilities="vision"))
    assert image_vision == []
    embeddings = _ids(_listing(emulator, type="EMBEDDING"))
    assert embeddings == ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
    assert _ids(_listing(emulator, type="embedding", id="openai/text-embedding-3-large")) == ["text-embedding-3-large"]
    assert _ids(_listing(emulator, input_modalities="image", output_modalities="image")) == ["openai/gpt-image-1"]
    assert _ids(_listing(emulator, modalities="embedding", tags="tier:tier_2")) == embeddings
    assert _ids(_listing(emulator, tags="playground:chat", capabilities="file_input", id="deepseek-reasoner")) == [
        "deepseek/deepseek-r1"
    ]


# ------------------------------------------------------------------------------ caching


def test_listing_has_a_weak_etag_and_max_age(emulator: AimlApiEmulator) -> None:
    url = f"{emulator.url}/v1/models"
    first = httpx.get(url, trust_env=False)
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert etag.endswith('"')
    assert len(etag) > 5
    assert first.headers["cache-control"] == "max-age=60"
    assert httpx.get(url, trust_env=False).headers["etag"] == etag  # stable while nothing changes

    for tag in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        cached = httpx.get(url, headers={"If-None-Match": tag}, trust_env=False)
        assert cached.status_code == 304, tag
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert cached.headers["cache-control"] == "max-age=60"

    stale = httpx.get(url, headers={"If-None-Match": 'W/"not-the-tag"'}, trust_env=False)
    assert stale.status_code == 200
    assert stale.json() == first.json()


def test_a_different_query_has_a_different_etag(emulator: AimlApiEmulator) -> None:
    url = f"{emulator.url}/v1/models"
    tags = {
        httpx.get(url, params=params, trust_env=False).headers["etag"]
        for params in ({}, {"include": "pricing"}, {"capabilities": "vision"}, {"id": "gpt-4o"})
    }
    assert len(tags) == 4
    plain = httpx.get(url, trust_env=False).headers["etag"]
    other = httpx.get(url, params={"include": "pricing"}, headers={"If-None-Match": plain}, trust_env=False)
    assert other.status_code == 200
    assert "pricing" in other.json()["data"][0]


def test_a_catalog_change_invalidates_the_old_etag(emulator: AimlApiEmulator) -> None:
    url = f"{emulator.url}/v1/models"
    params = {"include": "pricing", "id": "gpt-4o"}
    before = httpx.get(url, params=params, trust_env=False)
    old_tag = before.headers["etag"]
    assert httpx.get(url, params=params, headers={"If-None-Match": old_tag}, trust_env=False).status_code == 304

    item = emulator.catalog.find("openai/gpt-4o")
    assert item is not None
    repriced = copy.deepcopy(item)
    repriced["pricing"]["units"][0]["price"] = 5.0
    emulator.catalog.put([repriced])

    after = httpx.get(url, params=params, headers={"If-None-Match": old_tag}, trust_env=False)
    assert after.status_code == 200
    assert after.headers["etag"] != old_tag
    (listed,) = after.json()["data"]
    assert listed["pricing"]["units"][0] == {"name": "token", "measure": "input", "price": 5.0, "per": 1_000_000}
    assert listed["pricing"] != before.json()["data"][0]["pricing"]

    new_tag = after.headers["etag"]
    repriced["pricing"]["units"][0]["price"] = 7.0
    control = httpx.post(f"{emulator.url}/_emulator/catalog", json={"put": [repriced]}, trust_env=False)
    assert control.status_code == 200
    again = httpx.get(url, params=params, headers={"If-None-Match": new_tag}, trust_env=False)
    assert again.status_code == 200
    assert again.json()["data"][0]["pricing"]["units"][0]["price"] == 7.0


# ------------------------------------------------------------------------------ /model/{id} and /docs-json


@pytest.mark.parametrize("path", ["/model/openai%2Fgpt-4o", "/model/gpt-4o", "/model/GPT-4o"])
def test_one_model_by_id_or_alias(emulator: AimlApiEmulator, path: str) -> None:
    response = httpx.get(f"{emulator.url}{path}", params={"include": "all"}, trust_env=False)
    assert response.status_code == 200, response.text
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["cache-control"] == "max-age=60"
    payload = response.json()
    assert set(payload) == {"object", "data"}
    assert payload["object"] == "model"
    assert payload["data"] == emulator.catalog.find("openai/gpt-4o")
    assert set(payload["data"]) == ALL_KEYS

    plain = httpx.get(f"{emulator.url}{path}", trust_env=False).json()["data"]
    assert set(plain) == DEFAULT_KEYS
    cached = httpx.get(f"{emulator.url}{path}", headers={"If-None-Match": response.headers["etag"]}, trust_env=False)
    assert cached.status_code == 200  # the tag of the include=all answer does not match the plain answer


def test_one_model_revalidates_with_its_etag(emulator: AimlApiEmulator) -> None:
    url = f"{emulator.url}/model/gpt-4o"
    tag = httpx.get(url, trust_env=False).headers["etag"]
    cached = httpx.get(url, headers={"If-None-Match": tag}, trust_env=False)
    assert (cached.status_code, cached.content) == (304, b"")


def test_a_deprecated_model_is_a_404_saying_so(emulator: AimlApiEmulator) -> None:
    response = httpx.get(f"{emulator.url}/model/openai/gpt-4-0613", trust_env=False)
    assert response.status_code == 404
    error = response.json()
    assert error["message"] == "Model is deprecated"
    assert error["statusCode"] == "404"
    assert error["path"] == "/model/openai/gpt-4-0613"
    assert "openai/gpt-4-0613" in DEPRECATED_MODELS
    assert "openai/gpt-4-0613" not in _ids(_listing(emulator))


def test_an_unknown_model_is_a_404(emulator: AimlApiEmulator) -> None:
    response = httpx.get(f"{emulator.url}/model/acme%2Fnothing", trust_env=False)
    assert response.status_code == 404
    assert response.json()["message"] == "Model acme/nothing not found"
    assert "etag" not in response.headers


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_docs_json_is_the_models_openapi_document(emulator: AimlApiEmulator, model: str) -> None:
    response = httpx.get(
        f"{emulator.url}/docs-json", params={"model": model, "endpoint": CHAT_ENDPOINT}, trust_env=False
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "max-age=60"
    document = response.json()
    assert document == openapi_document(model)
    schema = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert model in schema["schema"]["properties"]["model"]["enum"]


def test_docs_json_of_the_listed_docs_json_url(emulator: AimlApiEmulator) -> None:
    item = emulator.catalog.find("openai/gpt-4o")
    assert item is not None
    query = item["info"]["docsJson"].partition("?")[2]
    response = httpx.get(f"{emulator.url}/docs-json?{query}", trust_env=False)
    assert response.status_code == 200
    assert response.json() == openapi_document("openai/gpt-4o")


def test_docs_json_refuses_a_wrong_endpoint_or_model(emulator: AimlApiEmulator) -> None:
    url = f"{emulator.url}/docs-json"
    wrong = httpx.get(url, params={"model": "openai/gpt-4o", "endpoint": "openai/embeddings"}, trust_env=False)
    assert wrong.status_code == 404
    assert "openai/embeddings" in wrong.json()["message"]
    image = httpx.get(url, params={"model": "openai/gpt-image-1"}, trust_env=False)
    assert image.status_code == 404
    unknown = httpx.get(url, params={"model": "acme/none", "endpoint": CHAT_ENDPOINT}, trust_env=False)
    assert unknown.status_code == 404
    assert httpx.get(url, trust_env=False).status_code == 404


# ------------------------------------------------------------------------------ outage


def test_catalog_status_is_an_outage_of_the_catalog_only(
    client: httpx.Client, emulator: AimlApiEmulator, body: Body
) -> None:
    emulator.settings.catalog_status = 503
    urls = [
        f"{emulator.url}/v1/models",
        f"{emulator.url}/models",
        f"{emulator.url}/model/gpt-4o",
        f"{emulator.url}/docs-json?model=openai%2Fgpt-4o&endpoint=openai%2Fchat-completions",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.json()["statusCode"] == "503"
    assert client.post("/chat/completions", json=body()).status_code == 200
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o")).status_code == 200

    config = client.post(f"{emulator.url}/_emulator/config", json={"catalog_status": 500})
    assert config.status_code == 200
    assert config.json()["catalog_status"] == 500
    assert client.get(urls[0]).status_code == 500
    assert client.post(f"{emulator.url}/_emulator/config", json={"catalog_status": 200}).status_code == 400
    assert client.post(f"{emulator.url}/_emulator/config", json={"catalog_status": None}).status_code == 200
    assert client.get(urls[0]).status_code == 200


# ------------------------------------------------------------------------------ control endpoints


def test_deprecating_a_model_over_http_and_restoring_it(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    control = f"{emulator.url}/_emulator/catalog"
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o-mini")).status_code == 200

    changed = client.post(control, json={"deprecate": ["gpt-4o-mini"]})
    assert changed.status_code == 200
    summary = changed.json()
    assert summary["removed"] == ["openai/gpt-4o-mini"]
    assert "openai/gpt-4o-mini" not in summary["models"]
    assert {"openai/gpt-4o-mini", "gpt-4o-mini"} <= set(summary["deprecated"])

    for name in ("openai/gpt-4o-mini", "gpt-4o-mini"):
        refused = client.post("/chat/completions", json=_chat(name))
        assert refused.status_code == 404
        assert refused.json()["message"] == "Model is deprecated"
    assert "openai/gpt-4o-mini" not in _ids(_listing(emulator))
    assert client.get(f"{emulator.url}/model/openai%2Fgpt-4o-mini").json()["message"] == "Model is deprecated"
    assert client.get(control).json() == {k: v for k, v in summary.items() if k != "removed"}

    restored = client.delete(control)
    assert restored.status_code == 200
    assert restored.json()["models"] == [item["id"] for item in MODELS]
    assert "gpt-4o-mini" not in restored.json()["deprecated"]
    assert _ids(_listing(emulator)) == [item["id"] for item in MODELS]
    assert client.post("/chat/completions", json=_chat("gpt-4o-mini")).status_code == 200


def test_removing_a_model_makes_chat_to_it_a_not_found(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    changed = client.post(f"{emulator.url}/_emulator/catalog", json={"remove": ["zhipu/glm-4.5"]})
    assert changed.json()["removed"] == ["zhipu/glm-4.5"]
    refused = client.post("/chat/completions", json=_chat("glm-4.5"))
    assert refused.status_code == 404
    assert refused.json()["message"].startswith("Model glm-4.5 not found")
    assert client.get(f"{emulator.url}/model/zhipu%2Fglm-4.5").json()["message"] == "Model zhipu/glm-4.5 not found"


def test_putting_a_new_model_lists_it(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    item = {"id": "acme/new-model", "type": "acme/thing", "capabilities": ["vision"]}
    assert client.post(f"{emulator.url}/_emulator/catalog", json={"put": [item]}).status_code == 200
    (listed,) = _listing(emulator, id="ACME/new-model")
    assert listed == {"id": "acme/new-model", "type": "acme/thing", "aliases": [], "info": {}, "tags": []}
    assert "acme/new-model" in _ids(_listing(emulator, capabilities="vision"))


@pytest.mark.parametrize(
    "payload",
    [
        {"bogus": []},
        {"put": {"id": "acme/x", "type": "t"}},
        {"put": [{"id": "acme/x", "type": "t"}, {"type": "t"}]},
        {"put": [{"id": "acme/x", "type": "t"}, {"id": "  ", "type": "t"}]},
        {"put": [{"id": "acme/x", "type": "t"}, {"id": "acme/y"}]},
        {"put": [{"id": "acme/x", "type": "t"}, "acme/y"]},
        {"put": [{"id": "acme/x", "type": "t"}], "remove": "openai/gpt-4o"},
        {"put": [{"id": "acme/x", "type": "t"}], "deprecate": ["openai/gpt-4o", ""]},
        {"put": [{"id": "acme/x", "type": "t"}], "remove": [3]},
        [{"id": "acme/x", "type": "t"}],
    ],
    ids=str,
)
def test_bad_control_bodies_are_400_and_change_nothing(
    client: httpx.Client, emulator: AimlApiEmulator, payload: Any
) -> None:
    control = f"{emulator.url}/_emulator/catalog"
    before = client.get(control).json()
    tag = client.get(f"{emulator.url}/v1/models").headers["etag"]
    response = client.post(control, json=payload)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert client.get(control).json() == before
    assert "acme/x" not in _ids(_listing(emulator))
    assert client.get(f"{emulator.url}/v1/models", headers={"If-None-Match": tag}).status_code == 304


def test_invalid_json_control_body_is_400(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    control = f"{emulator.url}/_emulator/catalog"
    before = client.get(control).json()
    response = client.post(control, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert client.get(control).json() == before


def test_a_put_item_with_malformed_sections_is_refused(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    """An item is checked section by section before it is put: one whose ``modalities`` is a list would break
    every filtered listing, so the control endpoint answers 400 and the catalog is unchanged."""
    control = f"{emulator.url}/_emulator/catalog"
    before = client.get(control).json()
    item = {"id": "acme/x", "type": "acme/thing", "modalities": ["text"]}
    response = client.post(control, json={"put": [item]})
    listing = client.get(f"{emulator.url}/v1/models", params={"capabilities": "vision"})
    assert listing.status_code == 200, f"a filtered listing answers {listing.status_code} after the put"
    assert response.status_code == 400, "a put item with a list as 'modalities' was accepted"
    assert client.get(control).json() == before


def test_remove_and_deprecate_of_one_model_deprecates_its_aliases(
    client: httpx.Client, emulator: AimlApiEmulator
) -> None:
    """When one request both removes and deprecates a model, the deprecation runs first, so its aliases answer
    "Model is deprecated" too, not "not found"."""
    changed = client.post(
        f"{emulator.url}/_emulator/catalog", json={"remove": ["openai/gpt-4o"], "deprecate": ["openai/gpt-4o"]}
    )
    assert changed.status_code == 200
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o")).json()["message"] == "Model is deprecated"
    by_alias = client.post("/chat/completions", json=_chat("gpt-4o"))
    assert by_alias.status_code == 404
    assert by_alias.json()["message"] == "Model is deprecated"
    assert "gpt-4o" in changed.json()["deprecated"]


def test_refusals_come_in_order(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    """Shared validation first, then the model refusal (deprecated, denied), then the per-model checks."""
    shared = client.post("/chat/completions", json=_chat("claude-2.1", temperature=9))
    assert shared.status_code == 400
    assert shared.json()["message"] == 'Body validation error! Expected number <= 2, received 9 at "temperature"'
    emulator.settings.denied_models = ("anthropic/claude-sonnet-4.5",)
    denied = client.post("/chat/completions", json=_chat("claude-sonnet-4-5", temperature=1.5))
    assert denied.status_code == 403
    assert "scope" in denied.json()["message"]
    emulator.settings.denied_models = ()
    assert client.post("/chat/completions", json=_chat("claude-sonnet-4-5", temperature=1.5)).status_code == 400


# ------------------------------------------------------------------------------ chat admission


def test_a_denied_model_is_a_403_about_scope(client: httpx.Client, emulator: AimlApiEmulator, body: Body) -> None:
    emulator.settings.denied_models = ("openai/gpt-4o",)
    for name in ("gpt-4o", "openai/gpt-4o", "GPT-4o"):
        refused = client.post("/chat/completions", json=_chat(name))
        assert refused.status_code == 403, name
        error = refused.json()
        assert error["statusCode"] == "403"
        assert "scope" in error["message"]
        assert name in error["message"]
    assert client.post("/chat/completions", json=_chat("openai/gpt-4o-mini")).status_code == 200
    assert client.post("/chat/completions", json=body()).status_code == 200
    assert emulator.credits_used > 0

    config = client.post(f"{emulator.url}/_emulator/config", json={"denied_models": ["qwen3-vl-32b-thinking"]})
    assert config.status_code == 200
    assert config.json()["denied_models"] == ["qwen3-vl-32b-thinking"]
    assert client.post("/chat/completions", json=body()).status_code == 403
    assert client.post("/chat/completions", json=_chat("gpt-4o")).status_code == 200
    assert client.post(f"{emulator.url}/_emulator/config", json={"denied_models": "gpt-4o"}).status_code == 400


def test_a_deprecated_builtin_model_is_a_404_for_chat(client: httpx.Client) -> None:
    for name in ("openai/gpt-4-0613", "claude-2.1"):
        refused = client.post("/chat/completions", json=_chat(name))
        assert refused.status_code == 404
        assert refused.json()["message"] == "Model is deprecated"


def test_claude_refuses_a_temperature_above_one(client: httpx.Client) -> None:
    ok = client.post("/chat/completions", json=_chat("anthropic/claude-sonnet-4.5", temperature=1.0))
    assert ok.status_code == 200
    refused = client.post("/chat/completions", json=_chat("anthropic/claude-sonnet-4.5", temperature=1.5))
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert message.startswith("Body validation error! ")
    assert "temperature" in message
    assert message == 'Body validation error! Expected number <= 1, received 1.5 at "temperature"'
    # GPT-4o takes temperatures up to 2
    assert client.post("/chat/completions", json=_chat("gpt-4o", temperature=1.5)).status_code == 200


def test_deepseek_refuses_an_image_part(client: httpx.Client) -> None:
    parts = [
        {"type": "text", "text": "What is on this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    body = {"model": "deepseek/deepseek-r1", "messages": [{"role": "user", "content": parts}]}
    refused = client.post("/chat/completions", json=body)
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert message.startswith("Body validation error! ")
    assert "does not support image input" in message
    assert "messages[0].content[1]" in message
    assert client.post("/chat/completions", json={**body, "model": "openai/gpt-4o"}).status_code == 200


# ------------------------------------------------------------------------------ billing


def _expected_credits(item: dict[str, Any], usage: dict[str, Any]) -> int:
    rate_in, rate_out = _token_rates(item)
    exact = (usage["prompt_tokens"] * rate_in + usage["completion_tokens"] * rate_out) * 2_000_000
    return math.ceil(round(exact, 6))


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5", "alibaba/qwen3-32b"])
def test_chat_is_billed_by_the_catalog_pricing(client: httpx.Client, emulator: AimlApiEmulator, model: str) -> None:
    item = emulator.catalog.find(model)
    assert item is not None
    response = client.post("/chat/completions", json=_chat(model, "Please write a short poem about the sea"))
    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    expected = _expected_credits(item, usage)
    assert int(response.headers["x-aimlapi-credits-used"]) == expected
    assert response.json()["meta"]["usage"]["credits_used"] == expected
    assert emulator.credits_used == expected
    if model == "openai/gpt-4o":  # $2.50 in / $10 out per 1M: 5 and 20 credits per token
        assert expected == 5 * usage["prompt_tokens"] + 20 * usage["completion_tokens"]
    if model == "anthropic/claude-sonnet-4.5":  # $0.003 / $0.015 per 1K: 6 and 30 credits per token
        assert expected == 6 * usage["prompt_tokens"] + 30 * usage["completion_tokens"]


def test_a_repriced_model_bills_its_new_price(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    item = emulator.catalog.find("openai/gpt-4o")
    assert item is not None
    item["pricing"]["units"] = [
        {"name": "token", "measure": "input", "price": 1.0, "per": 1_000_000},
        {"name": "token", "measure": "output", "price": 3.0, "per": 1_000_000},
    ]
    emulator.catalog.put([item])
    response = client.post("/chat/completions", json=_chat("gpt-4o"))
    usage = response.json()["usage"]
    expected = 2 * usage["prompt_tokens"] + 6 * usage["completion_tokens"]
    assert int(response.headers["x-aimlapi-credits-used"]) == expected
    assert emulator.credits_used == expected


def test_the_seed_model_bills_two_credits_per_token(
    client: httpx.Client, emulator: AimlApiEmulator, body: Body
) -> None:
    total = 0
    for text in ("Hi!", "Tell me something about the history of the printing press, please."):
        response = client.post("/chat/completions", json=body(text=text))
        usage = response.json()["usage"]
        credits = int(response.headers["x-aimlapi-credits-used"])
        assert credits == 2 * usage["total_tokens"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        total += credits
    assert emulator.credits_used == total


def test_a_change_to_any_model_gives_the_listing_a_new_etag(emulator: AimlApiEmulator) -> None:
    """The tag follows the catalog, not only the items a query returns: a model outside the answer changed too."""
    url = f"{emulator.url}/v1/models"
    params = {"id": "gpt-4o"}
    old_tag = httpx.get(url, params=params, trust_env=False).headers["etag"]
    item = emulator.catalog.find("anthropic/claude-sonnet-4.5")
    assert item is not None
    emulator.catalog.put([{**item, "tags": [*item["tags"], "changed"]}])
    after = httpx.get(url, params=params, headers={"If-None-Match": old_tag}, trust_env=False)
    assert after.status_code == 200
    assert after.headers["etag"] != old_tag
    assert [m["id"] for m in after.json()["data"]] == ["openai/gpt-4o"]


@pytest.mark.parametrize(
    ("alias", "extra", "message"),
    [
        ("qwen3-32b", {"enable_thinking": True}, "enable_thinking must be set to false for non-streaming calls"),
        (
            "glm-4.5",
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}]}
                ]
            },
            'Model zhipu/glm-4.5 does not support image input (at "messages[0].content[0]")',
        ),
        ("claude-sonnet-4-5", {"temperature": 1.5}, 'Expected number <= 1, received 1.5 at "temperature"'),
    ],
)
def test_a_model_named_by_its_alias_is_checked_against_its_own_schema(
    client: httpx.Client, alias: str, extra: dict[str, Any], message: str
) -> None:
    response = client.post("/chat/completions", json={**_chat(alias), **extra})
    assert response.status_code == 400
    assert response.json()["message"] == f"Body validation error! {message}"


def test_a_huge_integer_is_a_400_not_a_crash(client: httpx.Client) -> None:
    too_hot = client.post("/chat/completions", json=_chat("openai/gpt-4o", temperature=10**400))
    assert too_hot.status_code == 400
    assert too_hot.json()["message"].endswith('at "temperature"')
    too_long = client.post("/chat/completions", json=_chat(SEED_MODEL, max_tokens=10**400))
    assert too_long.status_code == 400  # a whole number >= 1, so the context length refuses it
    assert "maximum context length is 131072 tokens" in too_long.json()["message"]


def test_a_put_item_with_a_bad_price_is_refused(client: httpx.Client, emulator: AimlApiEmulator) -> None:
    control = f"{emulator.url}/_emulator/catalog"
    before = client.get(control).json()
    for units in (5, [{"name": "token", "measure": "input", "price": -5, "per": 1}], [{"price": 1, "per": 0}]):
        item = {"id": "x/y", "type": "openai/chat-completions", "pricing": {"kind": "fixed", "units": units}}
        response = client.post(control, json={"put": [item]})
        assert response.status_code == 400, units
        assert "pricing.units" in response.json()["error"]
    assert client.get(control).json() == before


def test_one_message_per_place_when_shared_and_model_checks_both_object(client: httpx.Client) -> None:
    message = client.post(
        "/chat/completions", json=_chat("deepseek/deepseek-r1") | {"messages": [{"role": ["x"], "content": "hi"}]}
    ).json()["message"]
    assert message.count('at "messages[0].role"') == 1

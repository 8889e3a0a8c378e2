"""Embeddings through real DAG runs against the emulator over real HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from tests.dags.aiml_embedding_dags import TEXTS
from tests.e2e.test_operator_dags import run, xcom
from tests.s3_server import S3Server, aws_connection_env

BUCKET = "aiml-embeddings"


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def sent_inputs(emulator: AimlApiEmulator) -> list[list[str]]:
    return [request.json["input"] for request in emulator.embedding_requests]


def test_the_operator_embeds_an_xcom_list_in_batches_aligned_with_it(dagbag, emulator):
    dag_run = run(dagbag, "aiml_embed_operator", run_conf={"output_path": None})

    assert dag_run.state == "success"
    assert sorted(len(batch) for batch in sent_inputs(emulator)) == [6, 8, 8, 8]
    vectors = xcom(dag_run, "return_value", "embed")
    assert len(vectors) == len(TEXTS)
    assert all(len(vector) == 1536 for vector in vectors)
    assert vectors == embedded_directly(emulator, TEXTS)  # the emulator is deterministic: same text, same vector
    usage = xcom(dag_run, "usage", "embed")
    assert usage["total_tokens"] > 0
    assert usage["usd_spent"] > 0


def test_a_transient_fault_is_retried_inside_the_task_and_the_usage_counts_only_billed_requests(dagbag, emulator):
    emulator.add_fault(Fault.status(429), times=1)

    dag_run = run(dagbag, "aiml_embed_operator", run_conf={"output_path": None})

    assert dag_run.state == "success"
    assert len(emulator.embedding_requests) == 5  # four batches, one of them tried twice
    assert [request.status for request in emulator.embedding_requests].count(429) == 1
    assert xcom(dag_run, "usage", "embed")["credits_used"] == emulator.credits_used  # the 429 was not billed
    assert xcom(dag_run, "return_value", "embed") == embedded_directly(emulator, TEXTS)


def test_output_path_writes_json_lines_and_xcom_holds_the_manifest(dagbag, emulator, tmp_path):
    output = tmp_path / "vectors" / "out.jsonl"

    dag_run = run(dagbag, "aiml_embed_operator", run_conf={"output_path": str(output)})

    assert dag_run.state == "success"
    manifest = xcom(dag_run, "return_value", "embed")
    assert manifest["path"] == str(output)
    assert (manifest["records"], manifest["dimensions"], manifest["model"]) == (30, 1536, "text-embedding-3-small")
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(30))
    assert all(set(line) == {"index", "embedding"} and len(line["embedding"]) == 1536 for line in lines)
    assert [line["embedding"] for line in lines] == embedded_directly(emulator, TEXTS)


def test_text_files_are_embedded_one_per_file_with_their_source(dagbag, emulator, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for name, text in {"b.txt": "second text", "a.txt": "first text", "c.txt": "third, with ü"}.items():
        (folder / name).write_text(text, encoding="utf-8")
    output = tmp_path / "out.jsonl"

    dag_run = run(dagbag, "aiml_embed_files", run_conf={"inputs": f"{folder}/*.txt", "output_path": str(output)})

    assert dag_run.state == "success"
    assert sent_inputs(emulator) == [["first text", "second text", "third, with ü"]]
    assert emulator.embedding_requests[0].json["dimensions"] == 64
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["source"] for line in lines] == [str(folder / name) for name in ("a.txt", "b.txt", "c.txt")]
    assert all(len(line["embedding"]) == 64 for line in lines)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


def test_s3_text_files_are_embedded_and_the_vectors_written_back_to_s3(dagbag, emulator, s3, monkeypatch):
    for name, value in aws_connection_env("aws_embed", s3.endpoint_url).items():
        monkeypatch.setenv(name, value)
    texts = {"docs/2.txt": "a blue kettle", "docs/1.txt": "a red kettle", "docs/notes.md": "not matched"}
    for key, text in texts.items():
        s3.put(BUCKET, key, text.encode())
    output = f"s3://{BUCKET}/vectors/run.jsonl"

    dag_run = run(dagbag, "aiml_embed_s3", run_conf={"inputs": f"s3://{BUCKET}/docs/*.txt", "output_path": output})

    assert dag_run.state == "success"
    assert sent_inputs(emulator) == [["a red kettle", "a blue kettle"]]
    manifest = xcom(dag_run, "return_value", "embed")
    assert manifest["path"] == output
    assert (manifest["records"], manifest["dimensions"]) == (2, 1536)
    lines = [json.loads(line) for line in s3.get(BUCKET, "vectors/run.jsonl").decode().splitlines()]
    assert [(line["index"], line["source"]) for line in lines] == [
        (0, f"s3://{BUCKET}/docs/1.txt"),
        (1, f"s3://{BUCKET}/docs/2.txt"),
    ]
    assert [line["embedding"] for line in lines] == embedded_directly(emulator, ["a red kettle", "a blue kettle"])


def test_templated_local_files_outside_the_dag_folder_are_refused_before_any_request(dagbag, emulator, tmp_path):
    (tmp_path / "secret.txt").write_text("not for the API")

    dag_run = run(dagbag, "aiml_embed_files_confined", run_conf={"inputs": f"{tmp_path}/*.txt"})

    assert dag_run.state == "failed"
    assert emulator.requests == []


def test_the_decorator_embeds_what_the_function_returns(dagbag, emulator):
    dag_run = run(dagbag, "aiml_embed_decorator")

    assert dag_run.state == "success"
    assert len(emulator.embedding_requests) == 3
    assert {request.json["model"] for request in emulator.embedding_requests} == {"text-embedding-3-large"}
    vectors = xcom(dag_run, "return_value", "embed")
    assert len(vectors) == 10
    assert all(len(vector) == 3072 for vector in vectors)


def test_an_empty_text_fails_the_task_before_any_request(dagbag, emulator):
    dag_run = run(dagbag, "aiml_embed_invalid")  # the message itself: tests/unit/test_embeddings.py

    assert dag_run.state == "failed"
    assert emulator.embedding_requests == []
    assert emulator.requests == []


def test_the_embeddings_example_finds_the_most_similar_pair(dagbag, emulator):
    dag_run = run(dagbag, "example_aiml_embeddings")

    assert dag_run.state == "success"
    result = xcom(dag_run, "return_value", "most_similar")
    assert len(result["pair"]) == 2
    assert -1.0 <= result["similarity"] <= 1.0
    (request,) = emulator.embedding_requests
    assert request.json["dimensions"] == 256
    assert len(request.json["input"]) == 5
    vectors = xcom(dag_run, "return_value", "embed_descriptions")
    assert all(math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-3) for vector in vectors)


def embedded_directly(emulator: AimlApiEmulator, texts: list[str]) -> list[list[float]]:
    """The vectors of ``texts`` asked of the emulator in one request, without the provider."""
    import httpx

    from airflow_provider_aiml.testing.pytest_plugin import EMULATOR_API_KEY

    response = httpx.post(
        f"{emulator.base_url}/embeddings",
        json={"model": "text-embedding-3-small", "input": texts},
        headers={"Authorization": f"Bearer {EMULATOR_API_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return [item["embedding"] for item in sorted(response.json()["data"], key=lambda item: item["index"])]

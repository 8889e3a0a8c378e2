"""Images and PDFs from local folders and a real S3 server, through real DAG runs against the emulator."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aiml.testing import AimlApiEmulator, Fault
from airflow_provider_aiml.testing.samples import make_invoice_pdf
from tests.e2e.test_operator_dags import run, xcom
from tests.s3_server import ForbiddenS3Server, S3Server, aws_connection_env

BUCKET = "aiml-inputs"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None, s3: S3Server, monkeypatch) -> AimlApiEmulator:
    for name, value in aws_connection_env("aws_test", s3.endpoint_url).items():
        monkeypatch.setenv(name, value)
    return aiml_connection


def photo(width: int, height: int, *, orientation: int | None = None, fmt: str = "JPEG") -> bytes:
    image = Image.new("RGB", (width, height), (40, 90, 200))
    image.paste((220, 20, 20), (0, 0, width // 4, height // 4))
    buffer = io.BytesIO()
    extra: dict[str, Any] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif
    image.save(buffer, fmt, **extra)
    return buffer.getvalue()


def images_sent(request_json: dict[str, Any]) -> list[Image.Image]:
    parts = request_json["messages"][-1]["content"]
    urls = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    return [Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) for url in urls]


def texts_sent(request_json: dict[str, Any]) -> list[str]:
    return [part["text"] for part in request_json["messages"][-1]["content"] if part["type"] == "text"]


# --- one task, files from S3 and file:// -------------------------------------------------------------------


def test_chat_reads_an_s3_photo_and_a_local_pdf_fitting_the_photo(dagbag, emulator, s3, tmp_path):
    s3.put(BUCKET, "photos/big.jpg", photo(4000, 3000))
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(make_invoice_pdf(7, pages=2))

    dag_run = run(dagbag, "aiml_files_chat", run_conf={"images": [f"s3://{BUCKET}/photos/big.jpg", f"file://{pdf}"]})

    assert dag_run.state == "success"
    sent = emulator.chat_requests[-1].json
    first, *pages = images_sent(sent)
    assert first.size[0] * first.size[1] <= 2_621_440
    assert abs(first.size[0] / first.size[1] - 4 / 3) < 0.01
    assert len(pages) == 2
    labels = texts_sent(sent)
    assert labels[0] == "What do these show?"
    assert labels[1].startswith(f"[{pdf}, page 1 of 2]")
    assert labels[2].startswith(f"[{pdf}, page 2 of 2]")


def test_chat_turns_an_s3_photo_upright_from_its_exif_orientation(dagbag, emulator, s3):
    s3.put(BUCKET, "photos/sideways.jpg", photo(300, 200, orientation=6))

    dag_run = run(dagbag, "aiml_files_chat", run_conf={"images": [f"s3://{BUCKET}/photos/sideways.jpg"]})

    assert dag_run.state == "success"
    (sent,) = images_sent(emulator.chat_requests[-1].json)
    assert sent.size == (200, 300)


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda: b"%PDF-1.7\n1 0 obj garbage", "cannot be read (corrupt or truncated)"),
        (lambda: make_invoice_pdf(1, pages=3), "3 pages selected, over max_pages=2"),
        (lambda: b"plain text pretending", "is not a JPEG, PNG, GIF or WEBP image"),
    ],
    ids=["corrupt-pdf", "over-max-pages", "not-an-image"],
)
def test_a_bad_s3_file_fails_the_task_naming_it_and_nothing_is_sent(dagbag, emulator, s3, make_file, message, capsys):
    s3.put(BUCKET, "bad/file.pdf", make_file())

    dag_run = run(dagbag, "aiml_files_chat_limits", run_conf={"images": [f"s3://{BUCKET}/bad/file.pdf"]})

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    log = capsys.readouterr().out
    assert f"s3://{BUCKET}/bad/file.pdf" in log
    assert message in log


def test_a_missing_s3_object_fails_naming_it_and_nothing_is_sent(dagbag, emulator, capsys):
    dag_run = run(dagbag, "aiml_files_chat", run_conf={"images": [f"s3://{BUCKET}/nowhere/missing.png"]})

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert f"file 's3://{BUCKET}/nowhere/missing.png' not found" in capsys.readouterr().out


def test_a_forbidden_s3_object_fails_naming_it_and_nothing_is_sent(dagbag, emulator, monkeypatch, capsys):
    with ForbiddenS3Server() as forbidden:
        for name, value in aws_connection_env("aws_forbidden", forbidden.endpoint_url).items():
            monkeypatch.setenv(name, value)
        dag_run = run(dagbag, "aiml_files_chat_forbidden", run_conf={"images": [f"s3://{BUCKET}/private/scan.pdf"]})

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert f"no permission to read 's3://{BUCKET}/private/scan.pdf'" in capsys.readouterr().out


def test_pdf_text_only_sends_the_selected_pages_text_and_no_image(dagbag, emulator, tmp_path):
    pdf = tmp_path / "three.pdf"
    pdf.write_bytes(make_invoice_pdf(42, pages=3))

    dag_run = run(dagbag, "aiml_files_chat_text_only", run_conf={"images": [str(pdf)]})

    assert dag_run.state == "success"
    sent = emulator.chat_requests[-1].json
    assert images_sent(sent) == []
    pages = texts_sent(sent)[1:]
    assert [page.split("\n", 1)[0] for page in pages] == [
        f"[{pdf}, page 2 of 3; part 1 of 2 sent]",
        f"[{pdf}, page 3 of 3; part 2 of 2 sent]",
    ]
    assert all(len(page.split("\n", 1)[1]) > 20 for page in pages)


# --- batches over files --------------------------------------------------------------------------------------


def put_invoices(s3: S3Server, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}/invoice-{number:03d}.pdf" for number in range(count)]
    for number, key in enumerate(keys):
        s3.put(BUCKET, key, make_invoice_pdf(number, pages=1))
    return [f"s3://{BUCKET}/{key}" for key in keys]


def test_batch_over_an_s3_glob_writes_ordered_results_to_s3_and_a_manifest_to_xcom(dagbag, emulator, s3):
    urls = put_invoices(s3, "glob-run", 6)
    s3.put(BUCKET, "glob-run/notes.txt", b"not matched by the glob")
    output = f"s3://{BUCKET}/results/glob-run.jsonl"

    dag_run = run(
        dagbag, "aiml_files_batch", run_conf={"inputs": f"s3://{BUCKET}/glob-run/*.pdf", "output_path": output}
    )

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 6
    manifest = xcom(dag_run, "return_value", "batch")
    assert manifest["path"] == output
    assert (manifest["records"], manifest["succeeded"], manifest["failed"]) == (6, 6, 0)
    lines = [json.loads(line) for line in s3.get(BUCKET, "results/glob-run.jsonl").decode().splitlines()]
    assert manifest["usage"]["total_tokens"] == sum(line["usage"]["total_tokens"] for line in lines) > 0
    assert [line["index"] for line in lines] == list(range(6))
    assert [line["source"] for line in lines] == urls
    assert all(set(line) >= {"content", "reasoning", "usage", "error"} for line in lines)
    prompts = sorted(texts_sent(request.json)[0] for request in emulator.chat_requests)
    assert prompts == [f"Describe invoice-{n:03d}.pdf (stem invoice-{n:03d}, record {n})." for n in range(6)]


def test_a_retried_batch_asks_only_the_missing_files_and_writes_no_line_twice(dagbag, emulator, s3, tmp_path):
    inputs = put_invoices(s3, "retry-run", 5)
    output = tmp_path / "out" / "results.jsonl"
    emulator.add_fault(Fault.status(400, message="Body validation error!"), times=1)  # one record fails for good

    first = run(dagbag, "aiml_files_batch", run_conf={"inputs": inputs, "output_path": str(output)})
    assert first.state == "success"  # on_error="continue"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert sum(line["error"] is not None for line in lines) == 1
    assert len(emulator.chat_requests) == 5

    second = run(dagbag, "aiml_files_batch", run_conf={"inputs": inputs, "output_path": str(output)})

    assert second.state == "success"
    assert len(emulator.chat_requests) == 6  # only the failed record is asked again
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]
    assert all(line["error"] is None for line in lines)
    progress = Path(f"{output}.progress.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in progress) == [0, 1, 2, 3, 4]


def test_a_corrupt_file_fails_only_its_record(dagbag, emulator, s3):
    inputs = put_invoices(s3, "mixed-run", 3)
    s3.put(BUCKET, "mixed-run/invoice-001.pdf", b"%PDF-1.4 truncated")

    dag_run = run(dagbag, "aiml_files_batch", run_conf={"inputs": inputs, "output_path": None})

    assert dag_run.state == "success"
    results = xcom(dag_run, "return_value", "batch")
    assert [result["source"] for result in results] == inputs
    assert "cannot be read (corrupt or truncated)" in results[1]["error"]
    assert results[0]["error"] is None
    assert results[2]["error"] is None
    assert len(emulator.chat_requests) == 2


def test_an_empty_glob_is_a_success_with_no_results(dagbag, emulator, capsys):
    dag_run = run(
        dagbag, "aiml_files_batch", run_conf={"inputs": f"s3://{BUCKET}/no-such-prefix/*.pdf", "output_path": None}
    )

    assert dag_run.state == "success"
    assert xcom(dag_run, "return_value", "batch") == []
    assert emulator.chat_requests == []
    assert "match no files: nothing to do" in capsys.readouterr().out


def test_a_glob_over_max_files_fails_before_any_call(dagbag, emulator, s3, capsys):
    put_invoices(s3, "many", 4)

    dag_run = run(dagbag, "aiml_files_batch_capped", run_conf={"inputs": f"s3://{BUCKET}/many/*.pdf"})

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert f"the glob 's3://{BUCKET}/many/*.pdf' matches 4 files, over max_files=3" in capsys.readouterr().out


def test_a_missing_file_in_a_list_fails_before_any_call(dagbag, emulator, s3, capsys):
    inputs = [*put_invoices(s3, "listed", 2), f"s3://{BUCKET}/listed/gone.pdf"]

    dag_run = run(dagbag, "aiml_files_batch", run_conf={"inputs": inputs, "output_path": None})

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert f"file 's3://{BUCKET}/listed/gone.pdf' not found" in capsys.readouterr().out


def test_per_record_images_render_from_each_record(dagbag, emulator, s3):
    s3.put(BUCKET, "sku/a.png", photo(64, 48, fmt="PNG"))
    s3.put(BUCKET, "sku/b.jpg", photo(32, 32))
    records = [
        {"sku": "A-1", "image_url": f"s3://{BUCKET}/sku/a.png"},
        {"sku": "B-2", "image_url": f"s3://{BUCKET}/sku/b.jpg"},
    ]

    dag_run = run(dagbag, "aiml_files_record_images", run_conf={"records": records})

    assert dag_run.state == "success"
    sizes = {texts_sent(r.json)[0]: images_sent(r.json)[0].size for r in emulator.chat_requests}
    assert sizes == {"Describe product A-1.": (64, 48), "Describe product B-2.": (32, 32)}


# --- the example DAGs ----------------------------------------------------------------------------------------


def test_invoice_example_extracts_every_pdf_of_the_folder_into_the_typed_model(dagbag, emulator, tmp_path):
    from airflow_provider_aiml.testing.samples import invoice_for

    dag_run = run(dagbag, "example_aiml_invoice_extraction", run_conf={"output_dir": str(tmp_path)})

    assert dag_run.state == "success"
    manifest = xcom(dag_run, "return_value", "extract_invoices")
    (written,) = tmp_path.rglob("invoices.jsonl")
    assert manifest["path"] == str(written)
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert manifest["records"] == len(lines) == len(emulator.chat_requests) == 5
    assert [Path(line["source"]).name for line in lines] == sorted(Path(line["source"]).name for line in lines)
    assert all(set(line["parsed"]) >= {"vendor", "invoice_number", "total", "line_items"} for line in lines)
    scanned = next(r.json for r in emulator.chat_requests if "scanned" in texts_sent(r.json)[0])
    assert len(images_sent(scanned)) == 1
    assert texts_sent(scanned)[1].endswith("page 1 of 1]")  # the scanned page has no text layer to add
    born_digital = next(r.json for r in emulator.chat_requests if "invoice-2026-12-01-1" in texts_sent(r.json)[0])
    assert invoice_for(1).issuer in "\n".join(texts_sent(born_digital))
    assert isinstance(xcom(dag_run, "return_value", "total_by_vendor"), dict)


def test_product_photo_example_describes_the_bucket_and_writes_back_to_it(dagbag, emulator, s3, monkeypatch):
    photos = sorted((Path(__file__).parents[2] / "example_dags" / "files" / "photos").iterdir())
    s3.create_bucket("aiml-examples")
    for photo_file in photos:
        s3.put("aiml-examples", f"photos/{photo_file.name}", photo_file.read_bytes())
    for name, value in aws_connection_env("aws_default", s3.endpoint_url).items():
        monkeypatch.setenv(name, value)

    dag_run = run(dagbag, "example_aiml_product_photos")

    assert dag_run.state == "success"
    manifest = xcom(dag_run, "return_value", "describe_photos")
    assert manifest["records"] == manifest["succeeded"] == len(photos) == len(emulator.chat_requests)
    key = manifest["path"].removeprefix("s3://aiml-examples/")
    lines = s3.get("aiml-examples", key).decode().splitlines()
    assert [json.loads(line)["source"] for line in lines] == [f"s3://aiml-examples/photos/{p.name}" for p in photos]
    for request in emulator.chat_requests:
        (image,) = images_sent(request.json)
        assert image.size[0] * image.size[1] <= 2_621_440
    assert xcom(dag_run, "return_value", "report").startswith(f"{len(photos)} of {len(photos)} photos described")


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_templated_local_inputs_outside_the_dag_folder_are_refused_before_any_call(dagbag, emulator, tmp_path, scheme):
    (tmp_path / "private.pdf").write_bytes(make_invoice_pdf(3, pages=1))

    dag_run = run(dagbag, "aiml_files_batch_confined", run_conf={"inputs": f"{scheme}{tmp_path}/*.pdf"})

    assert dag_run.state == "failed"
    assert emulator.requests == []

"""Input and output files: local paths and file:// URLs, globs and lists, bounded reads, errors, JSON Lines."""

from __future__ import annotations

import base64
import io
import json
import os
import random
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from airflow_provider_aiml import storage
from airflow_provider_aiml.exceptions import AimlFileError, AimlStorageError
from airflow_provider_aiml.media.attachments import MediaOptions, attachment_parts
from airflow_provider_aiml.storage import (
    StoredFile,
    expand_inputs,
    file_error,
    is_file_reference,
    storage_scheme,
    stored_file,
    write_jsonl,
)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def tree(root: Path) -> dict[str, Path]:
    """in/a.txt, in/b.txt, in/deeper/c.txt, in/notes.csv and an empty folder in/empty.txt.d."""
    files = {
        "a": write(root / "in" / "a.txt", "alpha"),
        "b": write(root / "in" / "b.txt", "bravo!"),
        "c": write(root / "in" / "deeper" / "c.txt", "charlie"),
        "csv": write(root / "in" / "notes.csv", "x,y\n"),
    }
    (root / "in" / "empty.txt.d").mkdir()
    return files


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def two_page_pdf() -> bytes:
    pdf = FPDF(format=(50, 70))
    pdf.set_font("helvetica", size=10)
    for text in ("first page", "second page"):
        pdf.add_page()
        pdf.cell(text=text)
    return bytes(pdf.output())


def data_url_bytes(part: dict) -> bytes:
    return base64.b64decode(part["image_url"]["url"].split(",", 1)[1])


def described(path: Path) -> tuple[int, str]:
    stat = path.stat()
    return stat.st_size, str(stat.st_mtime_ns)


# --- stored_file ---------------------------------------------------------------------------------------------


def test_a_local_path_string_is_a_local_file(tmp_path):
    target = write(tmp_path / "doc.txt", "hello")

    file = stored_file(f"  {target}  ")

    assert file.path == target
    assert isinstance(file.path, Path)
    assert file.url == str(target)
    assert file.size is None
    assert file.read_bytes(100) == b"hello"


def test_a_pathlib_path_is_a_local_file(tmp_path):
    target = write(tmp_path / "doc.txt", "hello")

    file = stored_file(target)

    assert file.path == target
    assert file.url == str(target)
    assert file.read_bytes(100) == b"hello"


def test_a_home_relative_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "doc.txt", "home")

    file = stored_file("~/doc.txt")

    assert file.path == tmp_path / "doc.txt"
    assert file.url == "~/doc.txt"
    assert file.read_bytes(100) == b"home"


def test_a_file_url_is_read_through_object_storage(tmp_path):
    target = write(tmp_path / "doc.txt", "through fsspec")

    file = stored_file(f"file://{target}")

    assert not isinstance(file.path, Path)
    assert type(file.path).__name__ == "ObjectStoragePath"
    assert file.url == f"file://{target}"
    assert file.name == "doc.txt"
    assert file.read_bytes(100) == b"through fsspec"


def test_a_stored_file_is_returned_as_it_is(tmp_path):
    file = StoredFile(tmp_path / "x", "s3://bucket/x", 3, "etag")

    assert stored_file(file) is file


@pytest.mark.parametrize("source", ["", "   ", 42, None, b"/tmp/x"])
def test_stored_file_refuses_what_is_not_a_file(source):
    with pytest.raises(AimlFileError, match="a file must be a path, a storage URL or an ObjectStoragePath"):
        stored_file(source)


# --- expand_inputs: globs ------------------------------------------------------------------------------------


def test_a_local_glob_lists_the_matching_files_sorted_with_sizes_and_versions(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs(str(tmp_path / "in" / "*.txt"))

    assert [file.path for file in found] == [files["a"], files["b"]]  # not the folder named empty.txt.d
    assert [file.url for file in found] == [str(files["a"]), str(files["b"])]
    assert [(file.size, file.version) for file in found] == [described(files["a"]), described(files["b"])]


def test_a_recursive_local_glob_goes_into_subfolders(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs(str(tmp_path / "in" / "**" / "*.txt"))

    assert [file.path for file in found] == [files["a"], files["b"], files["c"]]
    assert [file.size for file in found] == [5, 6, 7]


def test_a_glob_given_as_a_path_object_is_expanded(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs(tmp_path / "in" / "?.txt")

    assert [file.path for file in found] == [files["a"], files["b"]]


def test_a_file_url_glob_is_listed_through_object_storage(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs(f"file://{tmp_path}/in/*.txt")

    assert [file.url for file in found] == [f"file://{files['a']}", f"file://{files['b']}"]
    assert [file.size for file in found] == [5, 6]
    assert all(file.version for file in found)
    assert found[1].read_bytes(100) == b"bravo!"


def test_a_glob_matching_nothing_gives_no_files(tmp_path):
    tree(tmp_path)

    assert expand_inputs(str(tmp_path / "in" / "*.pdf")) == []
    assert expand_inputs(str(tmp_path / "nowhere" / "**" / "*.txt")) == []


def test_a_local_glob_over_max_files_is_refused_naming_it_and_the_cap(tmp_path):
    tree(tmp_path)
    pattern = str(tmp_path / "in" / "**" / "*.txt")

    with pytest.raises(AimlFileError) as raised:
        expand_inputs(pattern, max_files=2)

    message = str(raised.value)
    assert repr(pattern) in message
    assert "over max_files=2" in message


def test_a_local_glob_at_max_files_is_taken(tmp_path):
    tree(tmp_path)

    assert len(expand_inputs(str(tmp_path / "in" / "**" / "*.txt"), max_files=3)) == 3


def test_an_object_storage_glob_over_max_files_names_the_count_and_the_cap(tmp_path):
    tree(tmp_path)

    with pytest.raises(AimlFileError, match=r"matches 3 files, over max_files=2"):
        expand_inputs(f"file://{tmp_path}/in/**/*.txt", max_files=2)


# --- expand_inputs: lists ------------------------------------------------------------------------------------


def test_a_list_of_paths_is_sorted_and_described(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs([files["c"], files["a"], files["csv"]])

    assert [file.path for file in found] == [files["a"], files["c"], files["csv"]]
    assert [(file.size, file.version) for file in found] == [described(files[k]) for k in ("a", "c", "csv")]


def test_a_single_path_without_glob_characters_is_one_file(tmp_path):
    files = tree(tmp_path)

    found = expand_inputs(str(files["b"]))

    assert [(file.path, file.size) for file in found] == [(files["b"], 6)]


def test_a_missing_file_in_a_list_is_reported_naming_it(tmp_path):
    files = tree(tmp_path)
    missing = tmp_path / "in" / "missing.txt"

    with pytest.raises(AimlFileError) as raised:
        expand_inputs([files["a"], missing, files["b"]])

    assert str(raised.value) == f"file {str(missing)!r} not found"


def test_a_folder_in_a_list_is_reported_as_a_folder(tmp_path):
    files = tree(tmp_path)
    folder = tmp_path / "in" / "deeper"

    with pytest.raises(AimlFileError) as raised:
        expand_inputs([files["a"], folder])

    assert str(raised.value) == f"{str(folder)!r} is a folder, not a file"


def test_a_list_over_max_files_is_refused_naming_the_count_and_the_cap(tmp_path):
    files = tree(tmp_path)

    with pytest.raises(AimlFileError, match=r"^3 files given, over max_files=2;"):
        expand_inputs([files["a"], files["b"], files["c"]], max_files=2)


# --- StoredFile.read_bytes -----------------------------------------------------------------------------------


def test_read_bytes_reads_the_whole_file(tmp_path):
    data = random.Random(1).randbytes(3_000)
    target = write(tmp_path / "blob.bin", data)

    assert StoredFile(target, str(target)).read_bytes(3_000) == data


def test_a_file_known_to_be_over_the_limit_is_refused_without_being_opened(tmp_path):
    never_created = tmp_path / "huge.bin"

    with pytest.raises(AimlFileError) as raised:
        StoredFile(never_created, "s3://bucket/huge.bin", size=3_000_000).read_bytes(2_000_000)

    assert str(raised.value) == "file 's3://bucket/huge.bin' is 3.0 MB; files over 2.0 MB are not read"


def test_a_file_not_listed_is_refused_by_the_size_its_open_handle_knows(tmp_path):
    target = write(tmp_path / "big.bin", b"\0" * 3_000_000)

    with pytest.raises(AimlFileError) as raised:
        StoredFile(target, str(target)).read_bytes(2_000_000)

    assert str(raised.value) == f"file {str(target)!r} is 3.0 MB; files over 2.0 MB are not read"


def test_a_file_of_unknown_size_over_the_limit_is_refused_while_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "READ_CHUNK_BYTES", 256 * 1024)
    monkeypatch.setattr(storage, "_size_of_open", lambda handle: None)  # a store that does not tell
    target = write(tmp_path / "big.bin", b"\0" * 3_000_000)
    reads: list[int] = []
    real_open = storage._open_for_reading

    def counting_open(path):
        handle = real_open(path)
        read = handle.read
        handle.read = lambda n=-1: reads.append(n) or read(n)
        return handle

    monkeypatch.setattr(storage, "_open_for_reading", counting_open)

    with pytest.raises(AimlFileError) as raised:
        StoredFile(target, str(target)).read_bytes(2_000_000)

    assert str(raised.value) == f"file {str(target)!r} is over 2.0 MB; files over 2.0 MB are not read"
    assert reads == [256 * 1024] * 8  # stopped at the chunk that passed the limit, not at the end of the file


def test_a_large_file_is_read_correctly_in_small_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "READ_CHUNK_BYTES", 4096 + 7)
    data = random.Random(2).randbytes(5 * 1024 * 1024)
    target = write(tmp_path / "five.bin", data)

    assert StoredFile(target, str(target)).read_bytes(len(data)) == data


def test_reading_a_file_without_permission_says_so(tmp_path, monkeypatch):
    target = write(tmp_path / "locked.txt", "secret-free content")
    target.chmod(0)
    if os.access(target, os.R_OK):  # root reads whatever the mode says: make the refusal happen another way

        def refuse(self, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "open", refuse)

    try:
        with pytest.raises(AimlFileError) as raised:
            StoredFile(target, str(target)).read_bytes(100)
    finally:
        target.chmod(0o600)

    assert str(raised.value).startswith(f"no permission to read {str(target)!r}")


def test_reading_a_missing_file_says_not_found(tmp_path):
    missing = tmp_path / "gone.txt"

    with pytest.raises(AimlFileError, match=r"not found"):
        StoredFile(missing, str(missing)).read_bytes(100)


# --- file_error ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "writing", "kind", "message"),
    [
        (FileNotFoundError(2, "No such file"), False, AimlFileError, "file 'f.txt' not found"),
        (PermissionError(13, "Denied"), False, AimlFileError, "no permission to read 'f.txt'"),
        (PermissionError(13, "Denied"), True, AimlFileError, "no permission to write 'f.txt'"),
        (IsADirectoryError(21, "Is a directory"), False, AimlFileError, "'f.txt' is a folder, not a file"),
        (OSError(5, "I/O error"), False, AimlStorageError, "could not read 'f.txt': OSError: [Errno 5] I/O error"),
        (ConnectionError("reset"), True, AimlStorageError, "could not write 'f.txt': ConnectionError: reset"),
        (TimeoutError("slow"), False, AimlStorageError, "could not read 'f.txt': TimeoutError: slow"),
    ],
)
def test_file_error_maps_os_errors(error, writing, kind, message):
    mapped = file_error("f.txt", error, writing=writing)

    assert type(mapped) is kind
    assert str(mapped).startswith(message)


def test_a_missing_filesystem_is_a_file_error_naming_the_provider_to_install():
    mapped = file_error("gs://bucket/in.pdf", ValueError("No filesystem registered for scheme gs"))

    assert type(mapped) is AimlFileError
    message = str(mapped)
    assert "'gs://bucket/in.pdf'" in message
    assert "no filesystem for gs://" in message
    assert "No filesystem registered for scheme gs" in message
    assert "apache-airflow-providers-google" in message


def test_a_missing_filesystem_of_an_unknown_scheme_still_gives_a_hint():
    mapped = file_error("weird://x/y", ImportError("Install the filesystem package for weird"))

    assert type(mapped) is AimlFileError
    assert "the one for this storage" in str(mapped)


def test_a_value_error_that_is_not_about_filesystems_is_a_storage_error():
    assert type(file_error("s3://b/k", ValueError("bad range"))) is AimlStorageError


# --- write_jsonl ---------------------------------------------------------------------------------------------


ROWS = [{"id": 1, "text": "café ✓"}, {"id": 2, "nested": {"list": [1, 2]}}, {"id": 3, "text": "日本語"}]


def test_write_jsonl_creates_parent_folders_and_writes_rows_in_order(tmp_path):
    target = tmp_path / "out" / "deep" / "results.jsonl"

    url = write_jsonl(target, iter(ROWS))

    assert url == str(target)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert "café ✓" in lines[0]  # kept as it is, not \\u-escaped
    assert "日本語" in lines[2]


def test_write_jsonl_replaces_an_existing_file_whole_and_leaves_no_partial_file(tmp_path):
    target = write(tmp_path / "results.jsonl", "old line\n" * 1_000)

    write_jsonl(str(target), ROWS[:1])

    assert target.read_text(encoding="utf-8") == '{"id":1,"text":"café ✓"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_write_jsonl_with_no_rows_writes_an_empty_file(tmp_path):
    target = write(tmp_path / "results.jsonl", "old\n")

    write_jsonl(target, [])

    assert target.read_bytes() == b""


def test_write_jsonl_to_a_file_url(tmp_path):
    target = tmp_path / "sub" / "results.jsonl"

    url = write_jsonl(f"file://{target}", ROWS)

    assert url == f"file://{target}"
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == ROWS


def test_write_jsonl_failing_midway_keeps_the_old_file_and_leaves_no_partial_file(tmp_path):
    target = write(tmp_path / "results.jsonl", "previous run\n")

    def rows():
        yield ROWS[0]
        raise RuntimeError("the source broke")

    with pytest.raises(AimlStorageError, match=r"could not write .*RuntimeError: the source broke"):
        write_jsonl(target, rows())

    assert target.read_text(encoding="utf-8") == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_write_jsonl_into_a_folder_path_says_it_is_a_folder(tmp_path):
    folder = tmp_path / "results.jsonl"
    folder.mkdir()

    with pytest.raises(AimlFileError, match=r"is a folder"):
        write_jsonl(folder, ROWS)


# --- is_file_reference and storage_scheme --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key.pdf", True),
        ("gs://bucket/key.pdf", True),
        ("S3://bucket/key.pdf", True),
        ("  file:///tmp/x.png ", True),
        ("abfs://container/x", True),
        ("http://example.com/x.png", False),
        ("https://example.com/x.png", False),
        ("HTTPS://example.com/x.png", False),
        ("data:image/png;base64,AAAA", False),
        ("/tmp/x.png", False),
        ("relative/x.png", False),
        ("", False),
        (Path("/tmp/x.png"), True),
        (StoredFile(Path("/tmp/x"), "/tmp/x"), True),
        (1, False),
        (None, False),
        (["s3://bucket/key"], False),
    ],
)
def test_is_file_reference(value, expected):
    assert is_file_reference(value) is expected


def test_an_object_storage_path_is_a_file_reference(tmp_path):
    from airflow.sdk import ObjectStoragePath

    assert is_file_reference(ObjectStoragePath(f"file://{tmp_path}/x.txt")) is True


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("s3://bucket/key", "s3"),
        ("GS://bucket/key", "gs"),
        (" file:///tmp/x ", "file"),
        ("s3://aws_default@bucket/key", "s3"),
        ("git+ssh://host/repo", "git+ssh"),
        ("http://example.com", None),
        ("https://example.com", None),
        ("data:image/png;base64,AAAA", None),
        ("/tmp/x", None),
        ("C:\\data\\x.png", None),
        ("", None),
    ],
)
def test_storage_scheme(text, scheme):
    assert storage_scheme(text) == scheme


# --- StoredFile's names --------------------------------------------------------------------------------------


def test_stored_file_names_and_record():
    file = StoredFile(Path("/cache/abc"), "s3://bucket/in/report.final.pdf", 10, "etag-1")

    assert file.name == "report.final.pdf"
    assert file.stem == "report.final"
    assert file.suffix == ".pdf"
    assert str(file) == "s3://bucket/in/report.final.pdf"
    assert file.as_record() == {
        "path": "s3://bucket/in/report.final.pdf",
        "url": "s3://bucket/in/report.final.pdf",
        "name": "report.final.pdf",
        "stem": "report.final",
        "suffix": ".pdf",
    }
    assert file.fingerprint() == "s3://bucket/in/report.final.pdf|10|etag-1"


def test_a_file_without_a_suffix():
    file = StoredFile(Path("/data/README"), "/data/README")

    assert (file.name, file.stem, file.suffix) == ("README", "README", "")


# --- attachment_parts from files -----------------------------------------------------------------------------


def test_a_local_pdf_path_gives_text_and_image_parts(tmp_path):
    pdf = write(tmp_path / "docs" / "two.pdf", two_page_pdf())

    parts = attachment_parts(str(pdf))

    assert [part["type"] for part in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[0]["text"] == f"[{pdf}, page 1 of 2]\nfirst page"
    assert parts[2]["text"] == f"[{pdf}, page 2 of 2]\nsecond page"
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "detail" not in parts[1]["image_url"]


def test_a_file_url_of_an_image_gives_one_image_part(tmp_path):
    image = write(tmp_path / "pics" / "red.png", png_bytes())

    parts = attachment_parts(f"file://{image}")

    assert len(parts) == 1
    assert parts[0]["type"] == "image_url"
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert data_url_bytes(parts[0]) == png_bytes()


def test_detail_applies_to_every_image_part_of_a_pdf(tmp_path):
    pdf = write(tmp_path / "two.pdf", two_page_pdf())

    parts = attachment_parts({"path": str(pdf), "detail": "low"}, MediaOptions())

    images = [part for part in parts if part["type"] == "image_url"]
    texts = [part for part in parts if part["type"] == "text"]
    assert len(images) == 2
    assert len(texts) == 2
    assert all(part["image_url"]["detail"] == "low" for part in images)
    assert all(set(part) == {"type", "text"} for part in texts)


def test_a_local_file_that_is_neither_image_nor_pdf_is_refused_naming_it(tmp_path):
    notes = write(tmp_path / "notes.txt", "just text")

    with pytest.raises(AimlFileError, match=r"is not a JPEG, PNG, GIF or WEBP image .* nor a PDF"):
        attachment_parts(str(notes))


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_confine_local_files_refuses_files_outside_the_folder(tmp_path, scheme):
    inside, outside = tmp_path / "dags", tmp_path / "elsewhere"
    write(inside / "a.pdf", b"x")
    write(outside / "b.pdf", b"y")
    (inside / "link.pdf").symlink_to(outside / "b.pdf")

    setting = "lift_it=False"
    storage.confine_local_files(expand_inputs(f"{scheme}{inside}/a.pdf"), inside, setting=setting)
    for name in (outside / "b.pdf", inside / "link.pdf"):
        with pytest.raises(AimlFileError, match=r"is not inside the DAG folder .* Set lift_it=False if"):
            storage.confine_local_files(expand_inputs(f"{scheme}{name}"), inside, setting=setting)
    storage.confine_local_files(expand_inputs(f"{scheme}{outside}/b.pdf"), None, setting=setting)

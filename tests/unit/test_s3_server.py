"""The S3 test servers: real round trips through Airflow's ObjectStoragePath, and clean shutdowns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3_server import ForbiddenS3Server, S3Server, aws_connection_env, is_listening, s3_client

BUCKET = "aiml-inputs"
CONN_ID = "s3_server_test"
FORBIDDEN_CONN_ID = "s3_server_forbidden_test"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def s3_conn(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The conn_id of an Airflow aws connection to the module's server."""
    for name, value in aws_connection_env(CONN_ID, s3.endpoint_url).items():
        monkeypatch.setenv(name, value)
    return CONN_ID


def test_connection_env_is_an_aws_connection_to_the_endpoint() -> None:
    env = aws_connection_env("my_s3", "http://127.0.0.1:1234")

    assert list(env) == ["AIRFLOW_CONN_MY_S3"]
    assert '"conn_type": "aws"' in env["AIRFLOW_CONN_MY_S3"]
    assert '"endpoint_url": "http://127.0.0.1:1234"' in env["AIRFLOW_CONN_MY_S3"]


def test_put_through_object_storage_path_and_get_back(s3: S3Server, s3_conn: str) -> None:
    from airflow.sdk import ObjectStoragePath

    ObjectStoragePath(f"s3://{BUCKET}/roundtrip/written.pdf", conn_id=s3_conn).write_bytes(b"%PDF-written")
    s3.put(BUCKET, "roundtrip/stored.pdf", b"%PDF-stored")

    assert s3.get(BUCKET, "roundtrip/written.pdf") == b"%PDF-written"
    assert ObjectStoragePath(f"s3://{BUCKET}/roundtrip/stored.pdf", conn_id=s3_conn).read_bytes() == b"%PDF-stored"


def test_glob_lists_the_matching_keys(s3: S3Server, s3_conn: str) -> None:
    from airflow.sdk import ObjectStoragePath

    for key in ("listing/a.pdf", "listing/b.pdf", "listing/notes.txt", "listing/deeper/c.pdf"):
        s3.put(BUCKET, key, b"x")
    folder = ObjectStoragePath(f"s3://{BUCKET}/listing/", conn_id=s3_conn)

    assert sorted(path.name for path in folder.glob("*.pdf")) == ["a.pdf", "b.pdf"]
    assert sorted(folder.fs.glob(f"{BUCKET}/listing/**/*.pdf")) == [
        f"{BUCKET}/listing/a.pdf",
        f"{BUCKET}/listing/b.pdf",
        f"{BUCKET}/listing/deeper/c.pdf",
    ]
    assert s3.keys(BUCKET, "listing/") == [
        "listing/a.pdf",
        "listing/b.pdf",
        "listing/deeper/c.pdf",
        "listing/notes.txt",
    ]


def test_missing_key_raises_file_not_found(s3_conn: str) -> None:
    from airflow.sdk import ObjectStoragePath

    missing = ObjectStoragePath(f"s3://{BUCKET}/nowhere/missing.pdf", conn_id=s3_conn)

    assert not missing.exists()
    with pytest.raises(FileNotFoundError):
        missing.read_bytes()


def test_reset_forgets_buckets(s3: S3Server) -> None:
    s3.put(BUCKET, "reset/old.pdf", b"old")

    s3.reset()

    assert BUCKET not in [bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]]
    s3.create_bucket(BUCKET)  # for the tests that follow
    assert s3.keys(BUCKET) == []


def test_stopped_server_no_longer_listens() -> None:
    server = S3Server()
    assert is_listening(server.host, server.port)

    server.stop()

    assert not server.serving
    assert not is_listening(server.host, server.port)


@pytest.fixture(scope="module")
def forbidden() -> Iterator[ForbiddenS3Server]:
    with ForbiddenS3Server() as server:
        yield server


def test_forbidden_server_answers_403(forbidden: ForbiddenS3Server) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as answer:
        s3_client(forbidden.endpoint_url).get_object(Bucket=BUCKET, Key="x.pdf")

    assert answer.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert answer.value.response["Error"]["Code"] == "InvalidAccessKeyId"


@pytest.mark.parametrize("operation", ["read_bytes", "exists", "stat"])
def test_forbidden_server_raises_permission_error(
    forbidden: ForbiddenS3Server, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    from airflow.sdk import ObjectStoragePath

    for name, value in aws_connection_env(FORBIDDEN_CONN_ID, forbidden.endpoint_url).items():
        monkeypatch.setenv(name, value)
    path = ObjectStoragePath(f"s3://{BUCKET}/x.pdf", conn_id=FORBIDDEN_CONN_ID)

    with pytest.raises(PermissionError):
        getattr(path, operation)()


def test_stopped_forbidden_server_leaves_no_process_or_port() -> None:
    server = ForbiddenS3Server()
    assert is_listening(server.host, server.port)

    server.stop()

    assert server.returncode is not None
    assert not is_listening(server.host, server.port)

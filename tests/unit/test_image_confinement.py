"""Where local image files may be read from: ``file://`` URLs, confinement to a folder, and which setting wins."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from airflow.sdk import DAG

from airflow_provider_aiml.exceptions import AimlImageError, AimlParameterError
from airflow_provider_aiml.messages import image_url, is_literal
from airflow_provider_aiml.operators.chat import AimlChatCompletionOperator
from tests.airflow_env import TEST_API_KEY, TEST_BASE_URL

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    inside, outside = tmp_path / "dags", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "chart with space.png").write_bytes(PNG_1X1)
    (outside / "private.png").write_bytes(PNG_1X1)
    return inside, outside


@pytest.mark.parametrize("prefix", ["file://", "file://localhost", "FILE://"])
def test_file_urls_name_local_files(folders, prefix):
    inside, _ = folders
    url = f"{prefix}{inside}/chart%20with%20space.png"  # percent-encoding is decoded
    assert image_url(url).startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("file://server/share/a.png", "must name a file on this machine"),
        ("file:relative.png", "write a file URL as file:///absolute/path"),
        ("gs://bucket/a.png", "Airflow has no filesystem for gs:// .*apache-airflow-providers-google"),
        ("foo://bucket/a.png", "cannot open 'foo://bucket/a.png' through Airflow's object storage"),
    ],
)
def test_other_file_and_storage_urls_fail_clearly(image, message):
    with pytest.raises(AimlImageError, match=message):
        image_url(image)


def test_a_confined_file_must_be_inside_the_folder_even_through_a_symlink(folders):
    inside, outside = folders
    (inside / "link.png").symlink_to(outside / "private.png")
    assert image_url("chart with space.png", [inside], confine_to=inside).startswith("data:image/png")
    for escape in (str(outside / "private.png"), "../elsewhere/private.png", "link.png", "../elsewhere/none.png"):
        with pytest.raises(AimlImageError, match="is not a file inside the DAG folder"):
            image_url(escape, [inside], confine_to=inside)
    # Unconfined, the same paths are read: the check is the confinement, not the path's shape.
    assert image_url("../elsewhere/private.png", [inside]).startswith("data:image/png")


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("images/a.png", True),
        (["a.png", {"path": "b.png", "detail": "low"}], True),
        ("{{ params.image }}", False),
        (["a.png", "{% if x %}b.png{% endif %}"], False),
        ([{"url": "{{ ti.xcom_pull('x') }}"}], False),
        (object(), False),  # an XComArg or another lazy value
    ],
)
def test_what_counts_as_written_in_the_dag_file(value, literal):
    assert is_literal(value) is literal


def _operator(folder: Path, images: object, **kwargs: object) -> AimlChatCompletionOperator:
    with DAG("confine", schedule=None) as dag:
        dag.fileloc = str(folder / "dag.py")  # dag.folder is the folder of the file that defines the DAG
        return AimlChatCompletionOperator(
            task_id="chat", prompt="Describe it.", images=images, aiml_conn_id="aiml_images", **kwargs
        )


def _connection(monkeypatch: pytest.MonkeyPatch, **extra: object) -> None:
    conn = {"conn_type": "aimlapi", "password": TEST_API_KEY, "host": TEST_BASE_URL, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIML_IMAGES", json.dumps(conn))


@pytest.mark.parametrize(
    ("templated", "task_setting", "connection_setting", "confined"),
    [
        (True, None, None, True),  # default: a templated value is confined
        (False, None, None, False),  # default: a path written in the DAG file is not
        (False, True, None, True),
        (True, False, None, False),
        (False, None, True, True),  # the connection decides when the task does not
        (True, None, False, False),
        (True, False, True, False),  # the task wins over the connection
        (False, True, False, True),
    ],
)
def test_which_setting_decides(monkeypatch, folders, templated, task_setting, connection_setting, confined):
    inside, outside = folders
    extra = {} if connection_setting is None else {"confine_images_to_dag_folder": connection_setting}
    _connection(monkeypatch, **extra)
    raw = "{{ params.image }}" if templated else str(outside / "private.png")
    operator = _operator(inside, raw, confine_images_to_dag_folder=task_setting)
    operator.render_template_fields({"params": {"image": str(outside / "private.png")}})

    assert operator.image_folder() == (str(inside) if confined else None)
    if confined:
        with pytest.raises(AimlImageError, match="is not a file inside the DAG folder"):
            operator.build_messages()
    else:
        assert operator.build_messages()[0]["content"][1]["image_url"]["url"].startswith("data:image/png")


def test_the_setting_must_be_a_boolean(monkeypatch, folders):
    inside, _ = folders
    with pytest.raises(AimlParameterError, match="'confine_images_to_dag_folder' must be True, False or None"):
        _operator(inside, "a.png", confine_images_to_dag_folder="yes")
    _connection(monkeypatch, confine_images_to_dag_folder="maybe")
    from airflow_provider_aiml.exceptions import AimlConfigurationError

    with pytest.raises(AimlConfigurationError, match="'confine_images_to_dag_folder' must be true or false"):
        _operator(inside, "{{ x }}").image_folder()

"""A templated ``images`` value cannot make the worker send a file from outside the DAG folder; ``file://`` URLs
work. Real DAG runs through ``dag.test()`` against the emulator."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.airflow_env import DAGS_FOLDER

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@pytest.fixture
def emulator(aiml_connection: AimlApiEmulator, airflow_db: None) -> AimlApiEmulator:
    return aiml_connection


def run_with_image(dagbag: Any, image: str) -> Any:
    return dagbag.dags["aiml_test_image_from_params"].test(run_conf={"image": image})


@pytest.fixture
def outside_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("outside") / "private.png"
    path.write_bytes(PNG_1X1)
    return str(path)


def test_an_image_inside_the_dag_folder_is_sent(dagbag, emulator):
    dag_run = run_with_image(dagbag, "images/bar_chart.png")

    assert dag_run.state == "success"
    (request,) = emulator.chat_requests
    assert request.json["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def escape_to(kind: str, outside: str) -> str:
    """An ``images`` value that names ``outside`` (a file outside the DAG folder) in one of several ways."""
    climb = "../" * len(DAGS_FOLDER.parts)  # from the DAG folder up to /
    return {
        "absolute": outside,
        "file-url": f"file://{outside}",
        "dot-dot": climb + outside.lstrip("/"),
        "dot-dot-inside": "images/../" + climb + outside.lstrip("/"),
        "symlink": "link.png",  # a link inside the DAG folder to the file outside
    }[kind]


@pytest.mark.parametrize("kind", ["absolute", "file-url", "dot-dot", "dot-dot-inside", "symlink"])
def test_a_param_cannot_send_a_file_from_outside_the_dag_folder(dagbag, emulator, capsys, outside_png, kind):
    link = DAGS_FOLDER / "link.png"
    link.symlink_to(outside_png)
    try:
        dag_run = run_with_image(dagbag, escape_to(kind, outside_png))
    finally:
        link.unlink()

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []  # nothing sent, nothing billed
    assert "is not a file inside the DAG folder" in capsys.readouterr().out


def test_a_file_url_inside_the_dag_folder_is_read(dagbag, emulator):
    dag_run = run_with_image(dagbag, f"file://{DAGS_FOLDER}/images/bar_chart.png")

    assert dag_run.state == "success"
    assert len(emulator.chat_requests) == 1


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("file://fileserver/share/chart.png", "must name a file on this machine"),
        ("gs://bucket/chart.png", "Airflow has no filesystem for gs://"),
    ],
)
def test_other_urls_fail_clearly(dagbag, emulator, capsys, image, message):
    dag_run = run_with_image(dagbag, image)

    assert dag_run.state == "failed"
    assert emulator.chat_requests == []
    assert message in capsys.readouterr().out

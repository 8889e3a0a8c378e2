"""The pytest plugin fixtures and the ``python -m airflow_provider_aiml.testing`` CLI."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from airflow_provider_aiml.testing import AimlApiEmulator

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_aiml_emulator_fixture_is_running(aiml_emulator: AimlApiEmulator) -> None:
    assert aiml_emulator.running
    response = httpx.get(f"{aiml_emulator.base_url}/models", trust_env=False, timeout=5)
    assert response.status_code == 200


def test_aiml_connection_points_airflow_at_the_emulator(aiml_connection: AimlApiEmulator) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_AIML_DEFAULT"])
    assert connection == {
        "conn_type": "aimlapi",
        "password": "sk-emulator-test-key",
        "host": aiml_connection.base_url,
        "extra": {"timeout": 10, "max_retries": 2},
    }
    response = httpx.post(
        f"{connection['host']}/chat/completions",
        json={"model": "alibaba/qwen3-vl-32b-thinking", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {connection['password']}"},
        trust_env=False,
        timeout=5,
    )
    assert response.status_code == 200


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    return env


def test_plugin_can_be_enabled_with_pytest_plugins(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["airflow_provider_aiml.testing.pytest_plugin"]\n')
    (tmp_path / "test_user_dag.py").write_text(
        "import json, os\n"
        "def test_it(aiml_connection):\n"
        "    conn = json.loads(os.environ['AIRFLOW_CONN_AIML_DEFAULT'])\n"
        "    assert conn['host'] == aiml_connection.base_url\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", str(tmp_path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def _read_line(stream: IO[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


def test_cli_serves_until_sigint() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_aiml.testing", "--port", "0", "--latency", "0", "--api-key", "k1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        line = _read_line(process.stdout, timeout=30)
        prefix = "AI/ML API emulator listening on "
        assert line.startswith(prefix), line
        base_url = line[len(prefix) :].strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        assert httpx.get(f"{base_url}/models", trust_env=False, timeout=5).status_code == 200
        chat = httpx.post(
            f"{base_url}/chat/completions",
            json={"model": "alibaba/qwen3-vl-32b-thinking", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer k1"},
            trust_env=False,
            timeout=5,
        )
        assert chat.status_code == 200

        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_cli_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_aiml.testing", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert result.returncode == 2
    assert "non-loopback" in result.stderr
    assert result.stdout == ""


def test_emulator_imports_only_the_standard_library_and_itself() -> None:
    import ast

    package = PROJECT_ROOT / "airflow_provider_aiml" / "testing"
    allowed_third_party = {"pytest"}  # only pytest_plugin.py, which pytest itself loads
    # samples.py makes sample PDFs and photos for tests (Pillow, fpdf2); no emulator module imports it.
    sample_makers = {"PIL", "fpdf"}
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "airflow_provider_aiml":
                    assert name.startswith("airflow_provider_aiml.testing"), f"{source.name} imports {name}"
                    assert name != "airflow_provider_aiml.testing.samples", f"{source.name} imports {name}"
                elif top in sample_makers:
                    assert source.name == "samples.py", f"{source.name} imports {name}"
                elif top in allowed_third_party:
                    assert source.name == "pytest_plugin.py", f"{source.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names, f"{source.name} imports non-stdlib {name}"

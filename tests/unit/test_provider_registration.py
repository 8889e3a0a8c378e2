"""The provider is registered with Airflow and declares the connection form the UI shows."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from airflow_provider_aiml import __version__
from airflow_provider_aiml.get_provider_info import get_provider_info


def test_providers_manager_finds_the_provider_hook_and_form():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    provider = ProvidersManager().providers["airflow-provider-aiml"]
    assert provider.version == __version__
    hook = ProvidersManagerTaskRuntime().hooks["aimlapi"]
    assert hook.hook_class_name == "airflow_provider_aiml.hooks.aiml.AimlApiHook"
    assert hook.connection_id_attribute_name == "aiml_conn_id"
    assert hook.hook_name == "AI/ML API"


def test_connection_form_has_exactly_the_provider_fields():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {item.connection_type: item for item in HookMetaService.hook_meta_data()}["aimlapi"]
    standard = meta.standard_fields
    assert standard.password.title == "API Key"
    assert standard.host.title == "Base URL"
    assert standard.host.placeholder == "https://api.aimlapi.com/v1"
    for hidden in ("login", "port", "url_schema"):
        assert getattr(standard, hidden).hidden is True
    extra = meta.extra_fields
    assert set(extra) == {
        "model",
        "embedding_model",
        "timeout",
        "max_retries",
        "max_usd_per_day",
        "max_requests_per_minute",
        "max_concurrency",
        "limits_redis_conn_id",
        "catalog_checks",
    }
    assert extra["catalog_checks"]["value"] is True
    assert extra["model"]["value"] == "alibaba/qwen3-vl-32b-thinking"
    for limit in ("max_usd_per_day", "max_requests_per_minute", "max_concurrency", "limits_redis_conn_id"):
        assert extra[limit]["value"] is None, limit  # empty by default: no limit until an ops person sets one
    assert extra["max_concurrency"]["schema"]["minimum"] == 1
    assert extra["timeout"]["schema"]["minimum"] == 1
    assert extra["max_retries"]["value"] == 2


def test_provider_info_package_name_matches_the_distribution():
    from importlib.metadata import entry_points

    info = get_provider_info()
    points = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_aiml")
    ]
    assert [ep.dist.name for ep in points] == [info["package-name"]]


def test_importing_the_operator_is_cheap_and_touches_no_network():
    code = (
        "import sys, socket, time\n"
        "def no_network(*a, **k): raise AssertionError('network at import time')\n"
        "socket.socket.connect = no_network\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_aiml.decorators.aiml\n"
        "print('CHAT_DECORATOR_LOADED_BATCH', 'airflow_provider_aiml.operators.batch' in sys.modules)\n"
        "import airflow_provider_aiml.operators.chat, airflow_provider_aiml.operators.batch\n"
        "import airflow_provider_aiml.decorators.aiml_batch\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in {'openai', 'anthropic', 'pandas', 'numpy', 'requests'})\n"
        "print('RESULT', heavy)\n"
        "print('LOADED', sorted(m for m in new if m.startswith(('airflow_provider_aiml', 'airflow.triggers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "RESULT []" in out.splitlines()
    assert "CHAT_DECORATOR_LOADED_BATCH False" in out.splitlines()  # @task.aiml does not load the batch operator
    # A DAG file is parsed again and again: only the operator and decorator modules themselves are loaded then.
    # The hook, the wire models, the batch runner, the trigger, messages, output decoding, the errors and the
    # stream log writer are imported when a task runs.
    loaded = next(line for line in out.splitlines() if line.startswith("LOADED"))
    assert ast.literal_eval(loaded.removeprefix("LOADED ")) == [
        "airflow_provider_aiml.decorators",
        "airflow_provider_aiml.decorators.aiml",
        "airflow_provider_aiml.decorators.aiml_batch",
        "airflow_provider_aiml.operators",
        "airflow_provider_aiml.operators._arguments",
        "airflow_provider_aiml.operators._base",
        "airflow_provider_aiml.operators.batch",
        "airflow_provider_aiml.operators.chat",
        "airflow_provider_aiml.parameters",  # the plain-Python ranges the literal arguments are checked with
    ]


def test_the_batch_error_is_still_importable_from_the_batch_operator_module():
    from airflow_provider_aiml import exceptions
    from airflow_provider_aiml.operators.batch import AimlBatchError

    assert AimlBatchError is exceptions.AimlBatchError
    assert issubclass(AimlBatchError, exceptions.AimlApiError)


def test_airflow_providers_list_shows_the_provider():
    airflow = Path(sys.executable).with_name("airflow")
    listed = subprocess.run(
        [str(airflow), "providers", "list", "-o", "json"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    table = next(line for line in listed.splitlines() if line.startswith("[{"))  # log lines may come first
    ours = [item for item in json.loads(table) if item["package_name"] == "airflow-provider-aiml"]
    assert ours == [
        {
            "package_name": "airflow-provider-aiml",
            "description": get_provider_info()["description"].rstrip("."),  # the CLI drops a final full stop
            "version": __version__,
        }
    ]


def test_task_decorators_are_registered():
    from airflow.sdk import task

    from airflow_provider_aiml.decorators.aiml import aiml_task
    from airflow_provider_aiml.decorators.aiml_agent import aiml_agent_task
    from airflow_provider_aiml.decorators.aiml_batch import aiml_batch_task
    from airflow_provider_aiml.decorators.aiml_branch import aiml_branch_task
    from airflow_provider_aiml.decorators.aiml_embed import aiml_embed_task

    assert task.aiml is aiml_task
    assert task.aiml_agent is aiml_agent_task
    assert task.aiml_branch is aiml_branch_task
    assert task.aiml_batch is aiml_batch_task
    assert task.aiml_embed is aiml_embed_task


def test_importing_the_embedding_operator_and_decorator_loads_no_hook_storage_or_batch_module():
    code = (
        "import sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_aiml.decorators.aiml_embed\n"
        "new = set(sys.modules) - before\n"
        "print('LOADED', sorted(m for m in new if m.startswith('airflow_provider_aiml')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = next(line for line in out.splitlines() if line.startswith("LOADED"))
    assert ast.literal_eval(loaded.removeprefix("LOADED ")) == [
        "airflow_provider_aiml.decorators",
        "airflow_provider_aiml.decorators.aiml_embed",
        "airflow_provider_aiml.operators",
        "airflow_provider_aiml.operators._arguments",
        "airflow_provider_aiml.operators._base",
        "airflow_provider_aiml.operators.embedding",
        "airflow_provider_aiml.parameters",
    ]

"""The spend plugin: found through the entry point, its pages behind Airflow's own authentication.

The app runs in ``TestClient`` with Airflow's security dependencies and a real auth manager: the simple auth
manager (real JWTs, signed and checked), told per user which DAGs and connections they may read, as a
deployment's auth manager (FAB, Keycloak, ...) would say. The last tests mount the plugin in Airflow's own API
app, as the API server does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from airflow_provider_aiml.plugin import DAG_ROUTE, NAV_ROUTE, URL_PREFIX, AimlApiPlugin
from benchmarks.spend_query import TaskRecord, insert_task_records, spend_value
from tests.airflow_env import TEST_API_KEY

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test config's key

DAY = date(2031, 5, 4)
PERIOD = {"start": DAY.isoformat(), "end": DAY.isoformat()}
DAG_A, DAG_B = "spend_page_sales", "spend_page_support"
BUNDLE = "spend-page-tests"
BILLING_URL = "https://api.test.invalid/v2/billing"
USAGE_URL = "https://api.test.invalid/v2/usage"
READS = {"admin": {DAG_A, DAG_B}, "alice": {DAG_A}, "nobody": set()}
"""The DAGs each user may read (admin also reads connections)."""


def _scoped_auth_manager() -> Any:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class DagScopedAuthManager(SimpleAuthManager):
        """The simple auth manager, with a per-user list of readable DAGs (``READS``)."""

        def is_authorized_dag(self, *, method: str, user: Any, access_entity: Any = None, details: Any = None) -> bool:
            readable = READS.get(user.username, set())
            if method != "GET":
                return False
            dag_id = getattr(details, "id", None)
            return bool(readable) if dag_id is None else dag_id in readable

        def is_authorized_connection(self, *, method: str, user: Any, details: Any = None) -> bool:
            return user.username == "admin"

    return DagScopedAuthManager()


@pytest.fixture(scope="module")
def data(airflow_db: None) -> dict[str, Any]:
    """Two DAGs (in the ``dag`` table, as the auth manager lists them) with spend on ``DAY``."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    at = datetime(DAY.year, DAY.month, DAY.day, 9, 30, tzinfo=UTC)
    records = [
        TaskRecord(DAG_A, "manual__a1", "ask", at, spend_value("m/thinking", 100, 300, 120, 0.25)),
        TaskRecord(DAG_A, "manual__a1", "fan", at, spend_value("m/fast", 10, 10, 0, 0.05), map_index=1),
        TaskRecord(DAG_B, "manual__b1", "triage", at, spend_value("m/thinking", 900, 900, 450, 0.5)),
    ]
    with create_session() as session:
        if session.get(DagBundleModel, BUNDLE) is None:
            session.add(DagBundleModel(name=BUNDLE))
            session.flush()
        for dag_id in (DAG_A, DAG_B):
            session.add(DagModel(dag_id=dag_id, bundle_name=BUNDLE))
        session.flush()
        insert_task_records(session, records)
    return {"records": records}


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The auth manager Airflow's dependencies find (``get_auth_manager()``)."""
    from airflow.api_fastapi.app import _AuthManagerState

    manager = _scoped_auth_manager()
    monkeypatch.setattr(_AuthManagerState, "instance", manager)
    return manager


def token(auth: Any, username: str, **kwargs: Any) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    role = {"admin": "ADMIN"}.get(username, "VIEWER")
    return auth.generate_jwt(SimpleAuthManagerUser(username=username, role=role), **kwargs)


@pytest.fixture
def client(data: dict[str, Any], auth: Any) -> Iterator[TestClient]:
    from airflow_provider_aiml.spend.app import clear_panel_cache, create_app

    clear_panel_cache()
    with TestClient(create_app()) as test_client:
        yield test_client
    clear_panel_cache()


@pytest.fixture
def account() -> Iterator[respx.MockRouter]:
    """The API's account endpoints for the ``aiml_default`` connection of the test run."""
    with respx.mock(assert_all_called=False) as router:
        router.get(BILLING_URL).mock(
            return_value=httpx.Response(200, json={"current_balance": 42.5, "currency": "USD"})
        )
        router.get(USAGE_URL).mock(
            return_value=httpx.Response(200, json={"spend": 1.75, "currency": "USD", "requests": 12})
        )
        yield router


def as_user(auth: Any, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(auth, username)}"}


def shown_usd(html: str, test_id: str = "total-usd") -> float:
    match = re.search(rf'data-testid="{test_id}" data-usd="([^"]+)"', html)
    assert match, f"no {test_id} on the page"
    return float(match.group(1))


# --- who gets in ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/spend", f"/spend/dags/{DAG_A}"])
def test_a_request_without_a_token_is_refused(client, path):
    response = client.get(path, params=PERIOD)
    assert response.status_code == 401
    assert DAG_A not in response.text


@pytest.mark.parametrize("path", ["/spend", f"/spend/dags/{DAG_A}"])
def test_an_invalid_or_expired_token_is_refused(client, auth, path):
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert client.get(path, headers={"Cookie": "_token=not-a-jwt"}).status_code == 403
    forged = token(auth, "admin")[:-4] + "AAAA"
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    expired = token(auth, "admin", expiration_time_in_seconds=-60)
    assert client.get(path, headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_the_cookie_the_ui_sets_at_login_opens_the_page(client, auth, account):
    """The UI shows the page in a frame of the same origin: the browser sends its ``_token`` cookie."""
    cookie = {"Cookie": f"_token={token(auth, 'admin')}"}
    response = client.get("/spend", params=PERIOD, headers=cookie)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "private, no-store"
    assert shown_usd(response.text) == 0.8
    assert DAG_A in response.text
    assert DAG_B in response.text


def test_a_user_limited_to_one_dag_sees_only_its_figures(client, auth, account):
    response = client.get("/spend", params=PERIOD, headers=as_user(auth, "alice"))

    assert response.status_code == 200
    assert shown_usd(response.text) == 0.3  # DAG_A only
    assert DAG_A in response.text
    assert DAG_B not in response.text
    assert "triage" not in response.text
    assert 'data-usd="0.5"' not in response.text
    # Nor through its tab, nor by naming it in the query.
    assert client.get(f"/spend/dags/{DAG_B}", params=PERIOD, headers=as_user(auth, "alice")).status_code == 403
    named = client.get("/spend", params={**PERIOD, "dag_id": DAG_B}, headers=as_user(auth, "alice"))
    assert named.status_code == 403
    own = client.get(f"/spend/dags/{DAG_A}", params=PERIOD, headers=as_user(auth, "alice"))
    assert own.status_code == 200
    assert shown_usd(own.text) == 0.3


def test_a_user_who_may_read_no_dag_is_refused(client, auth):
    for path in ("/spend", f"/spend/dags/{DAG_A}"):
        response = client.get(path, params=PERIOD, headers=as_user(auth, "nobody"))
        assert response.status_code == 403
        assert DAG_A not in response.text


def test_the_balance_is_shown_only_to_who_may_read_the_connection(client, auth, account):
    admin = client.get("/spend", params=PERIOD, headers=as_user(auth, "admin")).text
    assert 'data-testid="balance">$42.50<' in admin
    assert 'data-testid="key-spend">$1.75<' in admin
    assert "12 requests" in admin
    assert account.calls.call_count == 2
    assert account.calls[0].request.headers["authorization"] == f"Bearer {TEST_API_KEY}"

    alice = client.get("/spend", params=PERIOD, headers=as_user(auth, "alice")).text
    assert "you may not read this connection" in alice
    assert "$42.50" not in alice
    assert account.calls.call_count == 2  # not asked for her

    client.get("/spend", params=PERIOD, headers=as_user(auth, "admin"))
    assert account.calls.call_count == 2  # reused for PANEL_TTL_SECONDS


def test_an_api_error_is_shown_without_the_key(client, auth):
    with respx.mock(assert_all_called=False) as router:
        router.get(BILLING_URL).mock(return_value=httpx.Response(401, json={"message": f"bad key {TEST_API_KEY}"}))
        page = client.get("/spend", params=PERIOD, headers=as_user(auth, "admin"))
    assert page.status_code == 200
    assert "AI/ML API error 401" in page.text
    assert "bad key ***" in page.text
    assert TEST_API_KEY not in page.text


# --- what the page shows --------------------------------------------------------------------------------------


def test_the_dag_tab_breaks_its_spend_down_by_task_model_and_day(client, auth):
    page = client.get(f"/spend/dags/{DAG_A}", params=PERIOD, headers=as_user(auth, "alice")).text

    assert f"AI/ML API spend of {DAG_A}" in page
    by_task = page[page.index('data-testid="by-task"') :]
    by_task = by_task[: by_task.index("</table>")]
    assert by_task.index(">ask<") < by_task.index(">fan<")  # the most expensive first
    assert 'data-usd="0.25"' in by_task
    assert 'data-usd="0.05"' in by_task
    assert 'data-testid="prompt-tokens">110<' in page
    assert 'data-testid="reasoning-tokens">120<' in page
    assert page.count("<svg") >= 4  # spend and tokens per day, by task, by model: drawn on the server
    assert "<script src" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_the_most_expensive_runs_link_to_their_task_instances_in_the_ui(client, auth):
    page = client.get("/spend", params=PERIOD, headers=as_user(auth, "admin")).text

    top = page[page.index('data-testid="top-runs"') :]
    assert top.index("manual__b1") < top.index("manual__a1")
    assert f'href="/dags/{DAG_B}/runs/manual__b1/tasks/triage"' in top
    assert f'href="/dags/{DAG_A}/runs/manual__a1/tasks/fan/mapped/1"' in top
    assert f'href="/dags/{DAG_A}/runs/manual__a1"' in top
    assert f'href="/dags/{DAG_A}/plugin/{DAG_ROUTE}"' in page  # a DAG's name opens its tab


def test_the_period_comes_from_the_query(client, auth):
    headers = as_user(auth, "admin")
    other_day = client.get(f"/spend/dags/{DAG_A}", params={"start": "2031-05-05", "end": "2031-05-06"}, headers=headers)
    assert other_day.status_code == 200
    assert shown_usd(other_day.text) == 0.0
    assert "No AI/ML API task reported any spend in this period." in other_day.text
    assert 'name="start" value="2031-05-05"' in other_day.text
    default = client.get(f"/spend/dags/{DAG_A}", headers=headers)
    today = datetime.now(UTC).date()
    assert f'name="end" value="{today.isoformat()}"' in default.text
    assert "30 days" in default.text
    # One date only: 30 days from it (but not past today), or up to it.
    since = client.get(f"/spend/dags/{DAG_A}", params={"start": DAY.isoformat()}, headers=headers)
    assert shown_usd(since.text) == 0.3
    until = client.get(f"/spend/dags/{DAG_A}", params={"end": "2031-06-02"}, headers=headers)
    assert 'name="start" value="2031-05-04"' in until.text
    assert shown_usd(until.text) == 0.3
    backwards = client.get(f"/spend/dags/{DAG_A}", params={"start": "2031-05-06", "end": "2031-05-01"}, headers=headers)
    assert backwards.status_code == 400
    assert client.get("/spend", params={"start": "yesterday"}, headers=headers).status_code == 422
    too_long = client.get("/spend", params={"start": "2029-01-01", "end": "2031-01-01"}, headers=headers)
    assert too_long.status_code == 400
    for edge in ({"start": "9999-12-31"}, {"end": "0001-01-01"}, {"start": "9999-12-30", "end": "9999-12-31"}):
        assert client.get("/spend", params=edge, headers=headers).status_code == 400, edge


def test_the_pages_are_framed_only_by_airflows_own_ui_and_never_cached(client, auth):
    page = client.get(f"/spend/dags/{DAG_A}", params=PERIOD, headers=as_user(auth, "admin"))
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "private, no-store"


def test_the_key_panel_is_only_for_a_connection_the_periods_tasks_used(client, auth, account):
    headers = as_user(auth, "admin")
    refused = client.get("/spend", params={**PERIOD, "conn_id": "my_postgres"}, headers=headers)
    assert refused.status_code == 400
    assert "my_postgres" in refused.text
    assert account.calls.call_count == 0  # no password was sent anywhere for it
    assert client.get("/spend", params={**PERIOD, "conn_id": "aiml_default"}, headers=headers).status_code == 200


def test_the_icon_is_public_and_static(client):
    response = client.get("/static/icon.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")


# --- the plugin -----------------------------------------------------------------------------------------------


def test_the_plugin_is_found_through_the_entry_point():
    from airflow import plugins_manager
    from airflow._shared.plugins_manager import _load_entrypoint_plugins

    plugins, errors = _load_entrypoint_plugins()
    ours = [plugin for plugin in plugins if isinstance(plugin, AimlApiPlugin)]
    assert len(ours) == 1
    assert not errors
    assert str(ours[0].source).startswith("airflow-provider-aiml==")
    assert "airflow_provider_aiml.plugin:AimlApiPlugin" in str(ours[0].source)
    info = {item["name"]: item for item in plugins_manager.get_plugin_info()}["aiml_api"]
    views = {view["destination"]: view for view in info["external_views"]}
    assert views["nav"]["url_route"] == NAV_ROUTE
    assert views["nav"]["href"] == "aiml/spend"
    assert views["dag"]["href"] == "aiml/spend/dags/{DAG_ID}"
    assert info["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": URL_PREFIX, "name": "AI/ML API spend"}
    ]


def test_loading_the_plugin_builds_no_app():
    """Every Airflow process imports the plugin: it must not import the pages, FastAPI's app or the SQL."""
    code = (
        "import sys, airflow_provider_aiml.plugin as p; p.AimlApiPlugin().external_views; "
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_aiml')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert "airflow_provider_aiml.plugin" in loaded
    assert [
        name for name in loaded if name.startswith(("airflow_provider_aiml.spend", "airflow_provider_aiml.hooks"))
    ] == []


@pytest.fixture(scope="module")
def airflow_api(data: dict[str, Any]) -> Iterator[TestClient]:
    """Airflow's own API app (``create_app``), plugins mounted by ``init_plugins`` as in the API server."""
    from airflow.api_fastapi.app import _AuthManagerState, create_app, purge_cached_app

    previous = _AuthManagerState.instance
    try:
        with TestClient(create_app("core")) as test_client:
            yield test_client
    finally:
        purge_cached_app()
        _AuthManagerState.instance = previous


def test_airflow_mounts_the_pages_behind_its_authentication(airflow_api, account):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from airflow_provider_aiml.spend.app import clear_panel_cache

    clear_panel_cache()
    assert airflow_api.get(f"{URL_PREFIX}/spend", params=PERIOD).status_code == 401
    jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
    page = airflow_api.get(f"{URL_PREFIX}/spend", params=PERIOD, headers={"Cookie": f"_token={jwt}"})
    assert page.status_code == 200
    assert shown_usd(page.text) >= 0.8  # every DAG of the database, ours among them
    assert f'href="/dags/{DAG_B}/runs/manual__b1/tasks/triage"' in page.text  # the UI's paths, not the plugin's
    assert f'action="{URL_PREFIX}/spend"' in page.text
    tab = airflow_api.get(f"{URL_PREFIX}/spend/dags/{DAG_A}", params=PERIOD, headers={"Authorization": f"Bearer {jwt}"})
    assert shown_usd(tab.text) == 0.3
    plugins = airflow_api.get("/api/v2/plugins", headers={"Authorization": f"Bearer {jwt}"}).json()["plugins"]
    views = next(plugin for plugin in plugins if plugin["name"] == "aiml_api")["external_views"]
    assert {view["destination"] for view in views} == {"nav", "dag"}
    clear_panel_cache()

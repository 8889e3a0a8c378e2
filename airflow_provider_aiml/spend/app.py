"""The FastAPI app of the spend pages, mounted by the plugin in Airflow's API server at ``/aiml``.

Authentication and authorization are Airflow's own, the same dependencies its REST API uses
(:mod:`airflow.api_fastapi.core_api.security`): ``get_user`` takes the JWT from the ``Authorization: Bearer``
header, or from the ``_token`` cookie the UI sets at login (the browser sends it with the page the UI shows in
its frame, which is on the same origin). No token, an expired or invalid one: 401 or 403, before anything is
read. The pages then need what Airflow's XCom list needs: ``GET`` on DAGs' XComs (``requires_access_dag``
with ``DagAccessEntity.XCOM``); the navigation page shows only the DAGs the auth manager says the user may
read, a DAG's tab only that DAG (403 for a DAG the user may not read). The balance and the key's spend come
from the connection, so they are shown only to a user who may read that connection.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails, DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from airflow_provider_aiml import DEFAULT_CONN_ID
from airflow_provider_aiml.plugin import URL_PREFIX
from airflow_provider_aiml.spend.page import KeyPanel, PageContext, render_page
from airflow_provider_aiml.spend.report import DEFAULT_PERIOD_DAYS, Period, SpendReport, spend_report

log = logging.getLogger(__name__)

PANEL_TTL_SECONDS = 30.0
"""How long the balance and key spend of a connection are reused, so reloading the page does not call the API
each time."""
ACCOUNT_TIMEOUT_SECONDS = 8.0
"""The longest the page waits for each of ``GET /v2/billing`` and ``GET /v2/usage``."""

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 3v18h18"/>'
    '<path d="M7 15l4-5 3 3 5-7"/></svg>'
)

Top = Annotated[int, Query(ge=0, le=50, description="How many of the most expensive runs to list.")]


def create_app() -> FastAPI:
    """The app: ``GET /spend`` (every DAG the user may read), ``GET /spend/dags/{dag_id}`` (one DAG) and the
    navigation icon."""
    app = FastAPI(title="AI/ML API spend", docs_url=None, redoc_url=None, openapi_url=None)
    read_xcoms = [Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))]

    @app.get("/spend", response_class=HTMLResponse, dependencies=read_xcoms)
    def spend_page(
        request: Request, user: GetUserDep, session: SessionDep, period: PeriodDep, top: Top = 10, conn_id: str = ""
    ) -> HTMLResponse:
        """Spend of every DAG the user may read, and the key panel of one connection."""
        from airflow.api_fastapi.app import get_auth_manager

        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
        report = spend_report(session, period, dag_ids, top=top)
        connections = [name for name, _ in report.by_connection if name]
        if conn_id and conn_id not in connections and conn_id != DEFAULT_CONN_ID:
            # Only a connection the period's tasks used: the key panel sends the connection's password to its
            # host, so it must be an AI/ML API connection, and each new id would cost a secrets-backend read.
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"no task of the period used connection {conn_id!r}")
        chosen = conn_id or (connections[0] if connections else DEFAULT_CONN_ID)
        context = PageContext(_ui_root(request), request.url.path, connections=connections)
        return _html(report, context, key_panel(chosen, user))

    @app.get("/spend/dags/{dag_id}", response_class=HTMLResponse, dependencies=read_xcoms)
    def dag_spend_page(
        dag_id: str, request: Request, session: SessionDep, period: PeriodDep, top: Top = 10
    ) -> HTMLResponse:
        """Spend of one DAG (its tab in the UI); ``requires_access_dag`` checked the user may read it."""
        report = spend_report(session, period, [dag_id], top=top)
        return _html(report, PageContext(_ui_root(request), request.url.path, dag_id=dag_id), None)

    @app.get("/static/icon.svg", include_in_schema=False)
    def icon() -> Response:
        """The navigation icon (public, like the UI's own static files)."""
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    return app


def _html(report: SpendReport, context: PageContext, panel: KeyPanel | None) -> HTMLResponse:
    # The figures are the user's: never stored by a shared cache, and framed only by Airflow's own UI.
    headers = {
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "frame-ancestors 'self'",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(render_page(report, context, panel), headers=headers)


def period_from_query(start: date | None = None, end: date | None = None) -> Period:
    """The period the query asks for: the last 30 days by default, or 30 days from/to the one date given."""
    span = timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start is None and end is None:
        return Period.last_days()
    try:
        if end is None:
            assert start is not None
            end = max(start, min(start + span, datetime.now(UTC).date()))
        if start is None:
            start = end - span
        period = Period(start, end)
        period.bounds()
    except (ValueError, OverflowError) as problem:  # an end before the start, or dates past year 9999
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad period: {problem}") from None
    return period


PeriodDep = Annotated[Period, Depends(period_from_query)]


def _ui_root(request: Request) -> str:
    """Airflow's UI path: where this app is mounted, without the plugin's prefix."""
    return str(request.scope.get("root_path", "")).removesuffix(URL_PREFIX)


# --- the key panel ----------------------------------------------------------------------------------------------

_panels: dict[str, tuple[float, KeyPanel]] = {}
_panels_lock = threading.Lock()


def key_panel(conn_id: str, user: BaseUser) -> KeyPanel:
    """The balance and the key's 24 h spend of ``conn_id``, if the user may read that connection."""
    from airflow.api_fastapi.app import get_auth_manager

    allowed = get_auth_manager().is_authorized_connection(
        method="GET", details=ConnectionDetails(conn_id=conn_id, team_name=_team_of(conn_id)), user=user
    )
    if not allowed:
        return KeyPanel(conn_id, problem="you may not read this connection")
    with _panels_lock:
        cached = _panels.get(conn_id)
    if cached is not None and time.monotonic() - cached[0] < PANEL_TTL_SECONDS:
        return cached[1]
    panel = _read_panel(conn_id)
    with _panels_lock:
        _panels[conn_id] = (time.monotonic(), panel)
    return panel


def _team_of(conn_id: str) -> str | None:
    """The connection's team (multi-team deployments check it, as Airflow's own connection routes do)."""
    from airflow.models.connection import Connection

    get_team_name = getattr(Connection, "get_team_name", None)
    try:
        return None if get_team_name is None else get_team_name(conn_id)
    except Exception:  # not a stored connection (env or secrets backend): no team
        return None


def _read_panel(conn_id: str) -> KeyPanel:
    from airflow.exceptions import AirflowNotFoundException

    from airflow_provider_aiml.exceptions import AimlApiError
    from airflow_provider_aiml.hooks.aiml import AimlApiHook

    hook = AimlApiHook(aiml_conn_id=conn_id)
    try:
        return KeyPanel(
            conn_id,
            balance=hook.billing(timeout=ACCOUNT_TIMEOUT_SECONDS),
            usage=hook.key_usage("24h", timeout=ACCOUNT_TIMEOUT_SECONDS),
        )
    except AimlApiError as error:  # the provider's errors never hold the key
        return KeyPanel(conn_id, problem=error.message)
    except AirflowNotFoundException:
        return KeyPanel(conn_id, problem="no such connection")
    except Exception as error:  # anything else: its type only, as its text is not the provider's
        log.warning("Reading the balance of connection %s failed: %s", conn_id, type(error).__name__)
        return KeyPanel(conn_id, problem=f"could not be read ({type(error).__name__})")
    finally:
        hook.close()


def clear_panel_cache() -> None:
    """Forget the cached key panels (tests, or after changing a connection)."""
    with _panels_lock:
        _panels.clear()

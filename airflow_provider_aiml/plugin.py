"""The provider's Airflow plugin: an "AI/ML API" spend page in the UI's navigation and a tab on every DAG.

Registered through the package's ``airflow.plugins`` entry point, so installing the provider is enough (nothing to
copy into ``plugins/``). Every Airflow process imports this module when it loads plugins, so it only declares
things: the FastAPI app behind the pages (:mod:`airflow_provider_aiml.spend.app`) is built the first time
Airflow asks for :attr:`AimlApiPlugin.fastapi_apps`, which only the API server does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

URL_PREFIX = "/aiml"
"""Where Airflow's API server mounts the plugin's app."""
NAV_ROUTE = "aiml-spend"
"""The UI's route of the navigation page: ``/plugin/aiml-spend``."""
DAG_ROUTE = "aiml-spend-dag"
"""The UI's route of a DAG's tab: ``/dags/<dag_id>/plugin/aiml-spend-dag``."""
PLUGIN_NAME = "aiml_api"


@cache
def _apps() -> list[dict[str, Any]]:
    from airflow_provider_aiml.spend.app import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "AI/ML API spend"}]


class AimlApiPlugin(AirflowPlugin):
    """Spend and tokens of the provider's tasks, and the key's balance, in Airflow's UI."""

    name = PLUGIN_NAME
    # The UI shows each view in a frame of its own page (``url_route``); ``href`` is relative to the UI's base
    # URL, so the pages follow Airflow when it is served under a path.
    external_views = [
        {
            "name": "AI/ML API",
            "href": URL_PREFIX.lstrip("/") + "/spend",
            "destination": "nav",
            "url_route": NAV_ROUTE,
            "icon": URL_PREFIX.lstrip("/") + "/static/icon.svg",
            "nav_top_level": True,
        },
        {
            "name": "AI/ML API spend",
            "href": URL_PREFIX.lstrip("/") + "/spend/dags/{DAG_ID}",
            "destination": "dag",
            "url_route": DAG_ROUTE,
        },
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]  # a list attribute in AirflowPlugin
        """The spend pages' app, mounted at :data:`URL_PREFIX` (built on first access)."""
        return _apps()

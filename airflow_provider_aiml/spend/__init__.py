"""Spend in the Airflow UI: what the provider's tasks spent, read from their XCom ``aiml_spend`` records.

``report`` sums the records in SQL (by DAG, task, model, day and connection, and the most expensive runs),
``charts`` draws them as inline SVG, ``page`` renders the HTML, and ``app`` is the FastAPI app the plugin
(:mod:`airflow_provider_aiml.plugin`) mounts in Airflow's API server, behind Airflow's own authentication.
Only the API server imports this package.
"""

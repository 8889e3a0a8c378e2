"""Connection-wide limits and budgets, shared by every task, worker and triggerer using the connection.

The connection's extras ``max_usd_per_day``, ``max_requests_per_minute`` and ``max_concurrency`` are applied
by :mod:`.limiter` to every request the hook sends, with the state kept in a store all of them share: the
local SQLite file (:mod:`.local`, the default, one machine) or Redis (:mod:`.redis`, named by the
``limits_redis_conn_id`` extra). The algorithms are described in :mod:`.plan`.
"""

from airflow_provider_aiml.limits.limiter import ConnectionLimiter, Lease, limiter_for, reset_limiters
from airflow_provider_aiml.limits.plan import Admission, LimitPlan

__all__ = ["Admission", "ConnectionLimiter", "Lease", "LimitPlan", "limiter_for", "reset_limiters"]

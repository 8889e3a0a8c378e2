"""The shared store for deployments of several machines: Redis, through an Airflow Redis connection.

Every operation is one Lua script, run atomically by Redis with its own clock (``TIME``), so the workers'
clocks do not matter for the rate and the leases (the UTC day of the budget is the worker's). The keys of a
connection share a hash tag, so the store also works on Redis Cluster. The client is the Redis provider's
(``RedisHook.get_conn()``), given a socket timeout when the connection sets none, so a Redis that stops
answering fails the call (``AimlLimitStoreError``) rather than hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from airflow_provider_aiml.exceptions import AimlConfigurationError
from airflow_provider_aiml.limits.plan import DAY_KEPT_S, GRANTED, SLOT_POLL_S, Admission, LimitPlan

SOCKET_TIMEOUT_S = 5.0
RELEASED_KEPT_S = 3600
# KEYS: rate, leases, spend of the day (a hash: usd, calls). ARGV: lease id, interval (-1: none), tolerance,
# max concurrency (-1: none), lease seconds, max usd (-1: none), slot poll seconds, whether to take a lease.
# Numbers go back as strings (Redis would truncate a Lua number to an integer), and times are written with %.6f
# (Lua's tostring keeps 14 digits: 0.1 ms for a Unix time).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_slots, lease_s, max_usd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local in_flight = 0
if ARGV[8] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  in_flight = redis.call('ZCARD', KEYS[2])
end
if max_usd >= 0 then
  local spent = tonumber(redis.call('HGET', KEYS[3], 'usd') or '0')
  local calls = tonumber(redis.call('HGET', KEYS[3], 'calls') or '0')
  local average = 0
  if calls > 0 then average = spent / calls end
  if spent >= max_usd then return {'budget', tostring(spent), tostring(in_flight)} end
  if spent + in_flight * average >= max_usd then return {'in_flight', ARGV[7], tostring(in_flight)} end
end
if max_slots >= 0 and in_flight >= max_slots then return {'slots', ARGV[7], tostring(in_flight)} end
if interval >= 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > 0 then return {'rate', string.format('%.6f', wait)} end
  redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'PX', math.ceil((tat + interval - now + 60) * 1000))
end
if ARGV[8] == '1' then
  redis.call('ZADD', KEYS[2], now + lease_s, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease_s * 2000))
end
return {'ok'}
"""
# KEYS: leases, spend of the day, released marker of the lease. ARGV: lease id, usd (empty: none reported),
# seconds to keep the day, seconds to keep the marker. The marker makes a release that is sent again (a retry
# of the client after a lost reply) count its cost once.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '' then return 0 end
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then return 0 end
redis.call('HINCRBYFLOAT', KEYS[2], 'usd', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'calls', 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""
# KEYS: leases. ARGV: lease seconds, lease ids...
_RENEW = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local held = 0
for i = 2, #ARGV do held = held + redis.call('ZADD', KEYS[1], 'XX', 'CH', expires, ARGV[i]) end
if held > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 2000)) end
return held
"""


class RedisLimitStore:
    """Limit state in Redis, shared by every machine of the deployment."""

    def __init__(self, redis_conn_id: str) -> None:
        self.redis_conn_id = redis_conn_id
        self.location = f"Redis connection {redis_conn_id!r}"
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def admit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        reply = self._script("admit", _ADMIT)(keys=_keys(plan, day), args=_admit_args(plan, lease_id))
        return _admission(reply)

    def release(self, plan: LimitPlan, lease_id: str, day: str, usd: float | None) -> None:
        keys = [f"{plan.namespace}:slots", f"{plan.namespace}:usd:{day}", f"{plan.namespace}:released:{lease_id}"]
        cost = "" if usd is None else repr(float(usd))
        self._script("release", _RELEASE)(keys=keys, args=[lease_id, cost, DAY_KEPT_S, RELEASED_KEPT_S])

    def renew(self, plan: LimitPlan, lease_ids: Collection[str]) -> int:
        if not lease_ids:
            return 0
        return int(self._script("renew", _RENEW)(keys=[f"{plan.namespace}:slots"], args=[plan.lease_s, *lease_ids]))

    def spent(self, plan: LimitPlan, day: str) -> float:
        value = self._redis().hget(f"{plan.namespace}:usd:{day}", "usd")
        return float(value) if value is not None else 0.0

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # redis-py's pool notices the fork itself and opens new connections

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._scripts.clear()

    def _redis(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    from airflow.providers.redis.hooks.redis import RedisHook
                except ImportError:
                    raise AimlConfigurationError(
                        f"The connection-wide limits are kept in {self.location}, which needs the Redis provider: "
                        "pip install 'airflow-provider-aiml[redis]'"
                    ) from None
                client = RedisHook(redis_conn_id=self.redis_conn_id).get_conn()
                for pool in _pools_of(client):
                    if pool.connection_kwargs.get("socket_timeout") is None:
                        pool.connection_kwargs["socket_timeout"] = SOCKET_TIMEOUT_S
                    if pool.connection_kwargs.get("socket_connect_timeout") is None:
                        pool.connection_kwargs["socket_connect_timeout"] = SOCKET_TIMEOUT_S
                self._client = client
            return self._client

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._redis().register_script(source)
        return script


def _pools_of(client: Any) -> list[Any]:
    """The connection pools of a client: one for ``Redis``, one per node for ``RedisCluster``."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        return [pool]
    nodes: list[Any] = getattr(client, "get_nodes", list)()
    return [node.redis_connection.connection_pool for node in nodes if getattr(node, "redis_connection", None)]


def _keys(plan: LimitPlan, day: str) -> list[str]:
    return [f"{plan.namespace}:rate", f"{plan.namespace}:slots", f"{plan.namespace}:usd:{day}"]


def _admit_args(plan: LimitPlan, lease_id: str) -> list[Any]:
    def number(value: float | None) -> str:
        return "-1" if value is None else repr(float(value))

    return [
        lease_id,
        number(plan.interval_s),
        repr(plan.tolerance_s),
        number(plan.max_concurrency),
        repr(plan.lease_s),
        number(plan.max_usd_per_day),
        repr(SLOT_POLL_S),
        "1" if plan.takes_leases else "0",
    ]


def _admission(reply: list[Any]) -> Admission:
    verdict = _text(reply[0])
    if verdict == "ok":
        return GRANTED
    if verdict == "budget":
        return Admission(False, "budget", spent_usd=float(_text(reply[1])), in_flight=int(_text(reply[2])))
    if verdict == "slots":
        return Admission(False, "slots", wait_s=float(_text(reply[1])), in_use=int(_text(reply[2])))
    if verdict == "in_flight":
        return Admission(False, "in_flight", wait_s=float(_text(reply[1])), in_flight=int(_text(reply[2])))
    return Admission(False, "rate", wait_s=float(_text(reply[1])))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""The shared store for deployments of several machines: Redis, through an Airflow Redis connection.

Every operation is one Lua script, run atomically by Redis with its own clock (``TIME``), so the workers'
clocks do not matter. The keys of a connection share a hash tag, so the store also works on Redis Cluster.
The sync client is the Redis provider's (``RedisHook.get_conn()``); the async one, for triggers and batch
work, is built from the same connection parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from airflow_provider_aiml.exceptions import AimlConfigurationError
from airflow_provider_aiml.limits.plan import DAY_KEPT_S, GRANTED, SLOT_POLL_S, Admission, LimitPlan

# KEYS: rate, slots, spend of the day. ARGV: lease id, interval (-1: none), tolerance, max concurrency
# (-1: none), lease seconds, max usd (-1: none), slot poll seconds. Numbers go back as strings: Redis would
# truncate a Lua number to an integer. Times are written with %.6f: Lua's tostring keeps 14 digits, which for a
# Unix time is 0.1 ms, and rounding the interval to that would let a high rate run fast.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_slots, lease_s, max_usd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if max_usd >= 0 then
  local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
  if spent >= max_usd then return {'budget', tostring(spent)} end
end
if max_slots >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local in_use = redis.call('ZCARD', KEYS[2])
  if in_use >= max_slots then return {'slots', ARGV[7], tostring(in_use)} end
end
if interval >= 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > 0 then return {'rate', string.format('%.6f', wait)} end
  redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'PX', math.ceil((tat + interval - now + 60) * 1000))
end
if max_slots >= 0 then
  redis.call('ZADD', KEYS[2], now + lease_s, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease_s * 2000))
end
return {'ok'}
"""
# KEYS: slots, spend of the day. ARGV: lease id, usd, seconds to keep the day.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
"""
# KEYS: slots. ARGV: lease seconds, lease ids...
_RENEW = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local held = 0
for i = 2, #ARGV do held = held + redis.call('ZADD', KEYS[1], 'XX', 'CH', expires, ARGV[i]) end
if held > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 2000)) end
return held
"""
_ASYNC_OPTIONS = (
    "host",
    "port",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "health_check_interval",
    "client_name",
)


class RedisLimitStore:
    """Limit state in Redis, shared by every machine of the deployment."""

    def __init__(self, redis_conn_id: str) -> None:
        self.redis_conn_id = redis_conn_id
        self.location = f"Redis connection {redis_conn_id!r}"
        self._client: Any = None
        self._async: dict[asyncio.AbstractEventLoop, dict[str, Any]] = {}
        self._scripts: dict[str, Any] = {}

    def admit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        return _admission(self._script("admit", _ADMIT)(keys=_admit_keys(plan, day), args=_admit_args(plan, lease_id)))

    def release(self, plan: LimitPlan, lease_id: str, day: str, usd: float) -> None:
        self._script("release", _RELEASE)(keys=_release_keys(plan, day), args=[lease_id, repr(usd), DAY_KEPT_S])

    def renew(self, plan: LimitPlan, lease_ids: Collection[str]) -> int:
        if not lease_ids:
            return 0
        return int(self._script("renew", _RENEW)(keys=[f"{plan.namespace}:slots"], args=[plan.lease_s, *lease_ids]))

    def spent(self, plan: LimitPlan, day: str) -> float:
        value = self._sync().get(f"{plan.namespace}:usd:{day}")
        return float(value) if value is not None else 0.0

    async def aadmit(self, plan: LimitPlan, lease_id: str, day: str) -> Admission:
        script = self._async_scripts()["admit"]
        return _admission(await script(keys=_admit_keys(plan, day), args=_admit_args(plan, lease_id)))

    async def arelease(self, plan: LimitPlan, lease_id: str, day: str, usd: float) -> None:
        script = self._async_scripts()["release"]
        await script(keys=_release_keys(plan, day), args=[lease_id, repr(usd), DAY_KEPT_S])

    async def aclose(self) -> None:
        """Close the running loop's async client (the next async call makes a new one)."""
        scripts = self._async.pop(asyncio.get_running_loop(), None)
        if scripts is not None:
            await scripts["client"].aclose()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._scripts.clear()
        self._async.clear()  # their loops have ended, or close them themselves

    # --- clients --------------------------------------------------------------------------------------------

    def _sync(self) -> Any:
        if self._client is None:
            try:
                from airflow.providers.redis.hooks.redis import RedisHook
            except ImportError:
                raise AimlConfigurationError(
                    f"The connection-wide limits are kept in {self.location}, which needs the Redis provider: "
                    "pip install 'airflow-provider-aiml[redis]'"
                ) from None
            self._client = RedisHook(redis_conn_id=self.redis_conn_id).get_conn()
        return self._client

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._sync().register_script(source)
        return script

    def _async_scripts(self) -> dict[str, Any]:
        """The scripts on an async client of the running loop (made from the sync client's parameters)."""
        loop = asyncio.get_running_loop()
        scripts = self._async.get(loop)
        if scripts is None:
            import redis.asyncio

            pool = self._sync().connection_pool
            options = {key: pool.connection_kwargs[key] for key in _ASYNC_OPTIONS if key in pool.connection_kwargs}
            if "SSL" in getattr(pool.connection_class, "__name__", ""):
                options["ssl"] = True
                options.update({k: v for k, v in pool.connection_kwargs.items() if k.startswith("ssl_")})
            for ended in [other for other in self._async if other.is_closed()]:
                del self._async[ended]
            client = redis.asyncio.Redis(**options)
            scripts = self._async[loop] = {
                "client": client,
                "admit": client.register_script(_ADMIT),
                "release": client.register_script(_RELEASE),
            }
        return scripts


def _admit_keys(plan: LimitPlan, day: str) -> list[str]:
    return [f"{plan.namespace}:rate", f"{plan.namespace}:slots", f"{plan.namespace}:usd:{day}"]


def _release_keys(plan: LimitPlan, day: str) -> list[str]:
    return [f"{plan.namespace}:slots", f"{plan.namespace}:usd:{day}"]


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
    ]


def _admission(reply: list[Any]) -> Admission:
    verdict = _text(reply[0])
    if verdict == "ok":
        return GRANTED
    if verdict == "budget":
        return Admission(False, "budget", spent_usd=float(_text(reply[1])))
    if verdict == "slots":
        return Admission(False, "slots", wait_s=float(_text(reply[1])), in_use=int(_text(reply[2])))
    return Admission(False, "rate", wait_s=float(_text(reply[1])))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""The ``/_emulator/*`` control endpoints, so an emulator in another process can be driven over HTTP."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_aiml.testing.faults import Fault
from airflow_provider_aiml.testing.replies import ReplyOverride
from airflow_provider_aiml.testing.scripts import ScriptedCall, ScriptedReply, ToolLoop
from airflow_provider_aiml.testing.settings import EmulatorSettings
from airflow_provider_aiml.testing.state import EmulatorState, normalize_fault_rates

CONTROL_PREFIX = "/_emulator/"


class ControlError(ValueError):
    """A bad control request (answered with 400)."""


def handle_control(
    method: str, route: str, raw_body: bytes, state: EmulatorState, settings: EmulatorSettings
) -> tuple[int, dict[str, Any]]:
    """Run one control request; returns ``(status, json_payload)``.

    Endpoints: ``POST faults``, ``POST fault_rates``, ``POST reset``, ``POST reply``, ``POST config``,
    ``POST|GET|DELETE script``, ``POST|DELETE loop``, ``GET requests``, ``GET request_log``, ``GET stats``,
    ``GET config``, ``POST|GET|DELETE catalog``.
    """
    name = route[len(CONTROL_PREFIX) :].strip("/")
    handlers = {
        ("POST", "faults"): _faults,
        ("POST", "fault_rates"): _fault_rates,
        ("POST", "reset"): _reset,
        ("POST", "reply"): _reply,
        ("POST", "config"): _config,
        ("GET", "requests"): _requests,
        ("GET", "request_log"): _request_log,
        ("GET", "stats"): _stats,
        ("GET", "config"): _get_config,
        ("POST", "script"): _script,
        ("GET", "script"): _get_script,
        ("DELETE", "script"): _clear_script,
        ("POST", "loop"): _loop,
        ("DELETE", "loop"): _stop_loop,
        ("POST", "catalog"): _change_catalog,
        ("GET", "catalog"): _get_catalog,
        ("DELETE", "catalog"): _reset_catalog,
    }
    handler = handlers.get((method, name))
    if handler is None:
        return 404, {"error": f"unknown control endpoint {method} {route}"}
    try:
        payload = _parse(raw_body, allow_list=name == "script") if method == "POST" else {}
        return 200, handler(payload, state, settings)
    except (ControlError, ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}


def _parse(raw_body: bytes, *, allow_list: bool = False) -> dict[str, Any]:
    if not raw_body.strip():
        return {}
    try:
        payload = json.loads(raw_body)
    except ValueError as exc:
        raise ControlError(f"body is not valid JSON: {exc}") from exc
    if allow_list and isinstance(payload, list):
        return {"replies": payload}
    if not isinstance(payload, dict):
        raise ControlError("body must be a JSON object")
    return payload


def _faults(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    times = payload.get("times", 1)
    fault = Fault.from_dict(payload)
    pending = state.add_fault(fault, times)
    return {"queued": fault.to_dict(), "times": times, "pending_faults": pending}


def _fault_rates(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    entries = payload.get("rates", [])
    if not isinstance(entries, list):
        raise ControlError("'rates' must be a list of {fault, probability}")
    pairs: list[tuple[Fault, float]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("fault"), dict):
            raise ControlError("each rate must look like {'fault': {...}, 'probability': 0.1}")
        if "probability" not in entry:
            raise ControlError("each rate needs a 'probability'")
        pairs.append((Fault.from_dict(entry["fault"]), entry["probability"]))
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ControlError("'seed' must be an integer")
    state.set_fault_rates(normalize_fault_rates(pairs), seed)
    return {"rates": len(pairs), "seed": seed}


def _reset(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    state.reset()
    return {"reset": True}


def _reply(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    unknown = sorted(set(payload) - {"content", "reasoning", "finish_reason", "tool_calls"})
    if unknown:
        raise ControlError(f"unknown reply keys: {unknown}")
    override = ReplyOverride.build(
        content=payload.get("content"),
        reasoning=payload.get("reasoning"),
        finish_reason=payload.get("finish_reason"),
        tool_calls=payload.get("tool_calls"),
    )
    state.set_reply_override(override)
    return {"reply": None if override is None else override.to_dict()}


def _config(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    settings.update(payload)
    return settings.to_dict()


def _get_config(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    return settings.to_dict()


def _requests(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    return {"requests": [request.to_dict() for request in state.requests()]}


def _request_log(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    """Every request without its body or headers: what a run of tens of thousands of calls is checked from."""
    return {
        "requests": [
            {
                "method": request.method,
                "route": request.route,
                "client_request_id": request.client_request_id,
                "received_at": request.received_at,
                "status": request.status,
            }
            for request in state.requests()
        ]
    }


def _stats(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    return state.stats()


def _script(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    unknown = sorted(set(payload) - {"replies"})
    if unknown:
        raise ControlError(f"unknown script keys: {unknown}")
    entries = payload.get("replies")
    if not isinstance(entries, list) or not entries:
        raise ControlError("the body must be a non-empty JSON list of replies (or {'replies': [...]})")
    replies = [ScriptedReply.from_dict(entry) for entry in entries]  # all checked before any is queued
    left = state.add_script(replies)
    return {"queued": len(replies), "scripted_replies_left": left}


def _get_script(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    return state.script_dict()


def _clear_script(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    state.clear_script()
    return state.script_dict()


def _loop(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    unknown = sorted(set(payload) - {"name", "arguments"})
    if unknown:
        raise ControlError(f"unknown loop keys: {unknown}")
    arguments = payload.get("arguments")
    call = ScriptedCall.build(payload.get("name"), arguments, raw=isinstance(arguments, str))
    loop = ToolLoop(name=call.name, arguments=call.arguments)
    state.set_loop(loop)
    return {"loop": loop.to_dict()}


def _stop_loop(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    state.set_loop(None)
    return {"loop": None}


def _change_catalog(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    """``{"put": [items], "remove": [ids], "deprecate": [ids]}``: add or replace items, take models out, or take
    them out and answer ``Model is deprecated`` for them. Everything is checked before anything changes."""
    unknown = sorted(set(payload) - {"put", "remove", "deprecate"})
    if unknown:
        raise ControlError(f"unknown catalog keys: {unknown}; allowed: put, remove, deprecate")
    put, remove, deprecate = (payload.get(name, []) for name in ("put", "remove", "deprecate"))
    if not isinstance(put, list) or not all(isinstance(item, dict) for item in put):
        raise ControlError("'put' must be a list of catalog items")
    for name, ids in (("remove", remove), ("deprecate", deprecate)):
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise ControlError(f"'{name}' must be a list of model ids")
    state.catalog.put(put)
    removed = state.catalog.remove(deprecate, deprecate=True) + state.catalog.remove(remove)
    return {**state.catalog.summary(), "removed": removed}


def _get_catalog(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    return state.catalog.summary()


def _reset_catalog(payload: dict[str, Any], state: EmulatorState, settings: EmulatorSettings) -> dict[str, Any]:
    state.catalog.reset()
    return state.catalog.summary()

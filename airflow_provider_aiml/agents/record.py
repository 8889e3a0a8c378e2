"""The durable record of an agent run: every model step and tool result, written as it completes.

A retried task reads it back and replays what is recorded instead of calling the API or a tool again. Each
entry carries the run's fingerprint (model, first messages, tools and parameters); entries of another
fingerprint are ignored, so a changed prompt or tool list starts afresh. A tool call is recorded twice: when it
starts and when it returns. A call that started in an earlier try but never returned (the worker died while it
ran) is not run again, as it may already have taken effect; the model is told so instead.

The entries go through the batch operator's :class:`~airflow_provider_aiml.batch.checkpoint.Checkpoint`,
flushed after every entry: fsynced for a local file, rewritten for object storage.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_aiml.batch.checkpoint import Checkpoint

if TYPE_CHECKING:
    from airflow_provider_aiml.models import ChatCompletionResult


def run_fingerprint(
    model: str | None,
    messages: Sequence[Mapping[str, Any]],
    tool_specs: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
    *,
    task: str = "",
) -> str:
    """A hash of everything that shapes the run's requests, and of the task instance that runs it (``task``), so
    tasks that share a record file never replay each other's steps."""
    material = json.dumps([model, messages, tool_specs, params, extra_body, task], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class StepRecord:
    """What earlier tries of this run recorded, and the place new steps are written to.

    Without a location nothing is recorded and nothing replayed (a retried task starts the run afresh).
    """

    def __init__(
        self, location: str | os.PathLike[str] | None, fingerprint: str, *, conn_id: str | None = None
    ) -> None:
        self.location = None if location is None else str(location)
        self.fingerprint = fingerprint
        self._checkpoint = None if location is None else Checkpoint(location, flush_interval=0.0, conn_id=conn_id)
        self._entries: dict[str, dict[str, Any]] = {}
        self._next_index = 0
        self.ignored = 0
        """Entries of another fingerprint found when the record was opened (the run changed since)."""

    def open(self) -> None:
        """Read the entries of earlier tries."""
        if self._checkpoint is None:
            return
        # Read by line, not by index: tasks writing one file at once (mapped instances sharing a path) number
        # their lines alike, and each keeps only the lines of its own fingerprint.
        for entry in self._checkpoint.load_entries():
            if entry.get("fingerprint") != self.fingerprint or "key" not in entry:
                self.ignored += 1
                continue
            self._next_index += 1
            self._entries[str(entry["key"])] = entry

    @property
    def replayable(self) -> int:
        """How many recorded entries this run can replay."""
        return len(self._entries)

    def model_step(self, step: int) -> dict[str, Any] | None:
        """The recorded answer of model step ``step`` (1-based), if any."""
        return self._entries.get(f"model:{step}")

    def tool_result(self, step: int, call_id: str) -> dict[str, Any] | None:
        """The recorded outcome of a tool call, if it returned in an earlier try."""
        return self._entries.get(f"tool:{step}:{call_id}")

    def tool_started(self, step: int, call_id: str) -> bool:
        """Whether a tool call was started in an earlier try (it may not have returned)."""
        return f"start:{step}:{call_id}" in self._entries

    def add_model_step(self, step: int, answer: ChatCompletionResult) -> None:
        if self._checkpoint is not None:  # an answer is dumped only to be written
            self._add(f"model:{step}", {"answer": answer.model_dump(mode="json", exclude={"raw"})})

    def add_tool_start(self, step: int, call_id: str, name: str) -> None:
        self._add(f"start:{step}:{call_id}", {"name": name})

    def add_tool_result(self, step: int, call_id: str, outcome: dict[str, Any]) -> None:
        self._add(f"tool:{step}:{call_id}", {"outcome": outcome})

    def close(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.close()

    def _add(self, key: str, data: dict[str, Any]) -> None:
        if self._checkpoint is None:
            return  # nothing is recorded without a location
        entry = {"index": self._next_index, "key": key, "fingerprint": self.fingerprint, **data}
        self._next_index += 1
        self._entries[key] = entry
        self._checkpoint.append(entry)  # flushed at once (flush_interval 0): durable before the run goes on

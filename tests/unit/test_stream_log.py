"""Writing a streamed answer to the task log: by line or every interval, never one record per token."""

from __future__ import annotations

import pytest

from airflow_provider_aiml.models import StreamDelta
from airflow_provider_aiml.operators._stream_log import FLUSH_INTERVAL_S, MAX_BUFFER_CHARS, StreamLogWriter


class FakeLog:
    """Records ``info`` calls; ``lines`` renders them the way logging would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def info(self, message: str, *args: object) -> None:
        self.calls.append((message, args))

    @property
    def lines(self) -> list[str]:
        return [message % args for message, args in self.calls]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def writer(log, clock) -> StreamLogWriter:
    return StreamLogWriter(log, interval=2.0, clock=clock)


def answer(text: str, attempt: int = 1) -> StreamDelta:
    return StreamDelta(content=text, attempt=attempt)


def thought(text: str, attempt: int = 1) -> StreamDelta:
    return StreamDelta(reasoning=text, attempt=attempt)


def test_defaults():
    assert FLUSH_INTERVAL_S == 2.0
    assert MAX_BUFFER_CHARS == 400


def test_tokens_without_newline_are_not_logged_one_by_one(writer, log):
    for token in ["Hel", "lo", ",", " wor", "ld"]:
        writer.write(answer(token))

    assert log.calls == []

    writer.flush()

    assert log.calls == [("[%s] %s", ("answer", "Hello, world"))]


def test_complete_lines_are_logged_as_they_finish(writer, log):
    writer.write(answer("First li"))
    writer.write(answer("ne.\nSecond"))

    assert log.lines == ["[answer] First line."]

    writer.write(answer(" line.\nThird line.\nFour"))

    assert log.lines == ["[answer] First line.", "[answer] Second line.", "[answer] Third line."]

    writer.flush()

    assert log.lines[-1] == "[answer] Four"
    assert len(log.calls) == 4


def test_records_use_lazy_formatting(writer, log):
    writer.write(answer("100% done\n"))

    assert log.calls == [("[%s] %s", ("answer", "100% done"))]


def test_unfinished_line_is_logged_after_the_interval(writer, log, clock):
    writer.write(answer("slow "))
    clock.now += 1.9
    writer.write(answer("tokens "))

    assert log.calls == []

    clock.now += 0.1
    writer.write(answer("arrive"))

    assert log.lines == ["[answer] slow tokens arrive"]

    clock.now += 1.0
    writer.write(answer(" more"))

    assert len(log.calls) == 1  # the interval restarts at every flush


def test_custom_interval(log, clock):
    writer = StreamLogWriter(log, interval=10.0, clock=clock)
    writer.write(answer("a"))
    clock.now += 9.99
    writer.write(answer("b"))

    assert log.calls == []

    clock.now += 0.01
    writer.write(answer("c"))

    assert log.lines == ["[answer] abc"]


def test_many_tokens_make_few_records(writer, log):
    for _ in range(1000):
        writer.write(answer("x"))

    # Without newlines and without time passing, the buffer is flushed only when it is full.
    assert log.lines == ["[answer] " + "x" * MAX_BUFFER_CHARS] * 2

    writer.flush()

    assert log.lines[-1] == "[answer] " + "x" * 200
    assert len(log.calls) == 3


def test_reasoning_and_answer_are_separate_sections(writer, log):
    writer.write(StreamDelta(content=""))  # the role chunk of a stream
    writer.write(thought("Okay"))
    writer.write(thought(", the user said hello."))
    writer.write(answer("Hello! "))

    assert log.lines == ["[reasoning] Okay, the user said hello."]

    writer.write(answer("How can I help?"))
    writer.flush()

    assert log.lines == ["[reasoning] Okay, the user said hello.", "[answer] Hello! How can I help?"]


def test_delta_with_both_reasoning_and_content(writer, log):
    writer.write(StreamDelta(reasoning="think", content="say"))
    writer.flush()

    assert log.lines == ["[reasoning] think", "[answer] say"]


def test_multiline_reasoning(writer, log):
    writer.write(thought("step one\nstep two\n"))
    writer.write(answer("done"))
    writer.flush()

    assert log.lines == ["[reasoning] step one", "[reasoning] step two", "[answer] done"]


def test_restart_on_a_new_attempt_is_logged(writer, log):
    writer.write(thought("first try thinking"))
    writer.write(answer("partial ans"))

    writer.write(thought("second try", attempt=2))

    assert log.lines == [
        "[reasoning] first try thinking",
        "[answer] partial ans",
        "Stream restarted from the beginning (try 2)",
    ]
    assert log.calls[-1] == ("Stream restarted from the beginning (try %d)", (2,))

    writer.write(answer("final", attempt=2))
    writer.flush()

    assert log.lines[3:] == ["[reasoning] second try", "[answer] final"]


def test_restart_is_logged_once_per_attempt(writer, log):
    writer.write(answer("a"))
    writer.write(answer("b", attempt=2))
    writer.write(answer("c", attempt=2))
    writer.write(answer("d", attempt=3))
    writer.flush()

    assert log.lines == [
        "[answer] a",
        "Stream restarted from the beginning (try 2)",
        "[answer] bc",
        "Stream restarted from the beginning (try 3)",
        "[answer] d",
    ]


def test_restart_on_the_first_delta_of_a_later_attempt(writer, log):
    writer.write(answer("x", attempt=2))
    writer.flush()

    assert log.lines == ["Stream restarted from the beginning (try 2)", "[answer] x"]


def test_empty_deltas_and_whitespace_log_nothing(writer, log, clock):
    writer.write(StreamDelta())
    writer.write(StreamDelta(finish_reason="stop"))
    writer.write(answer("   "))
    clock.now += 5
    writer.write(StreamDelta())
    writer.flush()
    writer.flush()

    assert log.calls == []


def test_flush_of_nothing_logs_nothing(writer, log):
    writer.flush()

    assert log.calls == []


def test_uses_the_real_clock_by_default(log):
    writer = StreamLogWriter(log)
    writer.write(answer("tok"))

    assert log.calls == []

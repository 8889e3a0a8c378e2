"""The fault-injection suite: every test here is marked ``faults`` (deselected by default; ``make test-faults``).

Hypothesis profiles: ``faults-ci`` (default: derandomized, so CI runs the same examples every time) and
``faults-deep`` (random, ten times the examples): ``AIML_FAULTS_PROFILE=faults-deep make test-faults``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from airflow_provider_aiml.testing import AimlApiEmulator
from tests.faults.harness import BUILD_DIR, FAULTS_CONN_ID, FaultLedger, faults_connection

_HERE = Path(__file__).resolve().parent
set_hypothesis_home_dir(BUILD_DIR / "hypothesis")  # its caches and failure patches stay out of the work tree

settings.register_profile(
    "faults-ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "faults-deep",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("AIML_FAULTS_PROFILE", "faults-ci")
EXAMPLES_FACTOR = 10 if PROFILE == "faults-deep" else 1


def fuzz_settings(max_examples: int) -> settings:
    """Settings of one property test: the suite's profile, with this test's number of examples."""
    return settings(settings.get_profile(PROFILE), max_examples=max_examples * EXAMPLES_FACTOR)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of this directory ``faults`` (before ``-m`` selects)."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.faults)


class TimeLimitExceeded(BaseException):
    """A test ran past its time limit (a ``BaseException``, so hypothesis does not take it for a failing example)."""


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """A hard bound on each test (a module's ``TIME_LIMIT_S``, default 120 s): SIGALRM fails a hung test."""
    limit = float(getattr(request.module, "TIME_LIMIT_S", 120)) * EXAMPLES_FACTOR

    def expired(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"{request.node.nodeid} ran longer than its {limit:g} s limit")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def faults_emulator(monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[AimlApiEmulator]:
    """An emulator behind the ``aiml_faults`` connection (1 s timeout, 2 retries)."""
    with AimlApiEmulator() as emulator:
        monkeypatch.setenv(f"AIRFLOW_CONN_{FAULTS_CONN_ID.upper()}", faults_connection(emulator))
        yield emulator


@pytest.fixture
def ledger(faults_emulator: AimlApiEmulator) -> FaultLedger:
    """The fault ``faults_emulator`` applied to each chat request."""
    return FaultLedger(faults_emulator)

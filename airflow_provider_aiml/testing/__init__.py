"""A local emulator of the AI/ML API (aimlapi.com) for tests, demos and benchmarks.

Standard library only; it imports nothing from the rest of the provider, nor Airflow::

    from airflow_provider_aiml.testing import AimlApiEmulator, Fault

    with AimlApiEmulator(api_keys={"sk-good"}) as emu:
        emu.add_fault(Fault.status(429, retry_after=1), times=2)
        ...  # point the client at emu.base_url
"""

from airflow_provider_aiml.testing.emulator import AimlApiEmulator
from airflow_provider_aiml.testing.faults import ErrorBodyStyle, Fault, FaultKind
from airflow_provider_aiml.testing.records import RecordedRequest
from airflow_provider_aiml.testing.scripts import ScriptedCall, ScriptedReply
from airflow_provider_aiml.testing.settings import EmulatorSettings, MetaUsage, ReasoningStyle

__all__ = [
    "AimlApiEmulator",
    "EmulatorSettings",
    "ErrorBodyStyle",
    "Fault",
    "FaultKind",
    "MetaUsage",
    "ReasoningStyle",
    "RecordedRequest",
    "ScriptedCall",
    "ScriptedReply",
]

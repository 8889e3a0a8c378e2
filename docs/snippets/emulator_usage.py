"""The emulator samples of docs/emulator.md: starting one by hand and queueing faults (run by the tests)."""

from __future__ import annotations

from airflow_provider_aiml.testing import AimlApiEmulator, Fault


def start_one() -> AimlApiEmulator:
    # --8<-- [start:start]
    from airflow_provider_aiml.testing import AimlApiEmulator, Fault

    with AimlApiEmulator(api_keys={"sk-good"}) as emu:
        print(emu.base_url)  # http://127.0.0.1:<port>/v1
        emu.add_fault(Fault.status(429, retry_after=0))  # the next chat request gets a 429
    # --8<-- [end:start]
    return emu


def queue_faults(emu: AimlApiEmulator) -> None:
    # --8<-- [start:faults]
    emu.add_fault(Fault.status(429, retry_after=0), times=2)  # two rate limits, then normal answers
    emu.add_fault(Fault.status(502, body="html"))
    emu.set_fault_rates({Fault.status(503): 0.1, Fault.reset(): 0.05}, seed=1)  # 10 % and 5 % of requests
    # --8<-- [end:faults]

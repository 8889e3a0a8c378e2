"""A finished batch's recorded cost set against what the API billed for the same calls (``GET /v2/logs``).

The calls are found by the client request ids the batch sent (each record's, its re-asks' ``:v<n>`` and its
fallbacks' ``:f<n>``), in a window from a minute before the batch started to a minute after the read. Every
row of the window is read, as one id may have several rows (a retried try, perhaps billed after a timeout).
A charge is written after its answer, so while ids are missing the logs are read again, until
``timeout`` seconds have passed. A failure of the reconciliation is logged, never raised: the batch's own
outcome stands.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aiml.hooks.aiml import AimlApiHook
    from airflow_provider_aiml.hooks.logs import BilledUsage
    from airflow_provider_aiml.models import Usage

WINDOW_MARGIN = timedelta(minutes=1)
"""Added before the batch's start and after the read: the API's clock and ours may differ a little."""
REREAD_DELAYS = (2.0, 4.0, 8.0, 15.0)
"""Waits before reading the logs again while ids are missing (the last one repeats)."""
LOGS_REQUEST_TIMEOUT = 30.0
"""Seconds to wait for one page of the logs, at most (the connection's timeout when lower)."""
TOLERANCE_USD = 0.000001
"""A difference above this between recorded and billed is logged as a warning."""
FIELDS = ("billed_usd", "billed_credits", "billed_calls", "unbilled_client_request_ids")
"""What the reconciliation adds to XCom ``usage``."""


def reconcile_billing(
    hook: AimlApiHook,
    client_request_ids: Iterable[str],
    *,
    started_at: datetime,
    recorded: Usage,
    timeout: float,
    log: Any,
) -> dict[str, Any]:
    """The billed figures of the calls sent (``None`` each when the logs could not be read), logged against
    ``recorded`` (what the answers reported for the same calls)."""
    ids = list(dict.fromkeys(client_request_ids))
    if not ids:
        log.info("Billing reconciliation: this try sent no request, so nothing was billed")
        return dict(zip(FIELDS, (0.0, 0, 0, 0), strict=True))
    try:
        billed, reads = _read(hook, ids, started_at, timeout, log)
    except Exception as error:  # the logs endpoint down, a 429 that outlasts the backoff, a bad answer, ...
        log.warning(
            "Billing reconciliation failed (%s: %s); the batch's outcome stands and usage.billed_usd is null",
            type(error).__name__,
            getattr(error, "message", None) or error,
        )
        return dict.fromkeys(FIELDS)
    _log_difference(log, billed, recorded, len(ids), reads, timeout)
    return {
        "billed_usd": billed.usd,
        "billed_credits": billed.credits,
        "billed_calls": billed.count,
        "unbilled_client_request_ids": len(billed.missing),
    }


def _read(hook: AimlApiHook, ids: list[str], started_at: datetime, timeout: float, log: Any) -> tuple[BilledUsage, int]:
    """Read the window's rows of ``ids`` until none is missing or ``timeout`` seconds passed; the last read and
    the number of reads. The waits go through the hook's sleep (so tests need not wait)."""
    from airflow_provider_aiml.hooks.logs import billed_usage

    request_timeout = min(hook.settings.timeout, LOGS_REQUEST_TIMEOUT)
    began = time.monotonic()
    waited = 0.0
    reads = 0
    while True:
        now = datetime.now(started_at.tzinfo)
        billed = billed_usage(
            hook,
            ids,
            start=started_at - WINDOW_MARGIN,
            end=now + WINDOW_MARGIN,
            timeout=request_timeout,
            stop_early=False,
        )
        reads += 1
        # Slept time counts even when the sleep is a test's no-op, so the loop always ends.
        remaining = timeout - max(time.monotonic() - began, waited)
        if not billed.missing or remaining <= 0:
            return billed, reads
        delay = min(REREAD_DELAYS[min(reads, len(REREAD_DELAYS)) - 1], remaining)
        log.info(
            "Billing reconciliation: %d of %d client request ids not in GET /v2/logs yet; reading again in %.0fs",
            len(billed.missing),
            len(ids),
            delay,
        )
        hook._sleep(delay)
        waited += delay


def _log_difference(log: Any, billed: BilledUsage, recorded: Usage, sent: int, reads: int, timeout: float) -> None:
    recorded_usd = recorded.usd_spent
    difference = None if recorded_usd is None else billed.usd - recorded_usd
    missing = len(billed.missing)
    line = (
        "Billing reconciled for %d client request ids (%d read%s of GET /v2/logs): recorded %s, billed $%.7f "
        "(%d credits, %d rows, %d failed), difference %s; %d ids not found%s"
    )
    args = (
        sent,
        reads,
        "" if reads == 1 else "s",
        "unknown" if recorded_usd is None else f"${recorded_usd:.7f}",
        billed.usd,
        billed.credits,
        billed.count,
        billed.failed,
        "unknown" if difference is None else f"{difference:+.7f} USD",
        missing,
        "" if not missing else f" after {timeout:g}s (first: {', '.join(billed.missing[:3])})",
    )
    off = difference is not None and abs(difference) > TOLERANCE_USD
    if off or missing or not billed.complete:
        log.warning(line + (" (the read stopped at max_pages: more rows follow)" if not billed.complete else ""), *args)
    else:
        log.info(line, *args)

"""Command line: ``python -m airflow_provider_aiml.testing`` serves an emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_aiml.testing.emulator import AimlApiEmulator
from airflow_provider_aiml.testing.settings import META_USAGE_VARIANTS, REASONING_STYLES


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The CLI argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_aiml.testing",
        description="Serve a local AI/ML API emulator (loopback only) until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks a free one (default 8080)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before a reply / first chunk")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between SSE chunks")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeatable); default: any non-empty key",
    )
    parser.add_argument("--send-done", action="store_true", help="end streams with 'data: [DONE]'")
    parser.add_argument("--reasoning-style", choices=REASONING_STYLES, default="reasoning_content")
    parser.add_argument("--meta-usage", choices=[*META_USAGE_VARIANTS, "none"], default="credits_and_usd")
    parser.add_argument("--no-cost-headers", action="store_true", help="omit the x-aimlapi-* cost headers")
    parser.add_argument("--balance-usd", type=float, default=42.5, help="balance reported by /v2/billing")
    parser.add_argument("--stream-cost", action="store_true", help="put meta.usage in a stream's last chunk")
    parser.add_argument(
        "--serve-unknown-models", action="store_true", help="answer for model ids not in the catalog (no 404)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"refusing to bind non-loopback host {args.host!r}; use 127.0.0.1, ::1 or localhost")
    try:
        emulator = AimlApiEmulator(
            host=args.host.strip("[]"),
            port=args.port,
            api_keys=args.api_keys,
            latency=args.latency,
            chunk_delay=args.chunk_delay,
            send_done=args.send_done,
            reasoning_style=args.reasoning_style,
            meta_usage=None if args.meta_usage == "none" else args.meta_usage,
            cost_headers=not args.no_cost_headers,
            balance_usd=args.balance_usd,
            stream_cost=args.stream_cost,
            serve_unknown_models=args.serve_unknown_models,
        )
    except ValueError as exc:
        parser.error(str(exc))
    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        emulator.start()
        sys.stdout.write(f"AI/ML API emulator listening on {emulator.base_url}\n")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0

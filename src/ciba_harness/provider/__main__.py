"""CLI: ``python -m ciba_harness.provider --port N [--host H] [--config FILE] [--fault NAME ...]
[--fault-tenants] [--policy NAME ...] [--policy-tenants] [--tls] [--mtls-port N]
[--profile ciba|fapi-ciba] [--list-faults] [--list-policies]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from ciba_harness.provider.faults import FAULTS, FaultError, Faults, faults_listing, faults_markdown
from ciba_harness.provider.names import did_you_mean
from ciba_harness.provider.policies import (
    PolicyError,
    active_policies,
    policies_listing,
    policies_markdown,
    resolve_policies,
)
from ciba_harness.provider.server import ProviderStartError, start_provider
from ciba_harness.provider.settings import ProfileError, default_profile_path, load_profile

DEFAULT_CONFIG = default_profile_path()
PROG = "python -m ciba_harness.provider"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run the embedded reference CIBA provider.")
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--config", type=Path, default=None,
                   help=f"profile TOML (default {DEFAULT_CONFIG})")
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="inject a fault at the root provider (repeatable)")
    p.add_argument("--policy", action="append", default=[], metavar="NAME",
                   help="a provider policy or combination (repeatable; docs/policies.md)")
    p.add_argument("--policy-tenants", action="store_true",
                   help="also serve one provider per policy under /policy/NAME")
    p.add_argument("--fault-tenants", action="store_true",
                   help="also serve one provider per fault under /fault/NAME")
    p.add_argument("--webhook-url", default=None,
                   help="device webhook URL (overrides [reference_provider] device_webhook_url)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS (the profile's tls_certificate, else the generated test "
                        "PKI) plus an mTLS port for the mtls_endpoint_aliases")
    p.add_argument("--mtls-port", type=int, default=0,
                   help="port of the mTLS endpoints with TLS (0 = any free port)")
    p.add_argument("--profile", choices=("ciba", "fapi-ciba"), default=None,
                   help="provider mode (overrides [reference_provider] profile)")
    p.add_argument("--list-faults", action="store_true", help="list the fault catalogue and exit")
    p.add_argument("--faults-markdown", action="store_true",
                   help="print the fault table of docs/faults.md and exit")
    p.add_argument("--list-policies", action="store_true",
                   help="list the policies and their combinations and exit")
    p.add_argument("--policies-markdown", action="store_true",
                   help="print the policy table of docs/policies.md and exit")
    return p


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.faults_markdown:
        sys.stdout.write(faults_markdown())
        return 0
    if args.policies_markdown:
        sys.stdout.write(policies_markdown())
        return 0
    if args.list_faults:
        sys.stdout.write(faults_listing())
        sys.stdout.flush()
        return 0
    if args.list_policies:
        sys.stdout.write(policies_listing())
        sys.stdout.flush()
        return 0
    try:
        resolve_policies(args.policy)
    except PolicyError as exc:
        return _fail(str(exc))
    try:
        faults = Faults.of(args.fault)
    except FaultError as exc:
        name = exc.unknown[0]
        return _fail(f"unknown fault {name!r}{did_you_mean(name, FAULTS)} (see --list-faults)")
    for name, port in (("port", args.port), ("mtls-port", args.mtls_port)):
        if not 0 <= port <= 65535:
            return _fail(f"{name} {port} out of range")
    config = args.config or DEFAULT_CONFIG
    try:
        settings = load_profile(config)
    except ProfileError as exc:
        return _fail(f"bad config: {exc}")
    try:
        running = start_provider(
            settings, host=args.host, port=args.port, faults=faults,
            fault_tenants=args.fault_tenants, device_webhook_url=args.webhook_url,
            tls=True if args.tls else None, mtls_port=args.mtls_port, profile=args.profile,
            policies=args.policy, policy_tenants=args.policy_tenants,
        )
    except (ProviderStartError, ProfileError, ValueError) as exc:
        return _fail(str(exc))

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"ciba reference provider listening on {running.issuer}", flush=True)
    active = active_policies(running.provider.policy)
    if active:
        print(f"policies: {', '.join(active)}", flush=True)
    if running.mtls_base:
        print(f"mTLS endpoints (mtls_endpoint_aliases) on {running.mtls_base}; "
              f"profile {running.profile}", flush=True)
    try:
        while not stop.wait(0.5):
            if not running.alive:
                sys.stderr.write(f"{PROG}: error: the server stopped unexpectedly\n")
                return 1
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

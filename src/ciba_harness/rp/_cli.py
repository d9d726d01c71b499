"""`ciba-harness client ...`: the client plan, and the reference client as a service.

  ciba-harness client [--ciba-client-config FILE] [pytest args...]
  ciba-harness client reference --config FILE [--port N] [--fault NAME ...] [--list-faults]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(args: list[str]) -> int:
    if args[:1] == ["reference"]:
        return _reference(args[1:])
    return _plan(args)


def _plan(args: list[str]) -> int:
    import pytest

    from ciba_harness.core._packages import CLIENT_SUITES_PACKAGE, package_folder
    from ciba_harness.rp.pytest_plugin import DEFAULT_REPORT_DIR

    pass_through = list(args)
    if not any(a.startswith("--ciba-client-report") or a == "--ciba-client-no-report"
               for a in pass_through):
        pass_through += ["--ciba-client-report", str(DEFAULT_REPORT_DIR.resolve())]
    if not any(Path(a.split("::")[0]).exists() for a in _positional(pass_through)):
        pass_through.insert(0, str(package_folder(CLIENT_SUITES_PACKAGE)))
    return int(pytest.main(["-p", "no:locust", "-p", "no:cacheprovider", *pass_through]))


#: options whose value is the next argument (so a report folder is not taken for a suite)
_VALUE_OPTIONS = frozenset({
    "-k", "-m", "-p", "-o", "-n", "-c", "--junitxml", "--rootdir", "--ciba-client-config",
    "--ciba-client-report", "--ciba-client-fault", "--maxfail", "--tb",
})


def _positional(args: list[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def _reference(args: list[str]) -> int:
    """Serve the reference client on a fixed port, configured from a client.toml: the
    five-minute example of docs/client-conformance.md (it plays "your client")."""
    from ciba_harness.rp._config import load_client_config
    from ciba_harness.rp.reference_client import CLIENT_FAULTS, ReferenceClient

    parser = argparse.ArgumentParser(prog="ciba-harness client reference")
    parser.add_argument("--config", help="the client.toml the harness is given")
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--fault", action="append", default=[], choices=sorted(CLIENT_FAULTS))
    parser.add_argument("--list-faults", action="store_true")
    options = parser.parse_args(args)
    if options.list_faults:
        for name, fault in CLIENT_FAULTS.items():
            print(f"{name:32s} {fault.requirement}  {fault.description}")
        return 0
    if not options.config:
        parser.error("--config is required")
    config = load_client_config(options.config)
    if config.is_reference or not config.provider_port:
        print("ciba-harness: the config needs [client] driver = \"http\" and [provider] port",
              file=sys.stderr)
        return 2
    client = ReferenceClient(f"http://127.0.0.1:{config.provider_port}", config.registrations,
                             faults=frozenset(options.fault), port=options.port).start()
    print(f"reference client: POST {client.start_url} starts a flow; notification endpoint "
          f"{client.notification_endpoint}. Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        client.stop()

"""`ciba-harness`: thin wrappers over pytest, the reference provider, locust and the reports.

  ciba-harness conformance [--ciba-config FILE] [pytest args...]
  ciba-harness provider [--port N] [--config FILE] [--fault NAME ...] [--tls] [--profile P] [--list-faults]
  ciba-harness load [locust args...]
  ciba-harness report diff|html|load ...
  ciba-harness check-config FILE
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "repo_root"]

USAGE = __doc__ or ""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _conformance(args: list[str]) -> int:
    import pytest

    suite = repo_root() / "conformance"
    if not suite.is_dir():
        print(f"ciba-harness: the conformance suites are not at {suite}; run from a checkout "
              "(pip install -e .)", file=sys.stderr)
        return 2
    pass_through = list(args)
    if not any(a in {"-h", "--help", "--version", "--co", "--collect-only"} for a in args):
        from ._preflight import preflight

        # The user's input first: a wrong config, an unreachable or non-CIBA provider, a port
        # in use end here with one message and exit code 2, before any report is written.
        preflight(_option(args, "--ciba-config"), issuer=_option(args, "--ciba-issuer"))
    if not any(a.startswith("--ciba-report") or a == "--ciba-no-report" for a in pass_through):
        pass_through += ["--ciba-report", str(Path("reports/out").resolve())]
    if not any(not a.startswith("-") and Path(a.split("::")[0]).exists() for a in pass_through):
        pass_through.insert(0, str(suite))
    return int(pytest.main(["-p", "no:locust", "-p", "no:cacheprovider", *pass_through]))


def _option(args: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` (the last one wins, as in argparse)."""
    value = None
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _provider(args: list[str]) -> int:
    from .provider.__main__ import main as provider_main

    return provider_main(args)


def _load(args: list[str]) -> int:
    locustfile = repo_root() / "load" / "locustfile.py"
    defaults = ["-f", str(locustfile)]
    command = [sys.executable, "-m", "ciba_harness.load", *defaults, *args]
    return subprocess.call(command, env=os.environ.copy())


def _report(args: list[str]) -> int:
    from .reports import cli_main

    return cli_main(args)


def _check_config(args: list[str]) -> int:
    from ._preflight import preflight

    if len(args) != 1:
        print("usage: ciba-harness check-config FILE", file=sys.stderr)
        return 2
    config = preflight(args[0])
    reached = "" if config.embedded else " (discovery answered with CIBA metadata)"
    print(f"{args[0]}: ok — issuer {config.issuer}{reached}, {len(config.clients)} clients, "
          f"device driver {config.device.driver}")
    return 0


COMMANDS = {
    "conformance": _conformance,
    "provider": _provider,
    "load": _load,
    "report": _report,
    "check-config": _check_config,
}


def main(argv: list[str] | None = None) -> int:
    from ._errors import CibaHarnessError, ConfigError
    from ._preflight import describe_config_error

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE.strip())
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"ciba-harness: unknown command {args[0]!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 2
    try:
        return command(args[1:])
    except ConfigError as exc:
        print(f"ciba-harness: {describe_config_error(exc)}", file=sys.stderr)
        return 2
    except CibaHarnessError as exc:
        print(f"ciba-harness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

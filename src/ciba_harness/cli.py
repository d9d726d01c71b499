"""usage: ciba-harness COMMAND [options]   (ciba-harness --version; COMMAND --help)

`ciba-harness`: thin wrappers over pytest, the reference provider, locust and the reports.

  ciba-harness conformance [--ciba-config FILE] [pytest args...]
  ciba-harness provider [--port N] [--config FILE] [--fault NAME ...] [--policy NAME ...] [--tls] [--profile P] [--list-faults] [--list-policies]
  ciba-harness load [locust args...]
  ciba-harness report diff|html|load ...
  ciba-harness check-config FILE
  ciba-harness client [--ciba-client-config FILE] [pytest args...] | client reference --config FILE
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["main"]

USAGE = __doc__ or ""
CONFORMANCE_PROG = "ciba-harness conformance"
HARNESS_GROUP = "CIBA conformance (ciba-harness):"  # the plugin's option group in pytest's help


def _conformance_parser() -> argparse.ArgumentParser:
    """The options of `conformance` the wrapper reads itself (for its preflight and default
    report folder); pytest parses them again with all the others."""
    parser = argparse.ArgumentParser(
        prog=CONFORMANCE_PROG,
        usage=f"{CONFORMANCE_PROG} [--ciba-config FILE] [--ciba-report DIR] [pytest options]",
        description="Run the CIBA conformance suites (installed package "
        "ciba_harness_conformance) with pytest. Without --ciba-config the embedded reference "
        "provider is started. Select with -m poll|ping|push, -k CIBA-TOKEN-16, or name suite "
        "files; reports go to reports/out/ unless --ciba-report says otherwise.",
        add_help=False,
        allow_abbrev=False,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help and pytest's")
    parser.add_argument("--ciba-config", metavar="FILE", help="provider description (TOML)")
    parser.add_argument("--ciba-issuer", metavar="URL", help="override the config's issuer")
    parser.add_argument("--ciba-report", metavar="DIR",
                        help="write results.json, junit.xml, report.html here (reports/out)")
    parser.add_argument("--ciba-no-report", action="store_true", help="write no report files")
    return parser


class SuiteSelection:
    """pytest plugin of the wrapper: once pytest has parsed the command line, run the suites
    unless the user named test paths (then only those). pytest decides what is a path."""

    def __init__(self, suites: Path, *, checked: bool) -> None:
        self.suites = str(suites)
        self.checked = checked

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        from ciba_harness.pytest_plugin import PREFLIGHT_DONE

        config.stash[PREFLIGHT_DONE] = self.checked  # the plugin need not check again
        named = [arg for arg in config.args if arg != self.suites]
        if config.args_source is pytest.Config.ArgsSource.ARGS and named:
            config.args[:] = named
        else:
            config.args[:] = [self.suites]


def _conformance(args: list[str]) -> int:
    from ciba_harness.core._packages import suites_folder

    suites = suites_folder()
    own, _ = _conformance_parser().parse_known_args(args)
    if own.help:
        return _conformance_help(suites)
    pass_through = list(args)
    checked = "--co" not in args and "--collect-only" not in args
    if checked:
        from ciba_harness.pytest_plugin._preflight import preflight, receiver_warnings

        # The user's input first: a wrong config, an unreachable or non-CIBA provider, a port
        # in use end here with one message and exit code 2, before any report is written.
        checked_config = preflight(own.ciba_config, issuer=own.ciba_issuer)
        for warning in receiver_warnings(checked_config):
            print(f"ciba-harness: warning: {warning}", file=sys.stderr)
    if own.ciba_report is None and not own.ciba_no_report:
        pass_through += ["--ciba-report", str(Path("reports/out").resolve())]
    if not any(a == "--rootdir" or a.startswith("--rootdir=") for a in args):
        # Node IDs relative to the suites' parent: conformance/test_x.py in a checkout,
        # ciba_harness_conformance/test_x.py when installed.
        pass_through.insert(0, f"--rootdir={suites.parent}")
    command = [
        str(suites), "-p", "no:locust", "-p", "no:cacheprovider",
        # This process imported the harness (and httpx's anyio) before pytest could mark them
        # for assertion rewriting: they hold no test asserts, so pytest's warning is noise.
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        # Outside a checkout no ini file sets it, and pytest-asyncio warns on every run.
        "-o", "asyncio_default_fixture_loop_scope=function",
        *pass_through,
    ]
    return int(pytest.main(command, plugins=[SuiteSelection(suites, checked=checked)]))


def _conformance_help(suites: Path) -> int:
    """Usage, then the harness's own options (the plugin's option group, as pytest lists
    it: always complete), then the rest of pytest's help (all accepted)."""
    import contextlib
    import io
    import textwrap

    parser = _conformance_parser()
    print(parser.format_usage().rstrip())
    print("\n" + textwrap.fill(parser.description or "", width=88) + "\n")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = pytest.main([str(suites), "-p", "no:locust", "--help"])
    lines = captured.getvalue().splitlines()
    if lines and lines[0].startswith("usage: "):
        lines = lines[1:]  # pytest.main()'s usage line
    start = next((i for i, line in enumerate(lines) if line.startswith(HARNESS_GROUP)), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i] and not lines[i].startswith(" ")), len(lines))
        print("\n".join(lines[start:end]).rstrip())
        lines = lines[:start] + lines[end:]
    print(f"\npytest options (all accepted by {CONFORMANCE_PROG}):")
    print("\n".join(lines))
    return int(code)


def _provider(args: list[str]) -> int:
    from ciba_harness.provider.__main__ import main as provider_main

    return provider_main(args)


def _load(args: list[str]) -> int:
    # ciba_harness.load adds the installed locustfile unless -f is given.
    command = [sys.executable, "-m", "ciba_harness.load", *args]
    return subprocess.call(command, env=os.environ.copy())


def _report(args: list[str]) -> int:
    from ciba_harness.reports import cli_main

    return cli_main(args)


def _check_config(args: list[str]) -> int:
    from ciba_harness.core._errors import ConfigError
    from ciba_harness.pytest_plugin._preflight import (
        describe_each_config_error,
        preflight,
        receiver_warnings,
    )

    if len(args) != 1:
        print("usage: ciba-harness check-config FILE", file=sys.stderr)
        return 2
    try:
        config = preflight(args[0])
    except ConfigError as exc:  # every mistake of the file, one line each
        for line in describe_each_config_error(exc):
            print(f"ciba-harness: {line}", file=sys.stderr)
        return 2
    for warning in receiver_warnings(config):
        print(f"ciba-harness: warning: {warning}", file=sys.stderr)
    reached = "" if config.embedded else " (discovery answered with CIBA metadata)"
    print(f"{args[0]}: ok — issuer {config.issuer}{reached}, {len(config.clients)} clients, "
          f"device driver {config.device.driver}")
    return 0


def _client(args: list[str]) -> int:
    from ciba_harness.rp._cli import main as client_main

    return client_main(args)


COMMANDS = {
    "client": _client,
    "conformance": _conformance,
    "provider": _provider,
    "load": _load,
    "report": _report,
    "check-config": _check_config,
}


def main(argv: list[str] | None = None) -> int:
    from ciba_harness.core._errors import CibaHarnessError, ConfigError
    from ciba_harness.pytest_plugin._preflight import describe_config_error

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE.strip(), file=sys.stderr)
        return 2
    if args[0] in {"-h", "--help"}:
        print(USAGE.strip())
        return 0
    if args[0] == "--version":
        from ciba_harness import __version__

        print(f"ciba-harness {__version__}")
        return 0
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

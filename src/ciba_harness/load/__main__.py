"""`ciba-harness load` / `python -m ciba_harness.load`: a thin wrapper around Locust.

    python -m ciba_harness.load [--ui] [--provider-fault NAME ...] [locust options...]

* starts the reference provider in its own process (loopback) when the profile's issuer is
  "embedded" and no --ciba-issuer was given, and stops it afterwards;
* adds short headless defaults unless given: -f load/locustfile.py --headless -u 20 -r 10
  -t 20s --csv reports/out/load/locust --html reports/out/load/locust.html (with
  --ciba-find-capacity, -t covers every step of the search, within the run budget);
* runs `python -m locust` as a child process (this process never imports Locust) and exits
  with its exit code (3 when an SLO threshold was broken, or no capacity step passed);
* stops Locust at the run budget (--ciba-run-timeout, else [budgets] run_timeout);
* writes the CIBA load report beside the CSV files, unless the setup failed (exit 2): a
  failed run never replaces the last report.

`--ui` keeps Locust's web UI instead of --headless; `--provider-fault` (repeatable) injects
a fault into the embedded provider, to see what the load scenarios report.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ciba_harness.core._config import default_profile_path, load_config
from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.core._packages import locustfile_path
from ciba_harness.load._embedded import EmbeddedProvider

__all__ = ["main", "build_command", "run_time_seconds"]

DEFAULTS = {
    "users": ("-u", "--users", "20"),
    "spawn_rate": ("-r", "--spawn-rate", "10"),
    "run_time": ("-t", "--run-time", "20s"),
}
REPORTS = Path("reports/out/load")


def _has(args: Sequence[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def _value(args: Sequence[str], *flags: str) -> str | None:
    for index, arg in enumerate(args):
        for flag in flags:
            if arg == flag and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def run_time_seconds(text: str) -> float:
    """Locust's -t syntax (20, 20s, 1m30s, 1h) in seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CibaHarnessError(f"cannot read run time {text!r} (e.g. 20s, 1m30s, 1h)")
    scale = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * scale[u] for n, u in parts)


def capacity_run_time(args: Sequence[str]) -> str:
    """-t for a capacity search: every step (--ciba-capacity-max-steps x step time), the
    pauses after failed steps (at most a step each, about half the steps), and start-up."""
    steps = float(_value(args, "--ciba-capacity-max-steps") or 10)
    step = float(_value(args, "--ciba-capacity-step-time") or 30)
    return f"{int(steps * step * 1.5 + 15)}s"


def build_command(args: Sequence[str], *, issuer: str | None, ui: bool) -> list[str]:
    """The locust command line: the user's arguments plus whatever default they left out."""
    command = [sys.executable, "-m", "locust"]
    extra: list[str] = []
    if _has(args, "--ciba-find-capacity") and not _has(args, "-t", "--run-time"):
        extra += ["-t", capacity_run_time(args)]
    if not _has(args, "-f", "--locustfile"):
        extra += ["-f", str(locustfile_path())]
    if not ui and not _has(args, "--headless", "--headful", "--autostart", "--worker"):
        extra.append("--headless")
    if not ui and not _has(args, "--worker"):
        for short, long, default in DEFAULTS.values():
            if not _has([*args, *extra], short, long):
                extra += [short, default]
        if not _has(args, "--csv"):
            # Full history: the load report's charts over time need per-request rows.
            extra += ["--csv", str(REPORTS / "locust"), "--csv-full-history"]
        if not _has(args, "--html"):
            extra += ["--html", str(REPORTS / "locust.html")]
    if issuer is not None:
        extra += ["--ciba-issuer", issuer]
    return [*command, *extra, *args]


def _split_wrapper_options(argv: Sequence[str]) -> tuple[list[str], list[str], bool]:
    rest: list[str] = []
    faults: list[str] = []
    ui = False
    items = iter(argv)
    for arg in items:
        if arg == "--ui":
            ui = True
        elif arg == "--provider-fault":
            faults.append(next(items, ""))
        elif arg.startswith("--provider-fault="):
            faults.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return rest, [f for f in faults if f], ui


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_child(child: subprocess.Popen[bytes], signum: int) -> None:
    """Let Locust shut down (it writes its reports on SIGINT / SIGTERM), then insist; a
    second signal meanwhile kills it at once."""

    def kill_now(received: int, frame: object) -> None:
        child.kill()

    signal.signal(signal.SIGTERM, kill_now)
    signal.signal(signal.SIGINT, kill_now)
    child.send_signal(signum)
    try:
        child.wait(20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def _write_load_report(csv_prefix: str | None, code: int) -> None:
    """The CIBA load report (charts) beside Locust's CSV, when the run wrote one. Not after a
    failed setup (exit 2): Locust has emptied the CSV files by then, and the report of the
    last real run must stay."""
    if code == 2 or not csv_prefix or not Path(f"{csv_prefix}_stats.csv").exists():
        return
    from ciba_harness.reports import write_load_report

    out = write_load_report(csv_prefix, Path(csv_prefix).parent / "ciba-load-report.html")
    print(f"ciba-harness load: report {out}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args, faults, ui = _split_wrapper_options(list(sys.argv[1:] if argv is None else argv))
    if _has(args, "-h", "--help"):
        import argparse

        from ciba_harness.load._settings import add_arguments

        options = argparse.ArgumentParser(
            usage=argparse.SUPPRESS, add_help=False, description="CIBA options (docs/load.md):"
        )
        add_arguments(options)
        print(__doc__)
        print(options.format_help())
        sys.stdout.flush()
        return subprocess.call([*build_command(args, issuer=None, ui=True)])
    config_text = _value(args, "--ciba-config")
    config_path = Path(config_text) if config_text else default_profile_path()
    provider: EmbeddedProvider | None = None
    issuer = None
    try:
        from ciba_harness.provider.pki import resolve_pki_path

        config = load_config(config_path, test_pki=resolve_pki_path)
        if config.embedded and not _has(args, "--ciba-issuer") and not _has(args, "--worker"):
            provider = EmbeddedProvider(config_path, faults=faults)
            issuer = provider.issuer
            print(f"ciba-harness load: reference provider at {issuer}", file=sys.stderr, flush=True)
        elif faults:
            raise CibaHarnessError("--provider-fault needs the embedded provider")
        command = build_command(args, issuer=issuer, ui=ui)
        for flag in ("--csv", "--html", "--json-file", "--ciba-slo-file"):
            target = _value(command, flag)
            if target:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
        limit = None
        run_time = _value(command, "-t", "--run-time")
        if not ui and run_time and not _has(args, "--worker", "--master"):
            limit = run_time_seconds(run_time) + 120.0  # start-up, stop timeout, reports
        budget = _value(args, "--ciba-run-timeout")
        budget_seconds = float(budget) if budget else getattr(config.budgets, "run_timeout", None)
        if not ui and budget_seconds and not _has(args, "--worker"):
            # the run budget bounds the whole child (Locust caps -t at it; this is the backstop)
            limit = min(limit or math.inf, float(budget_seconds) + 60.0)
        child = subprocess.Popen(command, env=os.environ.copy())

        def forward(signum: int, frame: object) -> None:
            raise _Stop(signum)

        signal.signal(signal.SIGTERM, forward)
        try:
            code = child.wait(timeout=limit)
            _write_load_report(_value(command, "--csv"), code)
            return code
        except subprocess.TimeoutExpired:
            print("ciba-harness load: locust did not stop in time; stopping it", file=sys.stderr)
            _stop_child(child, signal.SIGTERM)
            _write_load_report(_value(command, "--csv"), 1)
            return 1
        except KeyboardInterrupt:
            _stop_child(child, signal.SIGINT)
            return 130
        except _Stop as stop:
            _stop_child(child, stop.signum)
            return 128 + stop.signum
    except CibaHarnessError as exc:
        print(f"ciba-harness load: {exc}", file=sys.stderr)
        return 2
    finally:
        if provider is not None:
            provider.stop()


if __name__ == "__main__":
    raise SystemExit(main())

"""`ciba-harness report ...`: diff two runs, (re)render an HTML report, draw a load report.

Exit codes: 0 done (diff: no regression), 1 diff found a regression, 2 bad usage or input
(one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["cli_main"]

PROG = "ciba-harness report"


class _InputError(Exception):
    """A file the user named cannot be used; the message says which and why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Reports of ciba-harness runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{diff,html,load}")
    diff = sub.add_parser(
        "diff",
        help="compare two results.json (or load-summary.json) files; exit 1 on regression",
        description="Requirements that regressed, improved or changed status, and load "
        "percentiles that moved beyond the threshold. Exit 1 on regression, 0 otherwise.",
    )
    diff.add_argument("old", type=Path, metavar="OLD.json")
    diff.add_argument("new", type=Path, metavar="NEW.json")
    diff.add_argument(
        "--threshold",
        type=_fraction,
        default=0.2,
        help="relative move of a load percentile that counts (default 0.2 = 20%%)",
    )
    html = sub.add_parser("html", help="render the HTML conformance report of a results.json")
    html.add_argument("results", type=Path, metavar="RESULTS.json")
    html.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="OUT.html",
        help="default: report.html beside RESULTS.json",
    )
    load = sub.add_parser("load", help="render the CIBA load report of Locust --csv output")
    load.add_argument("prefix", metavar="CSV_PREFIX", help="the prefix given to locust --csv")
    load.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="OUT.html",
        help="default: ciba-load-report.html beside the CSV files",
    )
    load.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="EVENTS.json",
        help="CIBA flow events of the load users (a JSON list or JSON lines)",
    )
    return parser


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError("expected a fraction such as 0.2")
    return value


def cli_main(argv: list[str]) -> int:
    """Run `report diff|html|load ...` (a leading "report" is optional); returns the exit code."""
    args_list = list(argv)
    if args_list[:1] == ["report"]:
        args_list = args_list[1:]
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "diff":
            return _diff(args)
        if args.command == "html":
            return _html(args)
        return _load(args)
    except _InputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _InputError(f"{path} is not a UTF-8 text file") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _InputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _InputError(f"{path} is not a JSON object (a results.json or load-summary.json)")
    return value


def _diff(args: argparse.Namespace) -> int:
    from ciba_harness.reports._diff import NothingToCompare, diff_results

    old, new = _read_json(args.old), _read_json(args.new)
    try:
        result = diff_results(old, new, threshold=args.threshold)
    except NothingToCompare as exc:
        raise _InputError(f"{args.old} and {args.new}: {exc}") from None
    print(f"{args.old} → {args.new}")
    print(result.render())
    return result.exit_code


def _html(args: argparse.Namespace) -> int:
    from ciba_harness.reports._conformance import write_html_report

    results = _read_json(args.results)
    if not isinstance(results.get("requirements"), list) and not isinstance(
        results.get("tests"), list
    ):
        raise _InputError(f"{args.results} is not a ciba-harness results.json")
    out = args.output or args.results.with_name("report.html")
    try:
        write_html_report(results, out)
    except OSError as exc:
        raise _InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(out)
    return 0


def _load(args: argparse.Namespace) -> int:
    from ciba_harness.reports._load import write_load_report

    prefix = Path(args.prefix)
    events = _read_events(args.events) if args.events else None
    out = args.output or prefix.parent / "ciba-load-report.html"
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        raise _InputError(f"no Locust statistics at {stats} (run locust with --csv {prefix})")
    try:
        write_load_report(prefix, out, ciba_events=events)
    except OSError as exc:
        raise _InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    except (ValueError, KeyError) as exc:
        raise _InputError(f"cannot read the Locust CSV files at {prefix}: {exc}") from None
    print(out)
    return 0


def _read_events(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _InputError(f"cannot read {path}: {exc}") from None
    try:
        value = json.loads(text)
        items = value if isinstance(value, list) else [value]
    except ValueError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise _InputError(f"{path} is neither a JSON list nor JSON lines ({exc})") from None
    return [e for e in items if isinstance(e, dict)]

"""`python -m ciba_harness.hostile [--behaviour ENDPOINT=B1[,B2...]]... [--config FILE]
[--port N] [--list] [--catalogue-markdown]`: serve a hostile provider until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from ciba_harness.hostile._catalogue import (
    BEHAVIOURS,
    ENDPOINTS,
    HostileSelectionError,
    catalogue_markdown,
)
from ciba_harness.hostile._server import HostileStartError, start_hostile


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ciba_harness.hostile",
        description="A CIBA provider on loopback that misbehaves on purpose, per endpoint "
        "and per request (request n of an endpoint gets behaviour n; the last repeats).",
    )
    parser.add_argument("--behaviour", "-b", action="append", default=[],
                        metavar="ENDPOINT=B1[,B2...]",
                        help=f"endpoints: {', '.join(ENDPOINTS)}; see --list")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="profile of the embedded reference provider (default reference.toml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--list", action="store_true", help="list the behaviours and exit")
    parser.add_argument("--catalogue-markdown", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.catalogue_markdown:
        print(catalogue_markdown())
        return 0
    if args.list:
        for behaviour in BEHAVIOURS.values():
            endpoints = ",".join(e for e in ENDPOINTS if e in behaviour.endpoints)
            print(f"{behaviour.name:24} {endpoints:50} {behaviour.description}")
        return 0
    try:
        hostile = start_hostile(args.behaviour, config=args.config, host=args.host, port=args.port)
    except (HostileSelectionError, HostileStartError) as exc:
        print(f"ciba-harness hostile: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the reference provider's profile errors name file and key
        print(f"ciba-harness hostile: cannot start: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"hostile provider at {hostile.issuer}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hostile.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

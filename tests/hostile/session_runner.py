"""`python session_runner.py CASES.json RECORDS.jsonl`: several conformance sessions, one after
the other, in this one process (imports and collection are paid once, not per session).

Each case is {"id", "issuer", "report_dir", "output", "args"}: `pytest conformance --ciba-issuer
ISSUER --ciba-report REPORT_DIR ARGS...`, with everything the session writes to file
descriptors 1 and 2 (threads included) sent to OUTPUT. One JSON line per finished case is
appended to RECORDS: {"id", "returncode", "wall"}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"


def run_case(case: dict[str, object]) -> dict[str, object]:
    args = [str(a) for a in case["args"]]  # type: ignore[attr-defined]
    # Files of the suite named in the arguments narrow the collection; else the whole suite.
    suite = [] if any(a.startswith(str(CONFORMANCE)) for a in args) else [str(CONFORMANCE)]
    command = [
        *suite, "-p", "no:locust", "-p", "no:cacheprovider", "-q",
        "--ciba-issuer", str(case["issuer"]), "--ciba-report", str(case["report_dir"]), *args,
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    started = time.monotonic()
    with open(str(case["output"]), "wb") as output:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        try:
            code = int(pytest.main(command))
        except BaseException as exc:  # recorded: the case is then judged as broken
            print(f"session_runner: pytest.main raised {exc!r}", flush=True)
            code = -1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    return {"id": case["id"], "returncode": code, "wall": time.monotonic() - started}


def main() -> int:
    cases = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    with open(sys.argv[2], "a", encoding="utf-8") as records:
        for case in cases:
            records.write(json.dumps(run_case(case)) + "\n")
            records.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

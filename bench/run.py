"""Run the benchmarks and print one table.

Each benchmark module exposes `main() -> list[dict]` with rows {name, value, unit, note}.
Figures are ratios measured side by side in the same run where possible: the machine is
small (2 cores) and shared, so absolute numbers move between runs; ratios move less.

  python bench/run.py              # all
  python bench/run.py provider     # the modules whose name contains 'provider'
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ["bench_provider", "bench_client", "bench_suite", "bench_hostile", "bench_fuzz", "bench_load"]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    selected = [m for m in MODULES if not argv[1:] or any(a in m for a in argv[1:])]
    rows: list[dict[str, object]] = []
    for name in selected:
        if not (HERE / f"{name}.py").exists():
            rows.append({"bench": name, "name": "(missing)", "value": "", "unit": "", "note": ""})
            continue
        started = time.perf_counter()
        module = importlib.import_module(name)
        for row in module.main():
            rows.append({"bench": name, **row})
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    width = max((len(str(r["name"])) for r in rows), default=10)
    print(f"{'benchmark':16} {'measure':{width}} {'value':>12} unit  note")
    for row in rows:
        value = row["value"]
        shown = f"{value:12.3f}" if isinstance(value, float) else f"{value!s:>12}"
        print(f"{row['bench']:16} {row['name']!s:{width}} {shown} {row['unit']!s:5} {row.get('note', '')}")
    out = HERE.parent / "reports" / "out" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

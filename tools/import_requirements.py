"""Turn ../shared/spec/ciba-requirements.md into src/ciba_harness/requirements.json.

The catalogue's tables are the source of truth; the JSON is what reports and the pytest
plugin read at run time (the harness must work without the shared folder).
Run: python tools/import_requirements.py [CATALOGUE.md]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "spec" / "ciba-requirements.md"
TARGET = ROOT / "src" / "ciba_harness" / "requirements.json"
ROW = re.compile(r"^\|\s*((?:CIBA|FAPI-CIBA)-[A-Z]*-?\d+)\s*\|")


def parse(text: str) -> list[dict[str, str]]:
    rows = []
    group = ""
    for line in text.splitlines():
        if line.startswith(("## ", "### ")):
            group = line.lstrip("#").strip()
        match = ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        fapi = cells[0].startswith("FAPI-CIBA")
        # FAPI rows carry an extra "Profile" column after Level.
        section, level = cells[1], cells[2]
        who = cells[4] if fapi else cells[3]
        assertion = cells[5] if fapi else cells[4]
        note = cells[6] if fapi else cells[5]
        rows.append({
            "id": cells[0], "section": section, "level": level, "who": who,
            "assertion": assertion, "note": note, "group": group,
            "profile": cells[3] if fapi else "ciba",
        })
    return rows


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    rows = parse(source.read_text(encoding="utf-8"))
    TARGET.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} requirements written to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

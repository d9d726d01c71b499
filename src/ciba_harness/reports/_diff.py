"""Run-to-run comparison of results.json files and load summaries.

Requirement verdicts are ranked pass < warning < fail/error; the other verdicts (skipped,
inconclusive, not_tested) are "no verdict": a requirement whose tests stopped on another
requirement's failure is collateral, never a regression of its own:

* regression: pass → fail or error, warning → fail or error;
* improvement: fail/error → pass or warning, warning → pass;
* change: any other difference (pass → warning, fail ↔ error, a verdict appearing or
  disappearing: skipped, not_tested, a requirement new in or gone from the catalogue).

Load summaries (`load-summary.json`, or a results dict carrying one under "load") are
compared per request name: p95 up by more than `threshold` (relative) is a regression, down
by more than that an improvement; p50 or p99 moving by more than that is a change. A failure
ratio up by more than one percentage point and by more than `threshold` (relative) is a
regression too: an OP failing fast must not pass the gate on a better p95. Moves under 1 ms
are ignored, and so are requests present in only one run (listed as changes). A latency or
failure-ratio move counts only when both runs have at least `MIN_SAMPLES` requests of that
name, and never for the harness's own traffic (the device driver's approve/deny calls, admin
calls to the reference provider): those moves are listed as changes with the reason.

Two runs are comparable when they tested the same provider with the same faults, profile and
selection of tests; otherwise the comparison starts with a WARNING line per difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ciba_harness.reports._load_data import LOAD_SUMMARY_FORMAT

__all__ = ["DiffEntry", "DiffResult", "NothingToCompare", "diff_results"]

_RANK = {"pass": 0, "warning": 1, "fail": 2, "error": 2}
# Response times under this many ms are noise for a CIBA flow; below it nothing "moved".
_MIN_DELTA_MS = 1.0
# Fewer requests than this in either run: percentiles and ratios are anecdotes, not trends.
MIN_SAMPLES = 20
# Requests the harness makes for itself (device driver, reference provider's admin API).
_HARNESS_TRAFFIC = re.compile(r"(^|\s)(device (approve|deny)|admin\b)")


class NothingToCompare(ValueError):
    """The two documents hold neither requirement verdicts nor load summaries in common."""


@dataclass(frozen=True)
class DiffEntry:
    kind: str  # "requirement", "load" (a percentile, ms), "load_failures", "load_request"
    key: str  # requirement ID, "<request> <percentile>", or a request name
    old: Any
    new: Any
    note: str = ""

    def render(self) -> str:
        if self.kind == "load":
            return f"{self.key}: {_fmt(self.old)} → {_fmt(self.new)} ms{self.note}"
        return f"{self.key}: {self.old} → {self.new}{self.note}"


@dataclass
class DiffResult:
    regressions: list[DiffEntry] = field(default_factory=list)
    improvements: list[DiffEntry] = field(default_factory=list)
    changes: list[DiffEntry] = field(default_factory=list)
    threshold: float = 0.2
    compared: list[str] = field(default_factory=list)  # "requirements", "load"
    warnings: list[str] = field(default_factory=list)  # why the two runs may not compare

    @property
    def exit_code(self) -> int:
        """1 when anything regressed (so CI can gate a release), else 0."""
        return 1 if self.regressions else 0

    def render(self) -> str:
        lines = [f"WARNING: {warning}" for warning in self.warnings]
        for title, entries in (
            ("Regressions", self.regressions),
            ("Improvements", self.improvements),
            ("Other changes", self.changes),
        ):
            lines.append(f"{title} ({len(entries)}):")
            lines += [f"  {e.render()}" for e in entries] or ["  none"]
        what = " and ".join(self.compared) or "nothing"
        verdict = "REGRESSED" if self.regressions else "no regression"
        lines.append(
            f"Compared {what} (load threshold {self.threshold:.0%}): {verdict}, "
            f"{len(self.improvements)} improvement(s), {len(self.changes)} other change(s)."
        )
        return "\n".join(lines)


def diff_results(old: dict[str, Any], new: dict[str, Any], *, threshold: float = 0.2) -> DiffResult:
    """Compare two results.json dicts (or load summaries); raises NothingToCompare."""
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    result = DiffResult(threshold=threshold)
    result.warnings = _incomparable(old, new)
    old_reqs, new_reqs = _requirements(old), _requirements(new)
    if old_reqs is not None and new_reqs is not None:
        result.compared.append("requirements")
        _diff_requirements(old_reqs, new_reqs, result)
    old_load, new_load = _load(old), _load(new)
    if old_load is not None and new_load is not None:
        result.compared.append("load")
        _diff_load(old_load, new_load, threshold, result)
    if not result.compared:
        raise NothingToCompare(
            "the two files have nothing in common to compare: expected two results.json files "
            "or two load-summary.json files"
        )
    return result


def _incomparable(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the two runs besides the provider's behaviour."""
    before, after = _session(old), _session(new)
    warnings = []
    for key, what in (("issuer", "provider"), ("faults", "faults"), ("profile", "profile")):
        if key in before and key in after and before[key] != after[key]:
            warnings.append(f"the runs differ in {what}: {_show(before[key])} → "
                            f"{_show(after[key])}; differences may not be regressions")
    old_tests, new_tests = _nodeids(old), _nodeids(new)
    if old_tests is not None and new_tests is not None and old_tests != new_tests:
        warnings.append(
            f"the runs differ in selection: {len(old_tests - new_tests)} test(s) only in the old "
            f"run, {len(new_tests - old_tests)} only in the new one (-k, -m, files, profile)"
        )
    return warnings


def _session(doc: dict[str, Any]) -> dict[str, Any]:
    session = doc.get("session") if isinstance(doc, dict) else None
    return session if isinstance(session, dict) else {}


def _nodeids(doc: dict[str, Any]) -> set[str] | None:
    tests = doc.get("tests") if isinstance(doc, dict) else None
    if not isinstance(tests, list):
        return None
    return {str(t["nodeid"]) for t in tests if isinstance(t, dict) and "nodeid" in t}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]" if value else "none"
    return str(value)


def _requirements(doc: dict[str, Any]) -> dict[str, str] | None:
    reqs = doc.get("requirements") if isinstance(doc, dict) else None
    if not isinstance(reqs, list):
        return None
    return {
        str(r["id"]): str(r.get("verdict", "not_tested"))
        for r in reqs
        if isinstance(r, dict) and "id" in r
    }


def _diff_requirements(old: dict[str, str], new: dict[str, str], result: DiffResult) -> None:
    for rid in sorted(old.keys() | new.keys()):
        before, after = old.get(rid, "absent"), new.get(rid, "absent")
        if before == after:
            continue
        entry = DiffEntry("requirement", rid, before, after)
        rank_before, rank_after = _RANK.get(before), _RANK.get(after)
        if rank_before is not None and rank_after is not None:
            if rank_before < 2 <= rank_after:
                result.regressions.append(entry)
            elif rank_after < rank_before:
                result.improvements.append(entry)
            else:
                result.changes.append(entry)  # pass → warning, fail ↔ error
        else:
            result.changes.append(entry)


def _load(doc: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == LOAD_SUMMARY_FORMAT:
        return doc
    load = doc.get("load")
    if isinstance(load, dict) and load.get("format") == LOAD_SUMMARY_FORMAT:
        return load
    return None


def _diff_load(
    old: dict[str, Any], new: dict[str, Any], threshold: float, result: DiffResult
) -> None:
    old_requests = old.get("requests") if isinstance(old.get("requests"), dict) else {}
    new_requests = new.get("requests") if isinstance(new.get("requests"), dict) else {}
    assert isinstance(old_requests, dict) and isinstance(new_requests, dict)
    for name in sorted(old_requests.keys() & new_requests.keys()):
        before, after = old_requests[name], new_requests[name]
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        if not before.get("count") or not after.get("count"):
            continue
        # Why a move of this request cannot gate (then it is listed as a change).
        samples = min(_num(before.get("count")) or 0, _num(after.get("count")) or 0)
        if _HARNESS_TRAFFIC.search(name):
            ungated = " — the harness's own request, never a regression"
        elif samples < MIN_SAMPLES:
            ungated = f" — too few samples ({samples:.0f} < {MIN_SAMPLES}) to count"
        else:
            ungated = ""
        for pct in ("p50", "p95", "p99"):
            a, b = _num(before.get(pct)), _num(after.get(pct))
            if a is None or b is None or abs(b - a) < _MIN_DELTA_MS:
                continue
            move = (b - a) / max(a, _MIN_DELTA_MS)
            if abs(move) <= threshold:
                continue
            entry = DiffEntry("load", f"{name} {pct}", a, b, f" ({move:+.0%}){ungated}")
            if pct == "p95" and not ungated:
                (result.regressions if move > 0 else result.improvements).append(entry)
            else:
                result.changes.append(entry)
        fa, fb = _num(before.get("failure_ratio")), _num(after.get("failure_ratio"))
        if fa is not None and fb is not None and abs(fb - fa) > 0.01:
            entry = DiffEntry("load_failures", f"{name} failure ratio", f"{fa:.2%}", f"{fb:.2%}",
                              ungated)
            if ungated:
                result.changes.append(entry)
            elif fb > fa * (1 + threshold):
                result.regressions.append(entry)
            elif fb < fa * (1 - threshold):
                result.improvements.append(entry)
    for name in sorted(old_requests.keys() ^ new_requests.keys()):
        result.changes.append(
            DiffEntry(
                "load_request",
                f"load request {name}",
                "present" if name in old_requests else "absent",
                "present" if name in new_requests else "absent",
            )
        )


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fmt(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)

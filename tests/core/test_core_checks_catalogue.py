"""The checks against the catalogue: every check names the spec sentence it enforces, cites a
catalogue row that exists, requirements.json is in step with the catalogue, and the provider
choices the suites record are known latitudes that reach results.json and the HTML report."""

from __future__ import annotations

import importlib
import json
import re
import sys
import warnings
from pathlib import Path

import pytest

from ciba_harness.checks._choices import (
    LATITUDES,
    collect_provider_choices,
    record_choice,
    recorded_choices,
    reset_choices,
)
from ciba_harness.checks._registry import CHECKS
from ciba_harness.core._requirements import catalogue
from ciba_harness.reports import render_html_report
from ciba_harness.reports._results import build_results

REPO = Path(__file__).resolve().parents[2]
SHARED_CATALOGUE = REPO.parent / "shared" / "spec" / "ciba-requirements.md"
CHECK_MODULES = (
    "ciba_harness.checks._responses",
    "ciba_harness.checks._backchannel",
    "ciba_harness.checks._delivery",
    "ciba_harness.checks._fapi",
    "ciba_harness.checks._idtoken",
    "ciba_harness.strategies._judging",
)


def _all_checks() -> dict[str, object]:
    for name in CHECK_MODULES:
        importlib.import_module(name)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        for suite in ("conformance.test_fuzz", "conformance.test_auth_request"):
            importlib.import_module(suite)
    return dict(CHECKS)


def test_every_check_names_the_spec_sentence_it_enforces() -> None:
    checks = _all_checks()
    assert len(checks) > 60
    uncited = [
        name for name, info in checks.items()
        if not re.search(r"§|RFC \d+|FAPI", info.function.__doc__ or "")  # type: ignore[attr-defined]
    ]
    assert not uncited, f"checks without a spec citation in their docstring: {uncited}"


def test_every_check_row_is_in_the_catalogue() -> None:
    known = set(catalogue())
    try:  # the client plan's checks (CIBA-RP-nn) share the registry
        from ciba_harness.rp import client_catalogue
    except ImportError:
        pass
    else:
        known |= set(client_catalogue())
    unknown = {
        name: info.requirement  # type: ignore[attr-defined]
        for name, info in _all_checks().items()
        if info.requirement and info.requirement not in known  # type: ignore[attr-defined]
    }
    assert not unknown


@pytest.mark.skipif(not SHARED_CATALOGUE.exists(), reason="the shared catalogue is not here")
def test_requirements_json_is_in_step_with_the_catalogue() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        importer = importlib.import_module("import_requirements")
    finally:
        sys.path.remove(str(REPO / "tools"))
    rows = importer.parse(SHARED_CATALOGUE.read_text(encoding="utf-8"))
    shipped = json.loads((REPO / "src" / "ciba_harness" / "requirements.json").read_text())
    assert len(rows) == 211
    assert rows == shipped, "run tools/import_requirements.py"
    by_id = {r["id"]: r for r in shipped}
    # the rows issue 12 corrected
    assert "OP choice" in by_id["CIBA-AUTH-05"]["level"]
    assert "warning" in by_id["CIBA-AUTH-21"]["level"]
    assert "omitted" in by_id["CIBA-AUTH-23"]["note"]
    assert "warning" in by_id["CIBA-CAUTH-09"]["note"]


def test_recorded_latitudes_are_known() -> None:
    """Every record_choice("...") call in the suites and the library names a latitude."""
    pattern = re.compile(r"record_choice\(\s*\"([a-z_]+)\"")
    used: dict[str, str] = {}
    for folder in ("conformance", "src/ciba_harness"):
        for path in (REPO / folder).rglob("*.py"):
            for latitude in pattern.findall(path.read_text(encoding="utf-8")):
                used.setdefault(latitude, str(path.relative_to(REPO)))
    assert len(used) >= 15, used
    unknown = {k: v for k, v in used.items() if k not in LATITUDES}
    assert not unknown
    with pytest.raises(ValueError):
        record_choice("no_such_latitude", "x")


def test_choices_reach_results_json_and_the_html_report() -> None:
    reset_choices()
    record_choice("refresh_token_rotation", "rotated", "refresh grant returned a new one")
    record_choice("refresh_token_rotation", "rotated", "refresh grant returned a new one")
    first = reset_choices()
    assert first == [{"latitude": "refresh_token_rotation", "choice": "rotated",
                      "evidence": "refresh grant returned a new one"}]
    assert recorded_choices() == []
    tests = [
        {"nodeid": "conformance/test_state_machine.py::t", "outcome": "passed", "choices": first},
        {"nodeid": "conformance/test_poll.py::r", "outcome": "passed", "choices": [
            {"latitude": "refresh_token_rotation", "choice": "rotated", "evidence": "again"},
            {"latitude": "interval", "choice": "absent", "evidence": "poll client"},
        ]},
    ]
    merged = collect_provider_choices(tests)
    assert [(c["latitude"], c["choice"], len(c["tests"])) for c in merged] == [
        ("refresh_token_rotation", "rotated", 2),
        ("interval", "absent", 1),
    ]
    assert merged[0]["title"] == LATITUDES["refresh_token_rotation"][0]
    results = build_results(tests, {"issuer": "https://op.example"}, started=0.0, exitstatus=0)
    assert results["provider_choices"] == merged
    html = render_html_report(results)
    section = html[html.index('<section id="choices">'):]
    section = section[: section.index("</section>")]
    assert "Provider choices (2)" in section
    assert "Refresh-token rotation" in section and "rotated" in section
    assert "interval in the acknowledgement" in section and "absent" in section
    assert "verdict" in section  # "without a verdict": choices are facts

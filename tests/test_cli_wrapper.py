"""`ciba-harness conformance` always runs the conformance suites, whatever options it is given
and from whatever folder; `--version`, usage and `conformance --help` (issue 13, items 1, 5, 12).

Selection is checked with `--collect-only` (no provider is started); one short run proves the
report lands where `--ciba-report` says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ciba_harness import __version__, default_profile_path

REPO = Path(__file__).resolve().parents[1]
PROFILE = default_profile_path()
KEYS = PROFILE.parent.parent / "keys"


def _harness(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ciba_harness.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=dict(os.environ),
    )


def _collected(process: subprocess.CompletedProcess[str]) -> list[str]:
    """Node IDs printed by `--collect-only -q`."""
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return [line for line in process.stdout.splitlines() if "::" in line]


def _my_profile(folder: Path) -> Path:
    """A vendor's own file (here: the reference profile with absolute key paths)."""
    path = folder / "my.toml"
    path.write_text(PROFILE.read_text(encoding="utf-8").replace('"../keys/', f'"{KEYS}/'))
    return path


def _in_suites(nodeids: list[str]) -> bool:
    return all("conformance/test_" in n.split("::")[0] for n in nodeids)


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_options_with_path_values_do_not_replace_the_suites(where: str, tmp_path: Path) -> None:
    cwd = REPO if where == "checkout" else tmp_path
    config = _my_profile(tmp_path)
    report = tmp_path / "reports" / "out"
    report.mkdir(parents=True)  # an existing report folder (the second `make conformance`)
    process = _harness("conformance", "--ciba-config", str(config), "--ciba-report", str(report),
                       "--collect-only", "-q", cwd=cwd)
    nodeids = _collected(process)
    assert len(nodeids) > 100 and _in_suites(nodeids), nodeids[:5]
    assert not any(n.startswith("tests/") for n in nodeids)


def test_a_second_run_in_the_same_folder_collects_the_suites_again(tmp_path: Path) -> None:
    (tmp_path / "reports" / "out").mkdir(parents=True)  # what the first run left behind
    nodeids = _collected(_harness("conformance", "--collect-only", "-q", cwd=tmp_path))
    assert len(nodeids) > 100 and _in_suites(nodeids)


def test_keyword_by_requirement_selects_from_the_suites(tmp_path: Path) -> None:
    nodeids = _collected(_harness("conformance", "-k", "CIBA-TOKEN-16", "--collect-only", "-q",
                                  cwd=tmp_path))
    assert nodeids and _in_suites(nodeids)


@pytest.mark.parametrize("mode", ["ping", "push", "poll"])
def test_mode_marker_selects_the_mode_parametrised_cases(mode: str, tmp_path: Path) -> None:
    nodeids = _collected(_harness("conformance", "-m", mode, "--collect-only", "-q",
                                  cwd=tmp_path))
    assert _in_suites(nodeids)
    assert any(n.endswith(f"[{mode}]") for n in nodeids), nodeids
    others = {"ping", "push", "poll"} - {mode}
    assert not any(n.endswith(f"[{other}]") for n in nodeids for other in others)


def test_explicit_suite_file_narrows_the_run(tmp_path: Path) -> None:
    nodeids = _collected(_harness("conformance", str(REPO / "conformance" / "test_discovery.py"),
                                  "--collect-only", "-q", cwd=REPO))
    assert nodeids and all(n.startswith("conformance/test_discovery.py::") for n in nodeids)


def test_run_from_another_folder_writes_the_report_there(tmp_path: Path) -> None:
    process = _harness("conformance", "--ciba-config", str(_my_profile(tmp_path)), "-k",
                       "CIBA-DISC-01 and test_discovery", "-p", "no:xdist", cwd=tmp_path,
                       timeout=300)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-2000:]
    assert "PytestAssertRewriteWarning" not in process.stdout + process.stderr
    results = json.loads((tmp_path / "reports" / "out" / "results.json").read_text())
    assert results["tests"] and _in_suites([t["nodeid"] for t in results["tests"]])
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    assert verdicts["CIBA-DISC-01"] == "pass"


def test_version(tmp_path: Path) -> None:
    process = _harness("--version", cwd=tmp_path)
    assert process.returncode == 0
    assert process.stdout.strip() == f"ciba-harness {__version__}"


def test_no_command_prints_usage_to_stderr(tmp_path: Path) -> None:
    process = _harness(cwd=tmp_path)
    assert process.returncode == 2
    assert process.stdout == ""
    assert "usage: ciba-harness" in process.stderr and "conformance" in process.stderr


def test_conformance_help_shows_the_harness_options_first(tmp_path: Path) -> None:
    process = _harness("conformance", "--help", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[0].startswith("usage: ciba-harness conformance"), lines[:3]
    assert "pytest.main()" not in process.stdout
    first_pytest_option = process.stdout.index("--collect-only")
    assert process.stdout.index("--ciba-config") < first_pytest_option
    # the whole option group of the harness, as pytest knows it (fuzz options included)
    assert process.stdout.index("--ciba-fuzz-profile") < first_pytest_option

"""`report diff`: regressions, improvements, changes, load percentiles and exit codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from report_samples import make_results

from ciba_harness.reports import LOAD_SUMMARY_FORMAT, cli_main, diff_results


@pytest.fixture
def results() -> dict[str, Any]:
    return make_results()


def _with_verdicts(verdicts: dict[str, str]) -> dict[str, Any]:
    return {"requirements": [{"id": rid, "verdict": v} for rid, v in verdicts.items()]}


def _load(**p95: float) -> dict[str, Any]:
    return {
        "format": LOAD_SUMMARY_FORMAT,
        "requests": {
            name: {"count": 100, "failures": 0, "failure_ratio": 0.0, "p50": v / 2, "p95": v,
                   "p99": v * 1.2, "rps": 10.0}
            for name, v in p95.items()
        },
    }  # fmt: skip


def test_unchanged_runs_have_no_difference(results: dict[str, Any]) -> None:
    diff = diff_results(results, copy.deepcopy(results))
    assert (diff.regressions, diff.improvements, diff.changes) == ([], [], [])
    assert diff.exit_code == 0
    assert "no regression" in diff.render()


def test_regression_improvement_and_change_are_told_apart() -> None:
    old = _with_verdicts(
        {"A": "pass", "B": "warning", "C": "fail", "D": "pass", "E": "skipped", "F": "pass",
         "G": "error", "H": "warning", "I": "pass"}
    )  # fmt: skip
    new = _with_verdicts(
        {"A": "fail", "B": "fail", "C": "pass", "D": "warning", "E": "fail", "F": "error",
         "G": "warning", "H": "pass", "J": "pass"}
    )  # fmt: skip
    diff = diff_results(old, new)
    assert [e.key for e in diff.regressions] == ["A", "B", "F"]
    assert [e.key for e in diff.improvements] == ["C", "G", "H"]
    assert [e.key for e in diff.changes] == ["D", "E", "I", "J"]  # I gone, J new
    assert diff.exit_code == 1
    text = diff.render()
    assert "A: pass → fail" in text and "REGRESSED" in text


def test_results_from_the_builder_regress_and_improve() -> None:
    good, bad = make_results(poll_fails=False), make_results(poll_fails=True)
    worse = diff_results(good, bad)
    assert [e.key for e in worse.regressions] == ["CIBA-TOKEN-05"]
    better = diff_results(bad, good)
    assert better.exit_code == 0 and [e.key for e in better.improvements] == ["CIBA-TOKEN-05"]


def test_load_p95_beyond_threshold() -> None:
    old = _load(token=100.0, bc=200.0, flat=1000.0, tiny=0.4)
    new = _load(token=130.0, bc=150.0, flat=1100.0, tiny=0.9)
    diff = diff_results(old, new, threshold=0.2)
    assert [e.key for e in diff.regressions] == ["token p95"]
    assert [e.key for e in diff.improvements] == ["bc p95"]
    assert "bc p50" in [e.key for e in diff.changes]
    assert all("flat" not in e.key and "tiny" not in e.key for e in diff.changes)
    assert diff.exit_code == 1
    assert diff_results(old, new, threshold=0.5).exit_code == 0


def test_load_failure_ratio_rising_is_a_regression() -> None:
    old, new = _load(token=100.0), _load(token=100.0)
    new["requests"]["token"]["failure_ratio"] = 0.25
    diff = diff_results(old, new)
    assert [e.key for e in diff.regressions] == ["token failure ratio"]


def test_results_carrying_a_load_summary_compare_both() -> None:
    old = {**_with_verdicts({"A": "pass"}), "load": _load(token=100.0)}
    new = {**_with_verdicts({"A": "pass"}), "load": _load(token=300.0)}
    diff = diff_results(old, new)
    assert diff.compared == ["requirements", "load"]
    assert diff.exit_code == 1


def _write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good.json", make_results(poll_fails=False))
    bad = _write(tmp_path / "bad.json", make_results(poll_fails=True))
    assert cli_main(["report", "diff", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "Regressions (1):" in out and "CIBA-TOKEN-05: pass → fail" in out
    assert cli_main(["diff", str(bad), str(good)]) == 0
    assert cli_main(["diff", str(good), str(good), "--threshold", "0.1"]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"hello": 1}', "nothing in common to compare"),
        (b"\xff\xfe\x00", "not a UTF-8 text file"),
    ],
)
def test_cli_unreadable_input_is_one_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    good = _write(tmp_path / "good.json", make_results())
    other = tmp_path / "other.json"
    if isinstance(content, bytes):
        other.write_bytes(content)
    elif content is not None:
        other.write_text(content, encoding="utf-8")
    assert cli_main(["report", "diff", str(good), str(other)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report"]) == 2
    assert cli_main(["diff", "only-one.json"]) == 2
    assert cli_main(["diff", "a", "b", "--threshold", "x"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli_main(["--help"]) == 0


def test_cli_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "results.json", make_results())
    assert cli_main(["report", "html", str(path)]) == 0
    assert 'id="requirement-matrix"' in (tmp_path / "report.html").read_text("utf-8")
    assert cli_main(["html", str(path), "-o", str(tmp_path / "x" / "r.html")]) == 0
    assert (tmp_path / "x" / "r.html").is_file()
    other = _write(tmp_path / "other.json", {"format": "something else"})
    assert cli_main(["html", str(other)]) == 2
    assert "is not a ciba-harness results.json" in capsys.readouterr().err


def _run(issuer: str = "https://op.example", faults: tuple[str, ...] = (), profile: str = "ciba",
         tests: tuple[str, ...] = ("t::a", "t::b")) -> dict[str, Any]:
    return {
        "session": {"issuer": issuer, "faults": list(faults), "profile": profile},
        "requirements": [{"id": "CIBA-DISC-01", "verdict": "pass"}],
        "tests": [{"nodeid": n, "outcome": "passed"} for n in tests],
    }


def test_diff_warns_when_the_runs_are_not_comparable() -> None:
    diff = diff_results(_run(), _run())
    assert diff.warnings == []
    diff = diff_results(
        _run(), _run(issuer="https://other.example", faults=("wrong_iss",), profile="fapi-ciba",
                     tests=("t::a", "t::c")))
    text = " ".join(diff.warnings)
    for word in ("provider", "https://other.example", "faults", "wrong_iss", "profile",
                 "fapi-ciba", "selection", "1 test(s) only in the old run"):
        assert word in text, (word, diff.warnings)
    assert diff.render().startswith("WARNING")


def test_a_latency_change_needs_enough_samples() -> None:
    old, new = _load(token=100.0), _load(token=300.0)
    for doc in (old, new):
        doc["requests"]["token"]["count"] = 5
    diff = diff_results(old, new)
    assert diff.regressions == []
    assert any("too few samples" in e.note for e in diff.changes), diff.changes
    for doc in (old, new):
        doc["requests"]["token"]["count"] = 200
    assert [e.key for e in diff_results(old, new).regressions] == ["token p95"]


def test_the_harness_own_traffic_is_never_a_regression() -> None:
    old = _load(**{"POST device approve": 100.0, "POST device deny": 100.0})
    new = _load(**{"POST device approve": 900.0, "POST device deny": 900.0})
    for name in new["requests"]:
        new["requests"][name]["failure_ratio"] = 0.5
    diff = diff_results(old, new)
    assert diff.regressions == [] and diff.exit_code == 0
    assert all("harness" in e.note for e in diff.changes if "device" in e.key), diff.changes

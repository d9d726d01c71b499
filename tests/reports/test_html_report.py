"""The HTML conformance report: matrix, views, evidence, escaping, robustness."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from report_samples import HOSTILE, SECRET, SESSION, make_results, make_tests

from ciba_harness.reports import render_html_report, write_html_report
from ciba_harness.reports._conformance import auth_methods_of
from ciba_harness.reports._results import build_results

pytest_plugins = ["pytester"]

EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?!#|data:)[a-z]+:|url\(|@import""", re.I
)


@pytest.fixture
def results() -> dict[str, Any]:
    return make_results()


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start : html.index("</section>", start)]


def test_matrix_lists_every_requirement_with_its_verdict(results: dict[str, Any]) -> None:
    html = render_html_report(results)
    matrix = html[html.index('<table id="requirement-matrix">') :]
    matrix = matrix[: matrix.index("</table>")]
    rows = re.findall(r'<tr class="r-(\w+)"[^>]*><td class="id">([^<]+)</td>', matrix)
    assert len(rows) == len(results["requirements"])
    verdicts = {rid: verdict for verdict, rid in rows}
    assert verdicts["CIBA-TOKEN-05"] == "fail"
    assert verdicts["CIBA-TOKEN-03"] == "warning"
    assert verdicts["CIBA-PING-01"] == "error"
    assert verdicts["CIBA-PUSH-01"] == "skipped"
    assert verdicts["CIBA-DISC-01"] == "pass"
    assert verdicts["CIBA-DISC-03"] == "not_tested"
    for header in ("ID", "Spec section", "Level", "Verdict", "Tests"):
        assert f"<th>{header}</th>" in matrix


def test_summary_counts_and_sections(results: dict[str, Any]) -> None:
    html = render_html_report(results)
    summary = _section(html, "summary")
    counts = results["summary"]["requirements"]
    for verdict, label in (("fail", "fail"), ("not_tested", "not tested"), ("pass", "pass")):
        assert f'<div class="n">{counts[verdict]}</div><div class="l">{label}</div>' in summary
    for section in (
        "summary", "configuration", "matrix", "by-mode", "by-auth", "failures", "warnings",
        "skipped", "not-tested", "tests",
    ):  # fmt: skip
        assert f'<section id="{section}">' in html
    assert "could not be rendered" not in html


def test_hostile_strings_are_escaped(results: dict[str, Any]) -> None:
    html = render_html_report(results)
    assert HOSTILE not in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in _section(html, "failures")
    # The only script is the report's own inline filter.
    assert html.count("<script>") == 1


def test_failure_shows_expected_received_exchange_and_curl(results: dict[str, Any]) -> None:
    failures = _section(render_html_report(results), "failures")
    assert "Expected</div><pre>error=expected_token" not in failures  # sanity of the check below
    assert '<div class="label">Expected</div><pre>error=expired_token</pre>' in failures
    assert '<div class="label">Received</div><pre>error=invalid_request</pre>' in failures
    assert "&gt; POST https://op.example/token" in failures
    assert "&lt; 400" in failures
    assert "Reproduce with:" in failures
    assert "curl -i -X POST https://op.example/token" in failures
    assert "client_secret=***" in failures
    assert "connection refused" in failures  # the errored test, without exchanges
    assert failures.index("test_expired") < failures.index("test_ping_error")  # fail first


def test_views_per_mode_and_auth_method(results: dict[str, Any]) -> None:
    html = render_html_report(results)
    by_mode = _section(html, "by-mode")
    for mode in ("poll", "ping", "push", "unspecified"):
        assert f"<h3>{mode}</h3>" in by_mode
    by_auth = _section(html, "by-auth")
    assert "<h3>client_secret_basic</h3>" in by_auth
    assert "<h3>private_key_jwt</h3>" in by_auth
    assert "<h3>unspecified</h3>" in by_auth


def test_warnings_skipped_and_not_tested(results: dict[str, Any]) -> None:
    html = render_html_report(results)
    assert "interval not honoured" in _section(html, "warnings")
    skipped = _section(html, "skipped")
    assert "not applicable: the provider does not advertise push mode" in skipped
    assert "CIBA-PUSH-01" in skipped
    not_tested = _section(html, "not-tested")
    assert "CIBA-DISC-03" in not_tested and "CIBA-DISC-01" not in not_tested


def test_self_contained_and_no_secret(results: dict[str, Any], tmp_path: Path) -> None:
    path = write_html_report(results, tmp_path / "out" / "report.html")
    html = path.read_text("utf-8")
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "Content-Security-Policy" in html
    assert SECRET not in html
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("t.py::test_x[self_signed_tls_client_auth]", ["self_signed_tls_client_auth"]),
        ("t.py::test_x[tls_client_auth-poll]", ["tls_client_auth"]),
        ("t.py::test_client_secret_post_accepted", ["client_secret_post"]),
        ("t.py::test_x[poll-none]", ["none"]),
        ("t.py::test_none_of_these", ["unspecified"]),
    ],
)
def test_auth_method_from_node_id(nodeid: str, expected: list[str]) -> None:
    assert auth_methods_of({"nodeid": nodeid}, SESSION) == expected


def test_auth_method_explicit_or_single_configured_client() -> None:
    assert auth_methods_of({"nodeid": "t", "auth_method": "private_key_jwt"}, {}) == [
        "private_key_jwt"
    ]
    session = {"clients": [{"auth_method": "private_key_jwt"}, {"auth_method": "private_key_jwt"}]}
    assert auth_methods_of({"nodeid": "t.py::test_x"}, session) == ["private_key_jwt"]


def test_tokens_in_evidence_are_masked() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    extra = {
        "nodeid": "conformance/test_x.py::test_leak",
        "outcome": "failed",
        "requirements": ["CIBA-IDT-01"],
        "modes": ["poll"],
        "failure": {
            "kind": "InvalidIdToken",
            "requirement": "CIBA-IDT-01",
            "title": "bad id token",
            "actual": f"id_token={jwt}; Authorization: Bearer abcDEF123456ghi",
            "exchanges": [],
        },
    }
    results = build_results(make_tests(extra=[extra]), SESSION, started=time.time(), exitstatus=1)
    html = render_html_report(results)
    assert jwt not in html and "abcDEF123456ghi" not in html
    assert "eyJhbG***" in html and "Bearer ***" in html


def test_interrupted_and_empty_runs_still_render(tmp_path: Path) -> None:
    interrupted = build_results([], {}, started=time.time(), exitstatus=2)
    html = render_html_report(interrupted)
    assert "interrupted" in html and 'id="requirement-matrix"' in html
    assert "could not be rendered" not in html
    empty = render_html_report({})  # nothing at all: still a page saying so
    assert "CIBA conformance report" in empty and "No conformance test reported" in empty


def test_malformed_records_cost_at_most_a_section() -> None:
    results = make_results()
    results["tests"].append({"nodeid": 42, "outcome": ["odd"], "modes": "poll", "failure": "x"})
    results["requirements"].append({"id": None, "tests": "nope", "verdict": 3})
    results["session"]["clients"] = "not a list"
    results["warnings"].append({"failure": {"exchanges": [{"request": "bad"}]}})
    html = render_html_report(results)
    assert 'id="requirement-matrix"' in html
    assert html.rstrip().endswith("</html>")


def test_the_plugin_writes_report_html_even_when_interrupted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sample="""
        import pytest

        @pytest.mark.requirement("CIBA-DISC-01")
        def test_ok():
            pass

        @pytest.mark.requirement("CIBA-DISC-02")
        def test_bad():
            assert False, "<b>boom</b>"

        @pytest.mark.requirement("CIBA-DISC-03")
        def test_stop():
            raise KeyboardInterrupt
        """
    )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-p", "no:locust", "-p", "no:cacheprovider", f"--ciba-report={out}"
    )
    assert result.ret == 2  # interrupted
    results = json.loads((out / "results.json").read_text("utf-8"))
    html = (out / "report.html").read_text("utf-8")
    assert results["interrupted"] is True
    assert "The run was interrupted" in html
    assert 'id="requirement-matrix"' in html
    assert "&lt;b&gt;boom&lt;/b&gt;" in html
    result.stdout.fnmatch_lines([f"report: {out / 'report.html'}"])


def test_a_renderer_bug_still_leaves_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ciba_harness.reports import _conformance

    def broken(results: dict[str, Any]) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(_conformance, "render_html_report", broken)
    html = write_html_report(make_results(), tmp_path / "report.html").read_text("utf-8")
    assert "could not be rendered (RuntimeError)" in html and "results.json" in html

"""The suites over TLS: the whole CIBA suite passes against the TLS reference provider; the
TLS / mTLS / FAPI-CIBA tests skip with clear reasons against the plain-http default; TLS
verification switched off is reported loudly."""

from __future__ import annotations

from pathlib import Path

from tls_suite_helpers import FAPI_SUBSET, REPO, TLS_PROFILE, describe, failed, run_conformance


def test_whole_suite_passes_against_the_tls_reference_provider(tmp_path: Path) -> None:
    """Everything but the fuzz suites (random by design; they have their own self-tests)."""
    process, results = run_conformance(
        tmp_path, "--ciba-config", str(TLS_PROFILE), "-m", "not fuzz", "-n", "2"
    )
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    assert not failed(results), describe(failed(results)) + "\n" + process.stdout[-3000:]
    session = results["session"]
    assert session["tls"]["issuer_https"] is True and session["tls"]["receiver_https"] is True
    assert session["insecure_skip_verify"] is False
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    for requirement in ("CIBA-CAUTH-10", "CIBA-SEC-01", "CIBA-SEC-03", "CIBA-PING-04",
                        "FAPI-CIBA-16", "FAPI-CIBA-21"):
        assert verdicts[requirement] == "pass", (requirement, verdicts[requirement])
    assert results["summary"]["tests"]["passed"] > 200


def test_whole_suite_passes_against_the_tls_reference_provider_in_fapi_mode(
    tmp_path: Path,
) -> None:
    """Under --ciba-profile fapi-ciba the embedded provider runs its FAPI-CIBA mode; the plain
    CIBA suites pick FAPI-fit clients (signed requests, certificates) and pass alongside the
    TLS / mTLS / FAPI-CIBA tests."""
    process, results = run_conformance(
        tmp_path, "--ciba-config", str(TLS_PROFILE), "--ciba-profile", "fapi-ciba",
        "-m", "not fuzz", "-n", "2",
    )
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    assert not failed(results), describe(failed(results)) + "\n" + process.stdout[-3000:]
    assert results["session"]["profile"] == "fapi-ciba"
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    for requirement in ("FAPI-CIBA-06", "FAPI-CIBA-07", "FAPI-CIBA-17", "FAPI-CIBA-18",
                        "FAPI-CIBA-20", "FAPI-CIBA-21", "CIBA-IDT-03"):
        assert verdicts[requirement] == "pass", (requirement, verdicts[requirement])
    assert results["summary"]["tests"]["passed"] > 250


def test_tls_and_fapi_tests_skip_against_the_plain_http_default(tmp_path: Path) -> None:
    process, results = run_conformance(tmp_path, files=FAPI_SUBSET)
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    tests = results["tests"]
    assert tests and all(t["outcome"] == "skipped" for t in tests), describe(failed(results))
    reasons = {t["nodeid"].split("::")[0]: t["skip_reason"] for t in tests}
    # FAPI tests are deselected (one header line), not skipped one by one.
    assert "conformance/test_fapi_ciba.py" not in reasons
    assert "FAPI-CIBA tests deselected: FAPI-CIBA profile not selected" in process.stdout
    assert "not served over https" in reasons["conformance/test_tls.py"]
    assert "needs a provider served over https" in reasons["conformance/test_mtls.py"]


def test_fapi_tests_skip_without_the_fapi_profile_over_tls(tmp_path: Path) -> None:
    process, results = run_conformance(tmp_path, "--ciba-config", str(TLS_PROFILE),
                                       files=("test_fapi_ciba.py",))
    assert process.returncode == 5, process.stdout[-3000:] + process.stderr[-3000:]
    assert results is None  # all deselected: nothing ran, no report
    assert process.stdout.count("FAPI-CIBA profile not selected") == 1, process.stdout[-3000:]


def test_disabled_verification_is_reported_loudly(tmp_path: Path) -> None:
    keys = REPO / "fixtures" / "keys"
    profile = tmp_path / "insecure.toml"
    profile.write_text(
        TLS_PROFILE.read_text()
        .replace('ca_bundle = "pki:ca.pem"', "insecure_skip_verify = true")
        .replace("../keys/", f"{keys}/")
    )
    report = tmp_path / "report"
    process, results = run_conformance(report, "--ciba-config", str(profile),
                                       files=("test_tls.py",))
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    assert results["session"]["insecure_skip_verify"] is True
    assert results["session"]["tls"]["verification"] == "DISABLED"
    assert any("DISABLED" in n for n in results["session"]["notices"])
    _, _, summary = process.stdout.partition("CIBA conformance")
    assert "TLS certificate verification was DISABLED" in summary  # terminal summary

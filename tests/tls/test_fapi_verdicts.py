"""Verdict rules of the FAPI-CIBA profile: rows FAPI makes MUST fail where plain CIBA warns."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_suite_helpers import TLS_PROFILE, run_conformance

from ciba_harness import Severity
from ciba_harness.checks._idtoken import acr_present
from ciba_harness.checks._registry import CheckRunner
from ciba_harness.core._errors import CheckFailure
from ciba_harness.core._verdict_rules import PROFILE_RULES, mandatory_requirements
from ciba_harness.provider import start_provider


def test_runner_escalates_listed_requirements() -> None:
    plain = CheckRunner()
    assert plain(acr_present, {}, severity=Severity.WARNING) is False
    fapi = CheckRunner(mandatory=mandatory_requirements("fapi-ciba"))
    with pytest.raises(CheckFailure) as failure:
        fapi(acr_present, {}, severity=Severity.WARNING)
    assert failure.value.severity is Severity.FAILURE
    assert "CIBA-IDT-03" in PROFILE_RULES["fapi-ciba"] and not mandatory_requirements("ciba")


@pytest.mark.parametrize(("profile", "verdict"), [("ciba", "warning"), ("fapi-ciba", "fail")])
def test_missing_acr_warns_under_ciba_and_fails_under_fapi(
    tmp_path: Path, profile: str, verdict: str
) -> None:
    # a plain-mode provider with the fault; the harness judges it under either profile
    with start_provider(TLS_PROFILE, faults={"id_token_missing_acr"}) as provider:
        process, results = run_conformance(
            tmp_path, "--ciba-config", str(TLS_PROFILE), "--ciba-issuer", provider.issuer,
            "--ciba-profile", profile, "-k", "acr_when_acr_values_requested",
            files=("test_id_token.py",),
        )
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    assert verdicts["CIBA-IDT-03"] == verdict

"""Verdicts on providers that make choices the specs allow (issue 12): the reference provider
under one policy variant runs the conformance tests that met that choice; none fails, and the
choice shows in results.json `provider_choices` and in the HTML report's "Provider choices".

Each scenario is one small suite run in a subprocess (a few seconds; the state machine ~20 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from suite_runner import CONFORMANCE, REPO, failed_tests

from ciba_harness import default_profile_path
from ciba_harness.provider import start_provider


@dataclass(frozen=True)
class Scenario:
    policy: str
    files: tuple[str, ...]
    select: str  # -k expression ("" = the whole files)
    latitude: str  # the provider choice the run must record
    choice: str  # a part of the recorded option


SCENARIOS = {
    # The state machine follows a rotated refresh token; whether a run of it reaches a refresh
    # depends on its time budget, so the choice is read from the deterministic poll test.
    "rotation": Scenario("refresh_token_rotation", ("test_poll.py", "test_state_machine.py"),
                         "refresh_token_works or state_machine", "refresh_token_rotation",
                         "rotated"),
    "unknown_scope_kept": Scenario("unknown_scope_kept", ("test_auth_request.py",),
                                   "unknown_scope", "unknown_scope", "granted"),
    "empty_params": Scenario("empty_params_omitted", ("test_auth_request.py",),
                             "empty_repeated", "empty_parameter", "treated as omitted"),
    "registration": Scenario("registration_requires_redirect_uris", ("test_registration.py",),
                             "", "registration_demands", "none beyond CIBA metadata"),
    "id_token_es256": Scenario("id_token_es256", ("test_id_token.py",), "alg", "id_token_alg",
                               "ES256"),
    "no_interval": Scenario("no_interval", ("test_acknowledgement.py",), "interval",
                            "interval", "absent"),
    "never_slow_down": Scenario("never_slow_down", ("test_token_errors.py",), "too_fast",
                                "slow_down", "authorization_pending"),
    "plain_text_method": Scenario("plain_text_wrong_method", ("test_auth_request.py",),
                                  "get_request or json_body", "wrong_method_answer",
                                  "text/plain"),
}


def run_files(report: Path, files: tuple[str, ...], select: str, issuer: str) -> tuple[
    subprocess.CompletedProcess[str], dict[str, Any] | None
]:
    command = [sys.executable, "-m", "pytest", *(str(CONFORMANCE / f) for f in files),
               "-p", "no:cacheprovider", "-q", "--ciba-report", str(report),
               "--ciba-issuer", issuer, *(["-k", select] if select else [])]
    process = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO,
                             env=dict(os.environ))
    path = report / "results.json"
    return process, json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_allowed_choice_passes_and_is_recorded(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    with start_provider(default_profile_path(), policies=[scenario.policy]) as provider:
        process, results = run_files(tmp_path, scenario.files, scenario.select, provider.issuer)
    output = process.stdout[-3000:] + process.stderr[-2000:]
    assert results is not None, output
    failures = failed_tests(results)
    assert not failures, "\n".join(
        f"{t['nodeid']}: {(t.get('failure') or {}).get('title')}" for t in failures
    ) + output
    assert results["summary"]["tests"]["passed"] >= 1, output
    seen = [c for c in results["provider_choices"] if c["latitude"] == scenario.latitude]
    assert any(scenario.choice in c["choice"] for c in seen), seen
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="choices"' in html and "Provider choices" in html
    assert seen[0]["title"] in html


class _NeverSeen(dict):  # type: ignore[type-arg]
    """A jti store that never remembers: every replayed assertion looks fresh."""

    def __contains__(self, key: object) -> bool:
        return False


def _accept_replayed_assertions(provider: Any) -> None:
    provider.assertion_jtis = _NeverSeen()


def _ignore_invalid_requested_expiry(provider: Any) -> None:
    original = provider.backchannel._authentication_parameters

    def lenient(form: Any, client: Any) -> Any:
        params = original(form, client)
        value = str(params.get("requested_expiry", "1"))
        if not value.isdigit() or int(value) == 0:
            params.pop("requested_expiry", None)  # ignored, as some providers do
        return params

    provider.backchannel._authentication_parameters = lenient


SILENT_PASSES = {
    # OIDC Core §9: client assertions MUST only be used once; a replay accepted is warned.
    "assertion_replay": (_accept_replayed_assertions, "test_client_auth.py", "replay",
                         "CIBA-CAUTH-09"),
    # CIBA §13: invalid_request for an invalid value; accepting requested_expiry=-5 is warned.
    "invalid_requested_expiry": (_ignore_invalid_requested_expiry, "test_auth_request.py",
                                 "invalid_requested_expiry", "CIBA-AUTH-21"),
}


@pytest.mark.parametrize("name", sorted(SILENT_PASSES))
def test_lenient_provider_is_warned_not_passed_silently(name: str, tmp_path: Path) -> None:
    """A provider accepting what the spec calls invalid, without a MUST to refuse it, gets a
    warning on that row (Verdict severity), not a failure and not a silent pass."""
    patch, file, select, requirement = SILENT_PASSES[name]
    with start_provider(default_profile_path()) as provider:
        patch(provider.provider)
        process, results = run_files(tmp_path, (file,), select, provider.issuer)
    output = process.stdout[-3000:] + process.stderr[-2000:]
    assert results is not None, output
    assert not failed_tests(results), output
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    assert verdicts[requirement] == "warning", output
    assert any(w["requirement"] == requirement for w in results["warnings"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert requirement in html

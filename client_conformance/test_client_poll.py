"""Poll mode (CIBA §7.3, §10.1, §11) and ID-token validation of tokens from the token endpoint.

Signature, kid and alg rules are warnings here: OIDC Core §3.1.3.7 step 6 lets a client rely
on TLS for an ID token that came straight from the token endpoint (security-relevant latitude).
"""

from __future__ import annotations

import pytest

from ciba_harness.core._errors import Severity
from ciba_harness.rp import _checks as c
from ciba_harness.rp._harness import ClientTest

COMMON = ("CIBA-RP-01", "CIBA-RP-02", "CIBA-RP-03", "CIBA-RP-04", "CIBA-RP-08", "CIBA-RP-10",
          "CIBA-RP-12", "CIBA-RP-13", "CIBA-RP-14", "CIBA-RP-15", "CIBA-RP-16", "CIBA-RP-17")
pytestmark = [pytest.mark.poll, pytest.mark.client_requirement(*COMMON)]


@pytest.mark.client_requirement("CIBA-RP-48")
@pytest.mark.parametrize("behaviour", [
    # authorization_pending, then tokens: the client polls at the interval and accepts.
    pytest.param("poll_faithful", id="faithful"),
    # slow_down on the second poll: the next poll comes at least 5 s later than the pace.
    pytest.param("poll_slow_down", id="slow_down"),
    # No interval in the acknowledgement: polls at least 5 s apart.
    pytest.param("poll_interval_absent", id="interval_absent"),
    # A 5 s interval: polls at least 5 s apart.
    pytest.param("poll_interval_5s", id="interval_5s"),
    # aud as a one-element array holding the client_id: a valid ID token, accepted.
    pytest.param("poll_aud_array", id="aud_array"),
])
def test_poll_tokens_accepted(ciba_rp: ClientTest, behaviour: str) -> None:
    """A valid poll flow: the pace rules hold and the tokens are accepted."""
    ciba_rp.tokens_accepted(behaviour)


@pytest.mark.client_requirement("CIBA-RP-09")
@pytest.mark.parametrize("behaviour", ["poll_ack_missing_auth_req_id",
                                       "poll_ack_missing_expires_in", "poll_unknown_user_id"],
                         ids=["missing_auth_req_id", "missing_expires_in", "unknown_user_id"])
def test_poll_acknowledgement_refused(ciba_rp: ClientTest, behaviour: str) -> None:
    """An acknowledgement without auth_req_id or expires_in, or an error: no poll, a refusal."""
    seen = ciba_rp.observe(behaviour)
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_failed_acknowledgement_ends_flow, seen.run, seen.outcome)
    ciba_rp.conclude()


REFUSED_CASES = [
    # expires_in 2 s and a provider that keeps saying pending: the client stops by itself.
    ("poll_expired", "CIBA-RP-15", "tokens of an expired request", None),
    # access_denied on the first poll: the client stops polling and reports a refusal.
    ("poll_denied", "CIBA-RP-16", "a denied request", None),
    # invalid_request on the first poll: an error that ends the transaction.
    ("poll_invalid_request", "CIBA-RP-16", "a failed request", None),
]
# Cases with a requirement of their own (marked on the test), beyond the poll plan's common ones.
MARKED_REFUSED_CASES = [
    # HTTP 400 access_denied whose body also carries token members: no tokens taken.
    ("poll_error_with_tokens", "CIBA-RP-47", "tokens from an error response", None),
    # ID tokens that fail OIDC Core §3.1.3.7 validation.
    ("poll_forged_signature", "CIBA-RP-40", "an ID token whose signature does not verify",
     Severity.WARNING),
    ("poll_foreign_kid", "CIBA-RP-41", "an ID token signed by a key not in the JWKS",
     Severity.WARNING),
    ("poll_alg_none", "CIBA-RP-43", "an unsigned (alg none) ID token", Severity.WARNING),
    ("poll_wrong_iss", "CIBA-RP-44", "an ID token of another issuer", Severity.FAILURE),
    ("poll_wrong_aud", "CIBA-RP-45", "an ID token for another audience", Severity.FAILURE),
    ("poll_expired_id_token", "CIBA-RP-46", "an expired ID token", Severity.FAILURE),
    ("poll_missing_iss", "CIBA-RP-44", "an ID token without iss", Severity.FAILURE),
    ("poll_missing_aud", "CIBA-RP-45", "an ID token without aud", Severity.FAILURE),
    ("poll_secondary_aud", "CIBA-RP-45", "an ID token also for an untrusted audience",
     Severity.FAILURE),
    ("poll_missing_exp", "CIBA-RP-46", "an ID token without exp", Severity.FAILURE),
    ("poll_alternate_alg", "CIBA-RP-49", "an ID token signed with an alg the OP does not "
     "announce", Severity.WARNING),
]


@pytest.mark.parametrize(
    ("behaviour", "requirement", "what", "severity"),
    [pytest.param(*case, id=case[0].removeprefix("poll_")) for case in REFUSED_CASES]
    + [pytest.param(*case, id=case[0].removeprefix("poll_"),
                    marks=pytest.mark.client_requirement(case[1]))
       for case in MARKED_REFUSED_CASES],
)
def test_poll_tokens_refused(ciba_rp: ClientTest, behaviour: str, requirement: str,
                             what: str, severity: Severity | None) -> None:
    """A flow that must end without tokens (expiry, an error, an invalid ID token): refused."""
    ciba_rp.tokens_refused(behaviour, what=what, requirement=requirement, severity=severity)


@pytest.mark.client_requirement("CIBA-RP-42")
def test_poll_rotated_key(ciba_rp: ClientTest) -> None:
    """Two flows; the second's ID token is signed by a key added to the JWKS after the first:
    the client fetches the JWKS again and accepts."""
    seen = ciba_rp.observe("poll_rotated_key")
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcomes[0], seen.expected_subs[0])
    ciba_rp.check(c.rp_tokens_accepted, seen.outcomes[1], seen.expected_subs[1],
                  requirement="CIBA-RP-42")
    ciba_rp.conclude()

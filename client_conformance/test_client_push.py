"""Push mode (CIBA §10.3, §12): pushed tokens are accepted only after the bearer token and the
ID token (signature, auth_req_id claim, at_hash, rt_hash) are checked."""

from __future__ import annotations

import pytest

from ciba_harness.rp import _checks as c
from ciba_harness.rp._harness import ClientTest

COMMON = ("CIBA-RP-01", "CIBA-RP-02", "CIBA-RP-03", "CIBA-RP-04", "CIBA-RP-05", "CIBA-RP-06",
          "CIBA-RP-08", "CIBA-RP-20")
pytestmark = [pytest.mark.push, pytest.mark.client_requirement(*COMMON)]


@pytest.mark.client_requirement("CIBA-RP-48")
def test_push_faithful(ciba_rp: ClientTest) -> None:
    """A valid push: answered 204, tokens accepted."""
    ciba_rp.tokens_accepted("push_faithful")


@pytest.mark.client_requirement("CIBA-RP-30", "CIBA-RP-22")
def test_push_wrong_bearer(ciba_rp: ClientTest) -> None:
    """A push with a wrong bearer token (well-signed tokens of another user) first: refused."""
    seen = ciba_rp.observe("push_wrong_bearer")
    ciba_rp.standard(seen)
    if ciba_rp.check(c.rp_forged_push_refused, seen.outcome, seen.expected_sub):
        ciba_rp.check(c.rp_invalid_bearer_answered_401, seen.run)
    ciba_rp.conclude()


PUSHED_ID_TOKEN_CASES = [
    ("push_missing_auth_req_id", "CIBA-RP-31", "an ID token without the auth_req_id claim"),
    ("push_bad_at_hash", "CIBA-RP-32", "tokens whose at_hash does not match"),
    ("push_bad_rt_hash", "CIBA-RP-33", "tokens whose rt_hash does not match"),
    ("push_forged_signature", "CIBA-RP-40", "a pushed ID token whose signature does not verify"),
    ("push_alg_none", "CIBA-RP-43", "an unsigned (alg none) pushed ID token"),
]


@pytest.mark.parametrize(
    ("behaviour", "requirement", "what"),
    [pytest.param(*case, id=case[0].removeprefix("push_"),
                  marks=pytest.mark.client_requirement(case[1]))
     for case in PUSHED_ID_TOKEN_CASES],
)
def test_push_tokens_refused(ciba_rp: ClientTest, behaviour: str, requirement: str,
                             what: str) -> None:
    """Pushed tokens that fail CIBA §10.3.1 / OIDC Core §3.1.3.7 validation are refused."""
    ciba_rp.tokens_refused(behaviour, what=what, requirement=requirement)


@pytest.mark.client_requirement("CIBA-RP-34")
@pytest.mark.parametrize("behaviour", ["push_denied", "push_transaction_failed"])
def test_push_error(ciba_rp: ClientTest, behaviour: str) -> None:
    """A push error (access_denied, transaction_failed) is reported as a refusal at once."""
    seen = ciba_rp.observe(behaviour)
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_push_error_ends_flow, seen.run, seen.outcome)
    ciba_rp.conclude()

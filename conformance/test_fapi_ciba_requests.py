"""FAPI-CIBA: request objects and request parameters (catalogue §11; CIBA §7.1.1), with
mirrors of the certification suite's FAPI-CIBA modules ("mirrors fapi-ciba-id1-...";
the map: `ciba_harness.checks._fapi.CERTIFICATION_MODULES`, shown in docs/fapi-ciba.md).

Runs only under the FAPI-CIBA profile, like test_fapi_ciba.py (its docstring describes the
variants and the clients they need). Broken request objects are refused with
invalid_request; invalid_request_object is tolerated with a warning (A-03).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    RequestObjectSpec,
    accept_signed,
    accepted,
    expect_backchannel_error,
    expect_signed_request_refused,
    fapi_rsa_key,
    fapi_severity,
    login_hint_token,
    refused,
    second_fapi_client,
    send_signed,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

pytestmark = [pytest.mark.fapi, pytest.mark.usefixtures("fapi_profile")]


# --- request objects ----------------------------------------------------------------------------

REQUEST_OBJECT_CASES = {
    # case: (RequestObjectSpec, requirement)
    "missing-aud": (RequestObjectSpec(claims={"aud": None}), "CIBA-SREQ-05"),
    "bad-aud": (RequestObjectSpec(claims={"aud": "https://other-op.example.org"}),
                "CIBA-SREQ-05"),
    "missing-iss": (RequestObjectSpec(claims={"iss": None}), "CIBA-SREQ-06"),
    "missing-exp": (RequestObjectSpec(claims={"exp": None}), "CIBA-SREQ-07"),
    "missing-iat": (RequestObjectSpec(claims={"iat": None}), "CIBA-SREQ-08"),
    "missing-nbf": (RequestObjectSpec(claims={"nbf": None}), "CIBA-SREQ-09"),
    "nbf-is-10-minutes-in-future": (RequestObjectSpec(nbf_offset=600), "CIBA-SREQ-09"),
    "missing-jti": (RequestObjectSpec(claims={"jti": None}), "CIBA-SREQ-10"),
    "signature-algorithm-is-none": (RequestObjectSpec(alg="none"), "CIBA-SREQ-02"),
    "signature-algorithm-is-bad": (RequestObjectSpec(tamper_signature=True), "CIBA-SREQ-04"),
}


@pytest.mark.requirement("CIBA-SREQ-02", "CIBA-SREQ-04", "CIBA-SREQ-05", "CIBA-SREQ-06",
                         "CIBA-SREQ-07", "CIBA-SREQ-08", "CIBA-SREQ-09", "CIBA-SREQ-10",
                         "CIBA-AERR-04", "FAPI-CIBA-07")
@pytest.mark.parametrize("case", sorted(REQUEST_OBJECT_CASES) + ["bad-iss", "expired-exp"])
def test_request_object_refused(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    fapi_poll_client,
    case,
):
    """A broken request object is refused with invalid_request. Mirrors, by case,
    fapi-ciba-id1-ensure-request-object-missing-aud-fails,
    fapi-ciba-id1-ensure-request-object-bad-aud-fails,
    fapi-ciba-id1-ensure-request-object-missing-iss-fails,
    fapi-ciba-id1-ensure-request-object-bad-iss-fails,
    fapi-ciba-id1-ensure-request-object-missing-exp-fails,
    fapi-ciba-id1-ensure-request-object-expired-exp-fails,
    fapi-ciba-id1-ensure-request-object-missing-iat-fails,
    fapi-ciba-id1-ensure-request-object-missing-nbf-fails,
    fapi-ciba-id1-ensure-request-object-nbf-is-10-minutes-in-future-fails,
    fapi-ciba-id1-ensure-request-object-missing-jti-fails,
    fapi-ciba-id1-ensure-request-object-signature-algorithm-is-none-fails,
    fapi-ciba-id1-ensure-request-object-signature-algorithm-is-bad-fails."""
    now = int(time.time())
    if case == "bad-iss":
        other = second_fapi_client(ciba_config, ciba_metadata, fapi_poll_client)
        spec, requirement = RequestObjectSpec(claims={"iss": other.client_id}), "CIBA-SREQ-06"
    elif case == "expired-exp":
        spec = RequestObjectSpec(claims={"exp": now - 60, "iat": now - 120, "nbf": now - 120})
        requirement = "CIBA-SREQ-07"
    else:
        spec, requirement = REQUEST_OBJECT_CASES[case]
    expect_signed_request_refused(ciba, send_signed(ciba, fapi_poll_client, spec), requirement)


@pytest.mark.requirement("FAPI-CIBA-07", "CIBA-AERR-04")
@pytest.mark.parametrize("case", ["exp-is-70-minutes-in-future", "nbf-is-70-minutes-in-past"])
def test_request_object_lifetime_limited(
    ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client, case
):
    """A request object living longer than 60 minutes is refused. Mirrors
    fapi-ciba-id1-ensure-request-object-exp-is-70-minutes-in-future-fails and
    fapi-ciba-id1-ensure-request-object-nbf-is-70-minutes-in-past-fails."""
    now = int(time.time())
    claims = (
        {"nbf": now, "iat": now, "exp": now + 70 * 60}
        if case.startswith("exp")
        else {"nbf": now - 70 * 60, "iat": now, "exp": now + 300}
    )
    exchange = send_signed(ciba, fapi_poll_client, RequestObjectSpec(claims=claims))
    expect_signed_request_refused(ciba, exchange, "FAPI-CIBA-07")


@pytest.mark.requirement("FAPI-CIBA-07")
def test_request_object_of_60_minutes_accepted(ciba: CibaClient, fapi_poll_client):
    """A request object with exp exactly 60 minutes after nbf is accepted (the limit is
    inclusive)."""
    now = int(time.time())
    accept_signed(ciba, fapi_poll_client, "FAPI-CIBA-07",
           spec=RequestObjectSpec(claims={"nbf": now, "iat": now, "exp": now + 3600}))


@pytest.mark.requirement("FAPI-CIBA-18", "CIBA-AERR-04")
def test_request_object_rs256_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client
):
    """mirrors fapi-ciba-id1-ensure-request-object-signature-algorithm-is-RS256-fails: a
    request object signed with RS256 (the client's own RSA key) is refused."""
    spec = RequestObjectSpec(alg="RS256", key=fapi_rsa_key(fapi_poll_client))
    exchange = send_signed(ciba, fapi_poll_client, spec)
    ciba.check(refused, exchange, requirement="FAPI-CIBA-18")
    expect_signed_request_refused(ciba, exchange, "FAPI-CIBA-18")


@pytest.mark.requirement("CIBA-SREQ-04", "CIBA-AERR-04")
def test_request_object_signed_by_other_client_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, fapi_poll_client
):
    """mirrors fapi-ciba-id1-ensure-request-object-signed-by-other-client-fails: a request
    object signed with the second client's key is refused."""
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_poll_client)
    spec = RequestObjectSpec(key=other.private_key,
                             alg=other.request_signing_alg or other.signing_alg)
    expect_signed_request_refused(ciba, send_signed(ciba, fapi_poll_client, spec), "CIBA-SREQ-04")


@pytest.mark.requirement("FAPI-CIBA-06", "CIBA-AERR-04")
def test_unsigned_request_refused(ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client):
    """mirrors fapi-ciba-id1-ensure-unsigned-backchannel-authorization-request-fails: an
    unsigned authentication request is refused (ID1; with fapi_ciba_version = "draft" it
    must be accepted instead, ambiguity A-19)."""
    params = ciba.default_params(fapi_poll_client)
    exchange = ciba.backchannel(fapi_poll_client, params, signed=False)
    if ciba_config.fapi_ciba_version == "draft":
        ciba.check(accepted, exchange, requirement="FAPI-CIBA-06")
        return
    expect_signed_request_refused(ciba, exchange, "FAPI-CIBA-06")


@pytest.mark.requirement("FAPI-CIBA-24")
def test_jwt_slightly_in_the_future_accepted(
    ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client
):
    """iat and nbf 10 s in the future (clock skew) are accepted (FAPI 2.0 SP: a warning under
    fapi_base 1.0)."""
    now = int(time.time())
    flow_spec = RequestObjectSpec(claims={"iat": now + 10, "nbf": now + 10, "exp": now + 300})
    exchange = send_signed(ciba, fapi_poll_client, flow_spec)
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-24"), accepted, exchange,
                  requirement="FAPI-CIBA-24")


@pytest.mark.requirement("FAPI-CIBA-24", "CIBA-AERR-04")
def test_jwt_far_in_the_future_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client
):
    """iat and nbf 70 s in the future are refused (more than 60 s)."""
    now = int(time.time())
    spec = RequestObjectSpec(claims={"iat": now + 70, "nbf": now + 70, "exp": now + 400})
    exchange = send_signed(ciba, fapi_poll_client, spec)
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-24"), refused, exchange,
                  requirement="FAPI-CIBA-24")


# --- hints, binding message, clients --------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-08", "CIBA-AERR-04")
def test_multiple_hints_fail(ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-multiple-hints-fails: a
    login_hint together with a login_hint_token (or an id_token_hint) is refused."""
    token = login_hint_token(ciba_config.users, "valid", client=fapi_poll_client)
    extra = {"login_hint_token": token} if token else {"id_token_hint": "e30.e30.sig"}
    exchange = send_signed(ciba, fapi_poll_client, None, **extra)
    expect_signed_request_refused(ciba, exchange, "CIBA-AUTH-08", tolerated=())


@pytest.mark.requirement("FAPI-CIBA-02", "CIBA-AERR-04")
def test_binding_message_required(ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client):
    """Without a binding message (and no other unique authorization context) the request is
    refused."""
    exchange = send_signed(ciba, fapi_poll_client, binding_message=None)
    expect_signed_request_refused(ciba, exchange, "FAPI-CIBA-02",
                   codes=("invalid_request", "invalid_binding_message"), tolerated=())


@pytest.mark.requirement("FAPI-CIBA-01", "FAPI-CIBA-03", "FAPI-CIBA-20")
@pytest.mark.parametrize("kind", ["public", "push", "shared_secret"])
def test_only_confidential_key_based_clients(ciba: CibaClient, ciba_config: ProviderConfig, kind):
    """A public client (FAPI-CIBA-01), a push client (FAPI-CIBA-03) and a client
    authenticating with a shared secret (FAPI-CIBA-20) obtain no auth_req_id."""
    if kind == "public":
        client = ciba_config.find_client(auth_method="none")
        requirement = "FAPI-CIBA-01"
    elif kind == "push":
        client = next((c for c in ciba_config.clients
                       if c.delivery_mode == "push" and c.ciba_allowed), None)
        requirement = "FAPI-CIBA-03"
    else:
        client = next((c for c in ciba_config.clients
                       if c.auth_method.startswith("client_secret") and c.ciba_allowed
                       and c.delivery_mode != "push"), None)
        requirement = "FAPI-CIBA-20"
    if client is None:
        pytest.skip(f"not covered: no {kind} client configured")
    exchange = ciba.backchannel(client, ciba.default_params(client))
    ciba.check(refused, exchange, requirement=requirement)
    if kind == "shared_secret":
        expect_backchannel_error(ciba, exchange, "invalid_client", requirement=requirement)

"""FAPI-CIBA: the token endpoint and client authentication (catalogue §11; CIBA §7.1, §10.1;
RFC 7523; RFC 8705), with mirrors of the certification suite's FAPI-CIBA modules
("mirrors fapi-ciba-id1-..."; the map: `ciba_harness.checks._fapi.CERTIFICATION_MODULES`,
shown in docs/fapi-ciba.md).

Runs only under the FAPI-CIBA profile, like test_fapi_ciba.py (its docstring describes the
variants and the clients they need). A module of the certification suite that exists only
for mTLS or only for private_key_jwt skips the other variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    ClientAuthentication,
    RequestObjectSpec,
    expect_backchannel_error,
    expect_callback,
    fapi_rsa_key,
    fapi_severity,
    second_fapi_client,
    start_signed,
    token_error_is,
    token_response_complete,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, NotificationInbox, ProviderConfig, ProviderMetadata

pytestmark = [pytest.mark.fapi, pytest.mark.usefixtures("fapi_profile")]


def mtls_variant(client):
    if client.auth_method not in {"tls_client_auth", "self_signed_tls_client_auth"}:
        pytest.skip("not applicable: an mTLS-only module (private_key_jwt variant)")


def assertion_variant(client):
    if client.auth_method != "private_key_jwt":
        pytest.skip("not applicable: a private_key_jwt-only module (mTLS variant)")


# --- token endpoint and client authentication ------------------------------------------------------


@pytest.mark.requirement("CIBA-TOKEN-04")
def test_wrong_auth_req_id_in_token_endpoint_request(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
):
    """mirrors fapi-ciba-id1-ensure-wrong-auth-req-id-in-token-endpoint-request: the second
    client presents the first client's approved auth_req_id: invalid_grant; the first client
    then gets its tokens."""
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_client)
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
    exchange = ciba.token(other, flow.auth_req_id, label="token, other client")
    ciba.check(token_error_is, exchange, {"invalid_grant"}, requirement="CIBA-TOKEN-04")
    own = ciba.token(fapi_client, flow.auth_req_id)
    flow.exchanges.append(own)
    ciba.check(token_response_complete, own, requirement="CIBA-TOKEN-04")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
def test_different_client_id_and_issuer(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, fapi_client
):
    """mirrors fapi-ciba-id1-ensure-different-client-id-and-issuer-in-backchannel-authorization-
    request: the request object is the first client's, the client_id form field names the
    second client while the TLS certificate is the first's: 401 invalid_client."""
    mtls_variant(fapi_client)
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_client)
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                signed=RequestObjectSpec(),
                                auth=ClientAuthentication(client_id=other.client_id))
    expect_backchannel_error(ciba, exchange, "invalid_client", requirement="CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
def test_wrong_client_id_in_backchannel_request(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, fapi_client
):
    """mirrors fapi-ciba-id1-ensure-wrong-client-id-in-backchannel-authorization-request: the
    second client's client_id with the first client's certificate and keys: refused
    (access_denied, invalid_request or invalid_client)."""
    mtls_variant(fapi_client)
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_client)
    spec = RequestObjectSpec(claims={"iss": other.client_id})
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client), signed=spec,
                                auth=ClientAuthentication(client_id=other.client_id))
    expect_backchannel_error(ciba, exchange, {"invalid_client", "invalid_request",
                                              "access_denied"}, requirement="CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-TOKEN-20")
def test_wrong_client_id_in_token_endpoint_request(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
):
    """mirrors fapi-ciba-id1-ensure-wrong-client-id-in-token-endpoint-request: the token
    request names the second client with the first client's certificate: invalid_client
    (400 or 401)."""
    mtls_variant(fapi_client)
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_client)
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id,
                          auth=ClientAuthentication(client_id=other.client_id))
    ciba.check(token_error_is, exchange, {"invalid_client"}, requirement="CIBA-CAUTH-10",
               statuses={400, 401})


@pytest.mark.requirement("CIBA-TOKEN-20")
def test_without_client_assertion_in_token_endpoint_request(ciba: CibaClient, fapi_client):
    """mirrors fapi-ciba-id1-ensure-without-client-assertion-in-token-endpoint-request: only
    the client_id, no client_assertion: invalid_client (invalid_request, access_denied
    tolerated)."""
    assertion_variant(fapi_client)
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id, auth=ClientAuthentication(method="none"))
    ciba.check(token_error_is, exchange, {"invalid_client", "invalid_request", "access_denied"},
               requirement="CIBA-TOKEN-20", statuses={400, 401})


@pytest.mark.requirement("CIBA-CAUTH-01", "CIBA-AERR-12")
def test_without_client_assertion_in_backchannel_request(ciba: CibaClient, fapi_client):
    """mirrors fapi-ciba-id1-ensure-without-client-assertion-in-backchannel-authorization-
    request: only the client_id, no client_assertion: refused (invalid_client,
    invalid_request or access_denied)."""
    assertion_variant(fapi_client)
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                signed=RequestObjectSpec(), auth=ClientAuthentication(method="none"))
    expect_backchannel_error(ciba, exchange, {"invalid_client", "invalid_request",
                                              "access_denied"}, requirement="CIBA-CAUTH-01")


@pytest.mark.requirement("FAPI-CIBA-18", "CIBA-AERR-12")
@pytest.mark.parametrize("endpoint", ["backchannel", "token"])
def test_client_assertion_rs256_refused(
    ciba: CibaClient,
    ciba_inbox: NotificationInbox,
    ciba_config: ProviderConfig,
    fapi_client,
    endpoint,
):
    """A client assertion signed with RS256 is refused with invalid_client. Mirrors
    fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-backchannel-authorization-
    request-is-RS256-fails and fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-
    token-endpoint-request-is-RS256-fails."""
    assertion_variant(fapi_client)
    auth = ClientAuthentication(assertion_alg="RS256", assertion_key=fapi_rsa_key(fapi_client))
    if endpoint == "backchannel":
        exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                    signed=RequestObjectSpec(), auth=auth)
        expect_backchannel_error(ciba, exchange, "invalid_client", requirement="FAPI-CIBA-18")
        return
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id, auth=auth)
    ciba.check(token_error_is, exchange, {"invalid_client"}, requirement="FAPI-CIBA-18",
               statuses={400, 401})


@pytest.mark.requirement("FAPI-CIBA-23", "CIBA-CAUTH-04")
@pytest.mark.parametrize("form", ["string", "array"])
def test_client_assertion_with_issuer_audience_succeeds(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
    form,
):
    """mirrors fapi-ciba-id1-ensure-client-assertion-with-iss-aud-to-token-endpoint-succeeds:
    a client assertion whose aud is the issuer (a string, or an array holding it) is
    accepted at the token endpoint."""
    assertion_variant(fapi_client)
    audience = ciba_metadata.issuer
    auth = ClientAuthentication(
        audience=audience if form == "string" else None,
        assertion_claims={} if form == "string" else {"aud": [audience]},
    )
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
        exchange = ciba.token(fapi_client, flow.auth_req_id, auth=auth)
    else:
        ciba.poll(flow, auth=auth)
        exchange = flow.exchanges[-1]
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-23"), token_response_complete, exchange,
                  requirement="FAPI-CIBA-23")


@pytest.mark.requirement("FAPI-CIBA-22")
def test_password_grant_refused(ciba: CibaClient, ciba_config: ProviderConfig, fapi_poll_client):
    """The resource-owner password grant yields no tokens (FAPI 2.0 SP)."""
    exchange = ciba.token(fapi_poll_client, None, grant_type="password",
                          extra=(("username", ciba_config.users.login_hint),
                                 ("password", "harness-password")))
    response = exchange.response
    sev = fapi_severity(ciba_config, "FAPI-CIBA-22")
    if response is None or 200 <= response.status < 300:
        ciba.check_at(sev, token_error_is, exchange, {"unsupported_grant_type",
                                                      "unauthorized_client", "invalid_grant",
                                                      "invalid_request"},
                      requirement="FAPI-CIBA-22")

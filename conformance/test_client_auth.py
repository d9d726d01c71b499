"""Client authentication at the backchannel endpoint (CIBA §7.1, §7.2 step 1, §13; OIDC Core §9;
RFC 6749 §2.3, §5.2; RFC 7523 §3; RFC 8705 §2).

Every refusal is judged with `expect_backchannel_error`: the code against the CAUTH row, the
status of `invalid_client` against CIBA-AERR-12 (401; 400 without HTTP Basic recorded as the
provider's choice, RFC 6749 §5.2 and A-01).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    ClientAuthentication,
    Severity,
    build_backchannel_request,
    client_with_method,
    describe_refusal,
    expect_backchannel_error,
    record_choice,
    refused,
    require_client,
    retire,
    retire_if_accepted,
    send_and_accept,
    send_announced,
    sign_jwt,
    status_is,
    tampered_signature,
    www_authenticate_present,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

ASSERTION_METHODS = ("client_secret_jwt", "private_key_jwt")


def refuse_client(
    ciba: CibaClient, exchange, requirement: str, codes=("invalid_client",)
) -> str | None:
    return expect_backchannel_error(ciba, exchange, set(codes), requirement=requirement)


def assertion_for(client, audience: str, *, key=None, alg=None, **claims) -> str:
    """A client assertion as RFC 7523 §3 wants it, with claims overridden (None removes)."""
    now = int(time.time())
    body = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": now,
        "exp": now + 60,
    }
    for name, value in claims.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    if client.auth_method == "client_secret_jwt":
        return sign_jwt(body, key or (client.client_secret or "").encode(), alg or "HS256")
    return sign_jwt(body, key or client.private_key, alg or client.signing_alg or "RS256")


# --- no or wrong credentials ------------------------------------------------------------------


@pytest.mark.requirement("CIBA-CAUTH-01", "CIBA-AERR-12")
@pytest.mark.parametrize("what", ["nothing", "client_id_only"])
def test_no_client_authentication(ciba: CibaClient, poll_client, what):
    """No client authentication at all: invalid_client (401; 400 is the provider's choice,
    A-01)."""
    auth = ClientAuthentication(method="omit" if what == "nothing" else "none")
    exchange = ciba.backchannel(poll_client, ciba.default_params(poll_client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-01")


@pytest.mark.requirement("CIBA-CAUTH-02", "CIBA-AERR-12")
def test_wrong_secret_basic(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """Wrong secret via HTTP Basic: 401 invalid_client with WWW-Authenticate."""
    client = client_with_method(ciba_config, ciba_metadata, "client_secret_basic")
    auth = ClientAuthentication(secret="wrong-" + secrets.token_urlsafe(12))
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-02")
    ciba.check(status_is, exchange, {401}, requirement="CIBA-CAUTH-02")
    ciba.check(www_authenticate_present, exchange, requirement="CIBA-CAUTH-02")


@pytest.mark.requirement("CIBA-CAUTH-03", "CIBA-AERR-12")
@pytest.mark.parametrize(
    "case", ["post_wrong_secret", "unknown_client_basic", "unknown_client_post"]
)
def test_wrong_secret_post_or_unknown_client(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, case
):
    """Wrong client_secret_post secret, or an unknown client_id: invalid_client."""
    method = "client_secret_basic" if case == "unknown_client_basic" else "client_secret_post"
    client = client_with_method(ciba_config, ciba_metadata, method)
    if case == "post_wrong_secret":
        auth = ClientAuthentication(secret="wrong-" + secrets.token_urlsafe(12))
    else:
        auth = ClientAuthentication(
            client_id="harness-unknown-" + secrets.token_hex(6), secret=client.client_secret
        )
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-03")


# --- client assertions (RFC 7523) -------------------------------------------------------------


@pytest.mark.requirement("CIBA-CAUTH-04")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
@pytest.mark.parametrize("audience", ["issuer", "token_endpoint", "backchannel_endpoint"])
def test_assertion_audiences_accepted(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method, audience
):
    """A client assertion with aud = issuer, token endpoint or backchannel endpoint URL is
    accepted (three positives per method; A-18)."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    aud = {
        "issuer": ciba_metadata.issuer,
        "token_endpoint": ciba_metadata.token_endpoint,
        "backchannel_endpoint": ciba_metadata.backchannel_authentication_endpoint,
    }[audience]
    auth = ClientAuthentication(audience=aud)
    flow = send_and_accept(
        ciba, client, ciba.default_params(client), requirement="CIBA-CAUTH-04", auth=auth
    )
    retire(ciba, flow)


@pytest.mark.requirement("CIBA-CAUTH-05", "CIBA-AERR-12")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
def test_assertion_wrong_audience(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """An assertion whose aud does not identify the provider: invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    auth = ClientAuthentication(audience="https://other-op.example.org/")
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-05")


@pytest.mark.requirement("CIBA-CAUTH-06", "CIBA-AERR-12")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
@pytest.mark.parametrize("mismatch", ["iss", "sub", "iss_and_sub"])
def test_assertion_issuer_subject_mismatch(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method, mismatch
):
    """Assertion iss/sub not the client_id (or not matching the client_id form field):
    invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    other = ciba_config.find_client(role="second") or ciba_config.find_client(
        exclude=(client.name,)
    )
    other_id = other.client_id if other is not None else "harness-other-client"
    claims = {name: other_id for name in ("iss", "sub") if name in mismatch}
    auth = ClientAuthentication(assertion_claims=claims)
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-06")


@pytest.mark.requirement("CIBA-CAUTH-07", "CIBA-AERR-12")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
def test_assertion_expired(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """An expired assertion: invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    now = int(time.time())
    auth = ClientAuthentication(assertion_claims={"iat": now - 600, "exp": now - 300})
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-07")


@pytest.mark.requirement("CIBA-CAUTH-08", "CIBA-AERR-12")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
@pytest.mark.parametrize("how", ["broken_signature", "other_key"])
def test_assertion_bad_signature(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method, how
):
    """An assertion with a broken signature, or signed with a key not registered for the
    client (another client's key or secret): invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    audience = ciba_metadata.issuer
    if how == "broken_signature":
        auth = ClientAuthentication(assertion=tampered_signature(assertion_for(client, audience)))
    elif method == "client_secret_jwt":
        auth = ClientAuthentication(
            assertion_key=b"not-the-client-secret-" + secrets.token_bytes(16)
        )
    else:
        other = ciba_config.find_client(role="second")
        if other is None or other.private_key is None:
            other = next(
                (
                    c
                    for c in ciba_config.clients
                    if c.private_key is not None and c.private_key_path != client.private_key_path
                ),
                None,
            )
        if other is None:
            pytest.skip('not covered: no second client key configured (roles = ["second"])')
        auth = ClientAuthentication(
            assertion_key=other.private_key, assertion_alg=other.signing_alg or "RS256"
        )
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-08")


@pytest.mark.requirement("CIBA-CAUTH-09")
@pytest.mark.parametrize("method", ASSERTION_METHODS)
def test_assertion_replay_recorded(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """The same assertion (same jti) twice: OIDC Core §9 says such tokens MUST only be used
    once, RFC 7523 §3 leaves replay detection to the provider: accepting the replay is a
    warning (a replayed client assertion, security-relevant latitude), refusing it passes."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    auth = ClientAuthentication(assertion=assertion_for(client, ciba_metadata.issuer))
    flow = send_and_accept(
        ciba, client, ciba.default_params(client), requirement="CIBA-CAUTH-09", auth=auth
    )
    retire(ciba, flow)
    params = ciba.default_params(client)
    again = send_announced(ciba, client, params, auth=auth)
    response = again.response
    if response is not None and 200 <= response.status < 300:
        record_choice("assertion_replay", "accepted", f"{method}: same jti accepted twice")
        ciba.check_at(Severity.WARNING, refused, again, requirement="CIBA-CAUTH-09")
        retire_if_accepted(ciba, client, params, again)
        return
    record_choice("assertion_replay", "refused", f"{method}: {describe_refusal(again)}")
    expect_backchannel_error(ciba, again, "invalid_client", requirement="CIBA-CAUTH-09")


# --- mTLS, public clients, methods ------------------------------------------------------------


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
@pytest.mark.parametrize("method", ["tls_client_auth", "self_signed_tls_client_auth"])
def test_mtls_without_certificate(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """An mTLS client presenting no client certificate: invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    request = build_backchannel_request(client, ciba_metadata, ciba.default_params(client))
    exchange = ciba.send(request, label="backchannel without client certificate")
    refuse_client(ciba, exchange, "CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-11")
def test_public_client_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """A public client (auth none) gets no auth_req_id: 401 invalid_client or 400
    unauthorized_client."""
    client = require_client(
        ciba_config, ciba_metadata, auth_method="none", feature="a public client"
    )
    exchange = ciba.backchannel(client, ciba.default_params(client))
    expect_backchannel_error(
        ciba, exchange, {"invalid_client", "unauthorized_client"}, requirement="CIBA-CAUTH-11"
    )


WRONG_METHODS = [
    ("client_secret_basic", "client_secret_post"),
    ("client_secret_post", "client_secret_basic"),
    ("client_secret_jwt", "client_secret_basic"),
    ("private_key_jwt", "client_secret_jwt"),
]


@pytest.mark.requirement("CIBA-CAUTH-12", "CIBA-REG-07", "CIBA-AERR-12")
@pytest.mark.parametrize(("registered", "used"), WRONG_METHODS, ids=lambda m: m)
def test_other_method_than_registered(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, registered, used
):
    """Authenticating with a method other than the registered one (same credentials where the
    client has a secret): invalid_client."""
    client = client_with_method(ciba_config, ciba_metadata, registered)
    secret = client.client_secret or "harness-" + secrets.token_urlsafe(24)
    auth = ClientAuthentication(
        method=used, secret=secret, assertion_alg="HS256" if used == "client_secret_jwt" else None
    )
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-12")


@pytest.mark.requirement("CIBA-CAUTH-13")
@pytest.mark.parametrize("method", ["client_secret_basic", "private_key_jwt"])
def test_two_authentication_methods(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """Two mechanisms in one request (HTTP Basic plus form credentials or an assertion):
    400 invalid_request (invalid_client accepted)."""
    client = client_with_method(ciba_config, ciba_metadata, method)
    if method == "client_secret_basic":
        auth = ClientAuthentication(method="client_secret_post", also_basic=True)
    else:
        auth = ClientAuthentication(also_basic=True)
    exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
    refuse_client(ciba, exchange, "CIBA-CAUTH-13", codes=("invalid_request", "invalid_client"))

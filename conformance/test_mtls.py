"""Mutual TLS: client authentication and certificate-bound access tokens (RFC 8705 §2, §3, §5;
CIBA-CAUTH-10, CIBA-DISC-08, FAPI-CIBA-21).

Needs a provider served over https and clients configured with `certificate` /
`certificate_key` (`auth_method = "tls_client_auth"` or `"self_signed_tls_client_auth"`).
Requests of such clients go to the `mtls_endpoint_aliases` when the provider publishes them.
A refusal may come from the application (`invalid_client`) or from the TLS layer (the
handshake fails, e.g. a provider that requires client certificates there): both refuse.
Against the plain-http default provider every test is skipped with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    Exchange,
    Severity,
    certificate_thumbprint,
    client_with_method,
    cnf_matches,
    expect_backchannel_error,
    impostor_certificate,
    refused,
    send_and_accept,
    status_is,
    token_error_is,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

MTLS_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")


@pytest.fixture(scope="module")
def https_provider(ciba_metadata: ProviderMetadata):
    if not ciba_metadata.issuer.startswith("https://"):
        pytest.skip(
            "not applicable: mutual TLS needs a provider served over https (the default "
            "embedded provider is plain http on loopback; run with --ciba-config "
            "fixtures/profiles/reference-tls.toml)"
        )
    return ciba_metadata


def mtls_client(config, metadata, method: str, mode: str = "poll"):
    client = client_with_method(config, metadata, method, mode=mode)
    if client.certificate_path is None:
        pytest.skip(f"not covered: client {client.name} has no certificate configured")
    return client


def other_certificate(config, client):
    """A certificate of another configured client (registered there, not for `client`)."""
    for other in config.clients:
        if (
            other.name != client.name
            and other.certificate_path is not None
            and other.certificate_key_path is not None
            and other.certificate_path != client.certificate_path
        ):
            return (str(other.certificate_path), str(other.certificate_key_path))
    pytest.skip("not covered: no second client certificate configured")


def refused_at_tls(ciba: CibaClient, exchange: Exchange, requirement: str) -> bool:
    """No HTTP answer: the TLS layer refused (recorded); the caller judges answers."""
    if exchange.response is not None:
        return False
    ciba.check_at(Severity.INFO, refused, exchange, requirement=requirement)
    return True


def expect_client_refused(
    ciba: CibaClient, exchange: Exchange, requirement: str = "CIBA-CAUTH-10"
) -> None:
    if not refused_at_tls(ciba, exchange, requirement):
        expect_backchannel_error(ciba, exchange, "invalid_client", requirement=requirement)


def expect_token_refused(
    ciba: CibaClient, exchange: Exchange, requirement: str = "CIBA-CAUTH-10"
) -> None:
    if not refused_at_tls(ciba, exchange, requirement):
        ciba.check(token_error_is, exchange, {"invalid_client"}, requirement=requirement,
                   statuses={400, 401})


# --- client authentication (RFC 8705 §2) --------------------------------------------------------


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-DISC-08")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_mtls_client_authenticates(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method
):
    """A client presenting its registered certificate (at the mTLS alias of the backchannel
    endpoint when published) is authenticated: the request is accepted."""
    client = mtls_client(ciba_config, https_provider, method)
    send_and_accept(ciba, client, ciba.default_params(client), requirement="CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_no_certificate_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method
):
    """The same request without a client certificate: invalid_client (or a refused
    handshake)."""
    client = mtls_client(ciba_config, https_provider, method)
    exchange = ciba.backchannel(client, ciba.default_params(client), certificate=None)
    expect_client_refused(ciba, exchange)


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_other_clients_certificate_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method
):
    """The client's client_id with another client's (valid, trusted) certificate:
    invalid_client."""
    client = mtls_client(ciba_config, https_provider, method)
    exchange = ciba.backchannel(
        client, ciba.default_params(client), certificate=other_certificate(ciba_config, client)
    )
    expect_client_refused(ciba, exchange)


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_impostor_certificate_refused(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method, tmp_path
):
    """A self-signed certificate with the client's subject DN, made by whoever knows the DN
    (not issued by the trusted CA, not the registered certificate): invalid_client (or a
    refused handshake)."""
    client = mtls_client(ciba_config, https_provider, method)
    impostor = impostor_certificate(client.certificate_path, tmp_path)
    exchange = ciba.backchannel(client, ciba.default_params(client), certificate=impostor)
    expect_client_refused(ciba, exchange)


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-TOKEN-20")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_token_endpoint_requires_the_certificate(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method
):
    """At the token endpoint too: no certificate, invalid_client; the registered one, tokens
    (the refused attempt changed nothing)."""
    client = mtls_client(ciba_config, https_provider, method)
    flow = ciba.start(client)
    ciba.approve(flow)
    exchange = ciba.token(client, flow.auth_req_id, certificate=None)
    expect_token_refused(ciba, exchange, requirement="CIBA-CAUTH-10")
    ciba.poll(flow)
    ciba.expect_tokens(flow)


# --- certificate-bound access tokens (RFC 8705 §3) ----------------------------------------------


def bound_tokens_expected(config, metadata) -> None:
    if config.fapi:
        return
    if metadata.raw.get("tls_client_certificate_bound_access_tokens") is not True:
        pytest.skip(
            "not applicable: the provider does not advertise "
            "tls_client_certificate_bound_access_tokens (and the profile is not fapi-ciba)"
        )


@pytest.mark.requirement("FAPI-CIBA-21")
@pytest.mark.parametrize("method", MTLS_METHODS)
def test_access_token_bound_to_the_certificate(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider, method
):
    """Tokens obtained with a client certificate are bound to it: userinfo answers with the
    certificate, refuses (401 or a refused handshake) without it and with another client's
    certificate; introspection, when offered, shows cnf x5t#S256 of the certificate."""
    bound_tokens_expected(ciba_config, https_provider)
    if not https_provider.userinfo_endpoint:
        pytest.skip("not covered: the provider has no userinfo_endpoint (a protected resource)")
    client = mtls_client(ciba_config, https_provider, method)
    flow = ciba.start(client)
    ciba.approve(flow)
    ciba.poll(flow)
    tokens = ciba.expect_tokens(flow)
    access_token = str(tokens.get("access_token", ""))
    with_cert = ciba.userinfo(client, access_token)
    ciba.check(status_is, with_cert, {200}, requirement="FAPI-CIBA-21")
    for label, certificate in (
        ("no certificate", None),
        ("another certificate", other_certificate(ciba_config, client)),
    ):
        exchange = ciba.userinfo(client, access_token, certificate=certificate,
                                 label=f"userinfo, {label}")
        if exchange.response is not None:
            ciba.check(status_is, exchange, {401}, requirement="FAPI-CIBA-21")
    if https_provider.raw.get("introspection_endpoint"):
        exchange = ciba.introspect(client, access_token)
        body = exchange.response.json_object() if exchange.response else None
        ciba.check(cnf_matches, body or {}, certificate_thumbprint(client.certificate_path),
                   exchange=exchange)

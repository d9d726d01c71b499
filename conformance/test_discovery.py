"""Discovery metadata (CIBA §4; OIDC Discovery §4.3; RFC 8705 §5).

The metadata checks fetch the discovery document themselves, so that they judge a broken
document instead of failing with the session's discovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ciba_harness import (
    AUTH_METHODS,
    Severity,
    backchannel_endpoint_https,
    ciba_grant_advertised,
    delivery_modes_valid,
    discovery_request,
    fail,
    issuer_matches,
    metadata_document,
    mtls_alias_valid,
    request_signing_algs_asymmetric,
    request_signing_algs_listed,
    require_client,
    retire,
    send_and_accept,
    user_code_parameter_boolean,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata


@pytest.fixture
def discovery(ciba: CibaClient, ciba_config: ProviderConfig) -> tuple[Any, dict[str, Any]]:
    """The exchange and the JSON document of GET {issuer}/.well-known/openid-configuration."""
    exchange = ciba.send(
        discovery_request(ciba_config.issuer, ciba_config.discovery_url), label="discovery"
    )
    document = metadata_document(exchange)
    if document is None:
        raise fail(
            "CIBA-DISC-01",
            "Discovery does not answer 200 with a JSON object",
            expected="200 application/json object",
            actual=exchange.response.status if exchange.response else exchange.error,
            exchanges=[exchange],
        )
    return exchange, document


@pytest.mark.requirement("CIBA-DISC-01")
def test_delivery_modes(ciba: CibaClient, discovery):
    """backchannel_token_delivery_modes_supported is a non-empty array of poll, ping, push."""
    exchange, document = discovery
    ciba.check(delivery_modes_valid, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-02")
def test_backchannel_endpoint(ciba: CibaClient, discovery):
    """backchannel_authentication_endpoint is an absolute https URL (http only on loopback)."""
    exchange, document = discovery
    ciba.check(backchannel_endpoint_https, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-03")
def test_request_signing_algs_listed(ciba: CibaClient, discovery):
    """The request-signing alg list, when present, is an array of JWS alg names."""
    exchange, document = discovery
    ciba.check(request_signing_algs_listed, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-04")
def test_request_signing_algs_asymmetric(ciba: CibaClient, discovery):
    """The request-signing alg list contains neither none nor HS* algorithms."""
    exchange, document = discovery
    if "backchannel_authentication_request_signing_alg_values_supported" not in document:
        pytest.skip("not applicable: the provider advertises no request-signing algs")
    ciba.check(request_signing_algs_asymmetric, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-05")
def test_user_code_parameter_supported_is_boolean(ciba: CibaClient, discovery):
    """backchannel_user_code_parameter_supported, when present, is a JSON boolean."""
    exchange, document = discovery
    ciba.check(user_code_parameter_boolean, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-06")
def test_ciba_grant_advertised(ciba: CibaClient, discovery):
    """With poll or ping advertised, grant_types_supported lists the CIBA grant (warning;
    failure with --ciba-strict, as the conformance suite fails it; ambiguity A-21)."""
    exchange, document = discovery
    ciba.check_at(Severity.WARNING, ciba_grant_advertised, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-08")
def test_mtls_alias(ciba: CibaClient, discovery):
    """An mtls_endpoint_aliases entry for the backchannel endpoint is an https URL."""
    exchange, document = discovery
    aliases = document.get("mtls_endpoint_aliases")
    if not isinstance(aliases, dict) or "backchannel_authentication_endpoint" not in aliases:
        pytest.skip("not applicable: no mtls_endpoint_aliases for the backchannel endpoint")
    ciba.check(mtls_alias_valid, document, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-09")
def test_issuer_matches_configuration(ciba: CibaClient, ciba_config: ProviderConfig, discovery):
    """The metadata issuer equals the configured issuer."""
    exchange, document = discovery
    ciba.check(issuer_matches, document, ciba_config.issuer, exchange=exchange)


@pytest.mark.requirement("CIBA-DISC-07")
@pytest.mark.parametrize("method", [m for m in AUTH_METHODS if m != "none"])
def test_advertised_auth_method_works_at_backchannel(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, method
):
    """Each advertised token-endpoint auth method authenticates at the backchannel endpoint."""
    if method not in ciba_metadata.auth_methods:
        pytest.skip(f"not applicable: {method} is not in token_endpoint_auth_methods_supported")
    client = require_client(ciba_config, ciba_metadata, auth_method=method, feature=method)
    flow = send_and_accept(ciba, client, ciba.default_params(client), requirement="CIBA-DISC-07")
    retire(ciba, flow)

"""FAPI-CIBA: checks, client selection, and the map to the OpenID certification suite.

The certification suite tests CIBA only through its FAPI-CIBA plan (`fapi-ciba-id1-test-plan`,
modules under `net.openid.conformance.fapiciba`). `CERTIFICATION_MODULES` lists the plan's
provider modules of the plain FAPI profile (the Open Banking Brasil and ConnectID modules are
out of scope) with the requirement IDs of this catalogue they check and the harness test that
mirrors each of them (conformance/test_fapi_ciba*.py; each docstring says "mirrors <module>").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ciba_harness.checks._registry import check
from ciba_harness.core._errors import InvalidMember, MissingMember, Severity, UnexpectedSuccess
from ciba_harness.core._http import Exchange
from ciba_harness.core._requirements import catalogue
from ciba_harness.core._tls import TlsProbe

if TYPE_CHECKING:
    from ciba_harness.core._config import ClientConfig, ProviderConfig

__all__ = [
    "CERTIFICATION_MODULES",
    "FAPI_ALGS",
    "CertificationModule",
    "certification_map_markdown",
    "fapi_clients",
    "fapi_severity",
]

#: FAPI-CIBA-18: the JWS algorithms
FAPI_ALGS = frozenset({"PS256", "ES256"})
FAPI_AUTH_METHODS = frozenset({"private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"})
MTLS_METHODS = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})
MIN_TOKEN_BITS = 128  # FAPI-CIBA-26


def fapi_severity(config: ProviderConfig, requirement: str) -> Severity:
    """The severity a FAPI-CIBA row is judged with: rows of the other FAPI base profile
    (column "Profile": F1 rows under fapi_base 2.0, F2 rows under 1.0) and SHOULD rows are
    warnings; the rest failures."""
    entry = catalogue().get(requirement)
    if entry is None:
        return Severity.FAILURE
    if entry.level.upper().startswith(("SHOULD", "MAY")):
        return Severity.WARNING
    profile = entry.profile.strip().upper()
    if (profile == "F1" and config.fapi_base != "1.0") or (
        profile == "F2" and config.fapi_base != "2.0"
    ):
        return Severity.WARNING
    return Severity.FAILURE


def fapi_clients(
    config: ProviderConfig, *, mode: str, auth: str, exclude: Collection[str] = ()
) -> list[ClientConfig]:
    """Clients fit for a FAPI-CIBA flow: confidential with private_key_jwt (PS256 / ES256) or
    mTLS (`auth` = "private_key_jwt" or "mtls"), able to sign request objects, holding a
    client certificate (certificate-bound tokens), in delivery `mode`."""
    found = []
    for client in config.clients:
        if client.name in exclude or not client.ciba_allowed or client.delivery_mode != mode:
            continue
        if auth == "mtls" and client.auth_method not in MTLS_METHODS:
            continue
        if auth == "private_key_jwt" and (
            client.auth_method != "private_key_jwt" or client.signing_alg not in FAPI_ALGS
        ):
            continue
        if not client.can_sign or client.certificate_path is None:
            continue
        found.append(client)
    return found


# --- checks ----------------------------------------------------------------------------------


def _listed(document: Mapping[str, Any], name: str) -> list[str] | None:
    value = document.get(name)
    if not isinstance(value, list):
        return None
    return [v for v in value if isinstance(v, str)]


@check("FAPI-CIBA-03")
def push_not_advertised(
    document: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-03",
    exchange: Exchange | None = None,
) -> None:
    """push is absent from backchannel_token_delivery_modes_supported.

    FAPI-CIBA (authorization server list, ID1 5.2.2-3): push mode shall not be supported."""
    modes = _listed(document, "backchannel_token_delivery_modes_supported") or []
    if "push" in modes:
        raise InvalidMember(
            requirement=requirement,
            title="FAPI-CIBA provider advertises push mode",
            expected="poll (and ping) only",
            actual=repr(modes),
            exchanges=[exchange] if exchange else [],
        )


@check("FAPI-CIBA-04")
def poll_advertised(
    document: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-04",
    exchange: Exchange | None = None,
) -> None:
    """poll is listed in backchannel_token_delivery_modes_supported.

    FAPI-CIBA (authorization server list, ID1 5.2.2-4): poll mode shall be supported."""
    modes = _listed(document, "backchannel_token_delivery_modes_supported") or []
    if "poll" not in modes:
        raise MissingMember(
            requirement=requirement,
            title="FAPI-CIBA provider does not advertise poll mode",
            expected="poll in backchannel_token_delivery_modes_supported",
            actual=repr(modes),
            exchanges=[exchange] if exchange else [],
        )


@check("FAPI-CIBA-18")
def metadata_algs_fapi(
    document: Mapping[str, Any], name: str, *, requirement: str = "FAPI-CIBA-18",
    exchange: Exchange | None = None, must_list: bool = False,
) -> None:
    """A metadata alg list holds PS256 / ES256 only (never none, HS*, RS*).

    FAPI-CIBA algorithm considerations: JWS shall use PS256 or ES256; none never."""
    algs = _listed(document, name)
    if algs is None:
        if must_list:
            raise MissingMember(
                requirement=requirement, title=f"{name} missing from the metadata",
                expected="[PS256] or [ES256]", exchanges=[exchange] if exchange else [],
            )
        return
    other = [a for a in algs if a not in FAPI_ALGS]
    if other or (must_list and not algs):
        raise InvalidMember(
            requirement=requirement,
            title=f"{name} lists algorithms FAPI-CIBA forbids",
            expected="PS256 and/or ES256 only",
            actual=repr(algs),
            exchanges=[exchange] if exchange else [],
        )


@check("FAPI-CIBA-20")
def fapi_auth_method_advertised(
    document: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-20",
    exchange: Exchange | None = None,
) -> None:
    """token_endpoint_auth_methods_supported offers private_key_jwt or an mTLS method.

    FAPI 1.0 Part 2 §5.2.2 (FAPI-CIBA-20): only tls_client_auth, self_signed_tls_client_auth
    or private_key_jwt."""
    methods = _listed(document, "token_endpoint_auth_methods_supported") or []
    if not set(methods) & FAPI_AUTH_METHODS:
        raise MissingMember(
            requirement=requirement,
            title="No FAPI client authentication method advertised",
            expected="private_key_jwt, tls_client_auth or self_signed_tls_client_auth",
            actual=repr(methods),
            exchanges=[exchange] if exchange else [],
        )


@check("FAPI-CIBA-21")
def bound_tokens_advertised(
    document: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-21",
    exchange: Exchange | None = None,
) -> None:
    """tls_client_certificate_bound_access_tokens is true (RFC 8705 §3.3)."""
    if document.get("tls_client_certificate_bound_access_tokens") is not True:
        raise InvalidMember(
            requirement=requirement,
            title="The provider does not advertise certificate-bound access tokens",
            expected="tls_client_certificate_bound_access_tokens: true",
            actual=repr(document.get("tls_client_certificate_bound_access_tokens")),
            exchanges=[exchange] if exchange else [],
        )


@check("FAPI-CIBA-19")
def no_rsa1_5(
    document: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-19",
    exchange: Exchange | None = None,
) -> None:
    """No *_encryption_alg_values_supported list offers RSA1_5.

    FAPI-CIBA encryption considerations: RSA1_5 shall not be used."""
    offending = [name for name, value in document.items()
                 if name.endswith("encryption_alg_values_supported")
                 and isinstance(value, list) and "RSA1_5" in value]
    if offending:
        raise InvalidMember(
            requirement=requirement,
            title="RSA1_5 key encryption is advertised",
            expected="no RSA1_5",
            actual=", ".join(offending),
            exchanges=[exchange] if exchange else [],
        )


@check(title="An optional metadata member is a JSON array of strings")
def string_array_if_present(
    document: Mapping[str, Any], name: str, *, requirement: str,
    exchange: Exchange | None = None,
) -> None:
    """The member, when present, is a JSON array of strings.

    Generic: FAPI-CIBA registration metadata (FAPI-CIBA-14/15) defines such arrays."""
    value = document.get(name)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMember(
            requirement=requirement,
            title=f"{name} is not a JSON array of strings",
            expected="array of strings",
            actual=repr(value)[:200],
            exchanges=[exchange] if exchange else [],
        )


@check(title="A registered metadata member is echoed by the registration response")
def member_echoed(
    document: Mapping[str, Any], name: str, value: Any, *, requirement: str,
    exchange: Exchange | None = None,
) -> None:
    """The registration response echoes the registered value.

    Generic: RFC 7591 §3.2.1: the response contains all registered metadata."""
    if document.get(name) != value:
        raise InvalidMember(
            requirement=requirement,
            title=f"The registration response does not echo {name}",
            expected=repr(value),
            actual=repr(document.get(name)),
            exchanges=[exchange] if exchange else [],
        )


def shannon_bits(text: str) -> float:
    counts = Counter(text)
    total = len(text)
    return -sum(c / total * math.log2(c / total) for c in counts.values()) * total


@check("FAPI-CIBA-26")
def token_entropy(
    tokens: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-26",
    exchange: Exchange | None = None,
) -> None:
    """access_token / refresh_token carry >= 128 bits (length and Shannon estimate).

    FAPI 1.0 Part 1 §5.2.2 (FAPI-CIBA-26): tokens shall have at least 128 bits of entropy."""
    for name in ("access_token", "refresh_token"):
        value = tokens.get(name)
        if not isinstance(value, str):
            continue
        bits = shannon_bits(value)
        if len(value) < 16 or bits < MIN_TOKEN_BITS:
            raise InvalidMember(
                requirement=requirement,
                title=f"{name} looks guessable",
                expected=f">= {MIN_TOKEN_BITS} bits of entropy (>= 16 characters)",
                actual=f"{len(value)} characters, about {bits:.0f} bits",
                exchanges=[exchange] if exchange else [],
                secrets=[value],
            )


@check("FAPI-CIBA-25")
def refresh_not_rotated(
    original: str, response: Mapping[str, Any], *, requirement: str = "FAPI-CIBA-25",
    exchange: Exchange | None = None,
) -> None:
    """A refresh grant returns no new refresh token (or the same one).

    FAPI 2.0 Security Profile §5.3.2.1 (FAPI-CIBA-25): no refresh-token rotation except in
    extraordinary circumstances."""
    new = response.get("refresh_token")
    if new is not None and new != original:
        raise InvalidMember(
            requirement=requirement,
            title="The refresh grant rotates the refresh token",
            expected="no refresh_token, or the same one",
            actual="a new refresh_token",
            exchanges=[exchange] if exchange else [],
            secrets=[original, str(new)],
        )


@check("FAPI-CIBA-21")
def cnf_matches(
    introspection: Mapping[str, Any], thumbprint: str, *, requirement: str = "FAPI-CIBA-21",
    exchange: Exchange | None = None,
) -> None:
    """Introspection shows cnf.x5t#S256 = the thumbprint of the client's certificate.

    RFC 8705 §3.1 (FAPI-CIBA-21): a certificate-bound token names the certificate's SHA-256
    thumbprint."""
    cnf = introspection.get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if value != thumbprint:
        raise InvalidMember(
            requirement=requirement,
            title="The access token is not bound to the client certificate (cnf x5t#S256)",
            expected=f'cnf {{"x5t#S256": "{thumbprint}"}}',
            actual=repr(cnf),
            exchanges=[exchange] if exchange else [],
        )


@check(title="The TLS handshake is refused")
def handshake_refused(probe: TlsProbe, *, requirement: str) -> None:
    """The offered protocol version or cipher suite is refused.

    Generic: FAPI-CIBA TLS considerations (FAPI-CIBA-16/17): TLS below 1.2 and other suites
    shall not be accepted."""
    if probe.established:
        raise UnexpectedSuccess(
            requirement=requirement,
            title=f"{probe.host}:{probe.port} accepts {probe.offered}",
            expected="handshake refused",
            actual=f"{probe.version} with {probe.cipher}",
        )


@check(title="A TLS 1.2+ handshake succeeds with a verified certificate")
def handshake_established(probe: TlsProbe, *, requirement: str) -> None:
    """A verified TLS 1.2+ handshake succeeds.

    Generic: FAPI-CIBA TLS considerations (FAPI-CIBA-16): TLS 1.2 or later is required."""
    if not probe.established or probe.version not in {"TLSv1.2", "TLSv1.3"}:
        raise InvalidMember(
            requirement=requirement,
            title=f"No verified TLS 1.2+ handshake with {probe.host}:{probe.port}",
            expected="TLS 1.2 or 1.3, certificate valid for the host",
            actual=probe.error or f"{probe.version} with {probe.cipher}",
        )


# --- the certification suite's FAPI-CIBA plan --------------------------------------------------


@dataclass(frozen=True)
class CertificationModule:
    name: str  # testName of the module
    requirements: tuple[str, ...]
    test: str  # test function(s) in conformance/test_fapi_ciba*.py, comma-separated
    variants: str = "poll, ping / private_key_jwt, mtls"


def _m(name: str, test: str, *requirements: str, variants: str = "") -> CertificationModule:
    return CertificationModule(name, requirements, test,
                               variants or "poll, ping / private_key_jwt, mtls")


CERTIFICATION_MODULES: Sequence[CertificationModule] = (
    _m("fapi-ciba-id1-discovery-end-point-verification", "test_discovery_end_point_verification",
       "FAPI-CIBA-03", "FAPI-CIBA-04", "FAPI-CIBA-18", "FAPI-CIBA-20", "FAPI-CIBA-21",
       "CIBA-DISC-06"),
    _m("fapi-ciba-id1", "test_two_client_flow", "FAPI-CIBA-04", "FAPI-CIBA-05",
       "CIBA-TOKEN-14", "FAPI-CIBA-21"),
    _m("fapi-ciba-id1-user-rejects-authentication", "test_user_rejects_authentication",
       "CIBA-TOKEN-13", "CIBA-PING-01"),
    _m("fapi-ciba-id1-multiple-call-to-token-endpoint", "test_multiple_call_to_token_endpoint",
       "CIBA-TOKEN-05", "CIBA-TOKEN-06"),
    _m("fapi-ciba-id1-auth-req-id-expired", "test_auth_req_id_expired", "CIBA-TOKEN-12"),
    _m("fapi-ciba-id1-ensure-authorization-request-with-binding-message-succeeds",
       "test_binding_message_succeeds", "CIBA-AUTH-18", "FAPI-CIBA-02"),
    _m("fapi-ciba-id1-ensure-other-scope-order-succeeds", "test_other_scope_order_succeeds",
       "CIBA-AUTH-06"),
    _m("fapi-ciba-id1-ensure-requested-expiry-as-string-succeeds",
       "test_requested_expiry_as_string_succeeds", "CIBA-SREQ-15"),
    _m("fapi-ciba-id1-ensure-authorization-request-with-potentially-bad-binding-message",
       "test_potentially_bad_binding_message", "CIBA-AUTH-19"),
    _m("fapi-ciba-id1-ensure-request-object-missing-aud-fails", "test_request_object_refused",
       "CIBA-SREQ-05"),
    _m("fapi-ciba-id1-ensure-request-object-bad-aud-fails", "test_request_object_refused",
       "CIBA-SREQ-05"),
    _m("fapi-ciba-id1-ensure-request-object-missing-iss-fails", "test_request_object_refused",
       "CIBA-SREQ-06"),
    _m("fapi-ciba-id1-ensure-request-object-bad-iss-fails", "test_request_object_refused",
       "CIBA-SREQ-06"),
    _m("fapi-ciba-id1-ensure-request-object-missing-exp-fails", "test_request_object_refused",
       "CIBA-SREQ-07", "FAPI-CIBA-07"),
    _m("fapi-ciba-id1-ensure-request-object-expired-exp-fails", "test_request_object_refused",
       "CIBA-SREQ-07"),
    _m("fapi-ciba-id1-ensure-request-object-exp-is-70-minutes-in-future-fails",
       "test_request_object_lifetime_limited", "FAPI-CIBA-07"),
    _m("fapi-ciba-id1-ensure-request-object-missing-iat-fails", "test_request_object_refused",
       "CIBA-SREQ-08"),
    _m("fapi-ciba-id1-ensure-request-object-missing-nbf-fails", "test_request_object_refused",
       "CIBA-SREQ-09", "FAPI-CIBA-07"),
    _m("fapi-ciba-id1-ensure-request-object-nbf-is-10-minutes-in-future-fails",
       "test_request_object_refused", "CIBA-SREQ-09"),
    _m("fapi-ciba-id1-ensure-request-object-nbf-is-70-minutes-in-past-fails",
       "test_request_object_lifetime_limited", "FAPI-CIBA-07"),
    _m("fapi-ciba-id1-ensure-request-object-missing-jti-fails", "test_request_object_refused",
       "CIBA-SREQ-10"),
    _m("fapi-ciba-id1-ensure-request-object-signature-algorithm-is-none-fails",
       "test_request_object_refused", "CIBA-SREQ-02"),
    _m("fapi-ciba-id1-ensure-request-object-signature-algorithm-is-bad-fails",
       "test_request_object_refused", "CIBA-SREQ-04"),
    _m("fapi-ciba-id1-ensure-request-object-signature-algorithm-is-RS256-fails",
       "test_request_object_rs256_refused", "FAPI-CIBA-18"),
    _m("fapi-ciba-id1-ensure-request-object-signed-by-other-client-fails",
       "test_request_object_signed_by_other_client_refused", "CIBA-SREQ-04"),
    _m("fapi-ciba-id1-ensure-authorization-request-with-multiple-hints-fails",
       "test_multiple_hints_fail", "CIBA-AUTH-08"),
    _m("fapi-ciba-id1-ensure-wrong-auth-req-id-in-token-endpoint-request",
       "test_wrong_auth_req_id_in_token_endpoint_request", "CIBA-TOKEN-04"),
    _m("fapi-ciba-id1-ensure-different-client-id-and-issuer-in-backchannel-authorization-request",
       "test_different_client_id_and_issuer", "CIBA-CAUTH-10", variants="poll, ping / mtls"),
    _m("fapi-ciba-id1-ensure-wrong-client-id-in-token-endpoint-request",
       "test_wrong_client_id_in_token_endpoint_request", "CIBA-CAUTH-10", "CIBA-TOKEN-20",
       variants="poll, ping / mtls"),
    _m("fapi-ciba-id1-ensure-wrong-client-id-in-backchannel-authorization-request",
       "test_wrong_client_id_in_backchannel_request", "CIBA-CAUTH-10",
       variants="poll, ping / mtls"),
    _m("fapi-ciba-id1-ensure-without-client-assertion-in-token-endpoint-request",
       "test_without_client_assertion_in_token_endpoint_request", "CIBA-TOKEN-20",
       variants="poll, ping / private_key_jwt"),
    _m("fapi-ciba-id1-ensure-without-client-assertion-in-backchannel-authorization-request",
       "test_without_client_assertion_in_backchannel_request", "CIBA-CAUTH-01",
       variants="poll, ping / private_key_jwt"),
    _m("fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-backchannel-authorization-"
       "request-is-RS256-fails", "test_client_assertion_rs256_refused", "FAPI-CIBA-18",
       variants="poll, ping / private_key_jwt"),
    _m("fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-token-endpoint-request-is-"
       "RS256-fails", "test_client_assertion_rs256_refused", "FAPI-CIBA-18",
       variants="poll, ping / private_key_jwt"),
    _m("fapi-ciba-id1-ensure-client-assertion-with-iss-aud-to-token-endpoint-succeeds",
       "test_client_assertion_with_issuer_audience_succeeds", "FAPI-CIBA-23", "CIBA-CAUTH-04",
       variants="poll, ping / private_key_jwt"),
    _m("fapi-ciba-id1-ping-backchannel-notification-endpoint-response-has-body",
       "test_ping_endpoint_answers", "CIBA-PING-05", variants="ping / private_key_jwt, mtls"),
    _m("fapi-ciba-id1-ping-backchannel-notification-endpoint-response-401",
       "test_ping_endpoint_answers", "CIBA-PING-07", variants="ping / private_key_jwt, mtls"),
    _m("fapi-ciba-id1-ping-backchannel-notification-endpoint-response-403",
       "test_ping_endpoint_answers", "CIBA-PING-07", variants="ping / private_key_jwt, mtls"),
    _m("fapi-ciba-id1-ping-with-mtls-ciba-notification-endpoint-response-401-and-require-"
       "server-does-not-retry", "test_ping_not_retried_after_401", "CIBA-PING-07",
       variants="ping / private_key_jwt, mtls"),
    _m("fapi-ciba-id1-ping-backchannel-notification-endpoint-return-redirect-request",
       "test_ping_redirect_not_followed", "CIBA-PING-06", variants="ping / private_key_jwt, mtls"),
    _m("fapi-ciba-id1-ensure-unsigned-backchannel-authorization-request-fails",
       "test_unsigned_request_refused", "FAPI-CIBA-06"),
    _m("fapi-ciba-id1-refresh-token", "test_refresh_token", "FAPI-CIBA-25", "FAPI-CIBA-21"),
    # its TLS version part (FAPI-CIBA-16) is conformance/test_tls.py
    _m("fapi-ciba-id1-ensure-mtls-holder-of-key-required",
       "test_holder_of_key_required, test_tls12_cipher_suites", "FAPI-CIBA-17", "FAPI-CIBA-21"),
)


def certification_map_markdown() -> str:
    """The table of docs/fapi-ciba.md: certification-suite module -> harness test, IDs."""
    lines = [
        "| Certification suite module | Harness test (conformance/test_fapi_ciba*.py) "
        "| Requirements | Variants |",
        "|---|---|---|---|",
    ]
    for module in CERTIFICATION_MODULES:
        lines.append(
            f"| `{module.name}` | `{module.test}` | {', '.join(module.requirements)} "
            f"| {module.variants} |"
        )
    return "\n".join(lines) + "\n"

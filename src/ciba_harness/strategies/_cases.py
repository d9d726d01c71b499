"""The cases a fuzz test sends: `BackchannelCase` and `TokenCase`, built by the core when
sent, and shown (as Hypothesis' falsifying example) without secret values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig
from ciba_harness.core._discovery import CIBA_GRANT, ProviderMetadata
from ciba_harness.core._http import HttpRequest, redact
from ciba_harness.core._requests import (
    BackchannelParams,
    RequestObjectSpec,
    build_backchannel_request,
    build_token_request,
)

__all__ = ["TOKEN_REQUIREMENTS", "BackchannelCase", "BodyFormat", "TokenCase", "redacted"]

BodyFormat = Literal["form", "json"]
#: every requirement a generated token case can break
TOKEN_REQUIREMENTS = ("CIBA-TOKEN-02", "CIBA-TOKEN-03", "CIBA-TOKEN-19")


def mask(name: str, value: Any) -> str:
    if name in {"login_hint_token", "id_token_hint", "user_code", "client_notification_token"}:
        return f"***({len(str(value))} chars)" if value else repr(value)
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(str(value))} chars)"


def _describe_params(params: BackchannelParams) -> str:
    parts = [f"{name}={mask(name, value)}" for name, value in params.as_fields()]
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
            parts.append(f"auth={describe_auth(self.auth)}")
        if self.signed is not None:
            parts.append(f"signed={describe_spec(self.signed)}")
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
            f"auth_req_id={mask('auth_req_id', self.auth_req_id)}",
            f"grant_type={self.grant_type!r}",
        ]
        if self.extra:
            parts.append(f"extra={[(k, mask(k, v)) for k, v in self.extra]!r}")
        if self.auth is not None:
            parts.append(f"auth={describe_auth(self.auth)}")
        if self.body_format != "form":
            parts.append(f"body={self.body_format}")
        parts.append(f"mutations={self.mutations!r}")
        return f"TokenCase({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def describe_auth(auth: ClientAuthentication) -> str:
    parts = []
    if auth.method:
        parts.append(f"method={auth.method}")
    if auth.secret is not None:
        parts.append("secret=<wrong>")
    if auth.client_id is not None:
        parts.append(f"client_id={mask('client_id', auth.client_id)}")
    if auth.audience is not None:
        parts.append(f"aud={mask('aud', auth.audience)}")
    if auth.assertion_claims:
        parts.append(f"claims={dict(auth.assertion_claims)!r}")
    if auth.assertion_key is not None:
        parts.append("key=<another client's>")
    if auth.assertion is not None:
        parts.append(f"assertion={mask('assertion', auth.assertion)}")
    if auth.also_basic:
        parts.append("also_basic")
    return "(" + ", ".join(parts) + ")"


def describe_spec(spec: RequestObjectSpec) -> str:
    parts = []
    if spec.alg:
        parts.append(f"alg={spec.alg}")
    if spec.key is not None:
        parts.append("key=<another client's>")
    if spec.claims:
        parts.append(f"claims={ {k: mask(k, v) for k, v in spec.claims.items()} }")
    if spec.headers:
        parts.append(f"headers={ {k: mask(k, v) for k, v in spec.headers.items()} }")
    if spec.lifetime != 300:
        parts.append(f"lifetime={spec.lifetime}")
    if spec.nbf_offset:
        parts.append(f"nbf_offset={spec.nbf_offset}")
    if spec.also_outside:
        parts.append(f"also_outside={spec.also_outside!r}")
    if spec.tamper_signature:
        parts.append("tamper_signature")
    return "(" + ", ".join(parts) + ")"


def redacted(text: str, case: BackchannelCase | TokenCase) -> str:
    """`text` with the case's secrets masked (for notes printed next to a failure)."""
    secrets = set(case.client.secrets)
    if isinstance(case, BackchannelCase):
        secrets |= case.params.secrets
    return redact(text, secrets)

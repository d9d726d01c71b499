"""The classification oracle: from a case's request as it goes on the wire, the MUST-level
requirements it breaks (empty: the provider may accept it)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ciba_harness.core._config import ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._http import HttpRequest
from ciba_harness.core._idtoken import decode_unverified
from ciba_harness.core._requests import AUTH_PARAMETERS
from ciba_harness.strategies._cases import BackchannelCase

__all__ = ["BACKCHANNEL_REQUIREMENTS", "HINTS", "classify", "dummy_metadata"]

HINTS = ("login_hint", "login_hint_token", "id_token_hint")

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


def dummy_metadata(config: ProviderConfig) -> ProviderMetadata:
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
    request = case.request or case.build(metadata or dummy_metadata(config))
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

"""Whole authentication requests: a valid request for one client, then mutations drawn
from groups (structure, values, client authentication, signing, transport), then `classify`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy, composite

from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._requests import BackchannelParams, RequestObjectSpec, login_hint_token
from ciba_harness.strategies._auth import AuthDeviation, client_authentications
from ciba_harness.strategies._cases import BackchannelCase, BodyFormat
from ciba_harness.strategies._clients import alg_fits, backchannel_clients
from ciba_harness.strategies._oracle import classify, dummy_metadata
from ciba_harness.strategies._params import (
    backchannel_params,
    foreign_id_tokens,
    known_users,
    login_hint_tokens,
)
from ciba_harness.strategies._request_objects import SpecMutation, request_object_mutations
from ciba_harness.strategies._values import (
    EMPTY,
    binding_messages,
    hostile_text,
    requested_expiries,
    scopes,
    unknown_values,
)

__all__ = ["MUTATION_NAMES", "backchannel_cases"]

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
            login_hint_tokens=login_hint_tokens(config),
            id_token_hints=foreign_id_tokens(config),
            login_hints=st.one_of(
                st.just(unknown),
                hostile_text().map(lambda suffix: unknown + suffix),
                hostile_text(min_size=1),
            ),
            user_codes=st.sampled_from((None, "")) | unknown_values([config.users.user_code or ""]),
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
_MAX_URL = 8000  # longer URLs: refused by HTTP clients (httpx: 64 KiB) or servers (414, reset)
_BODIES: tuple[tuple[str, BodyFormat], ...] = (("POST", "json"), ("GET", "form"), ("PUT", "form"))
_HINT_KINDS = st.sampled_from(("id_token_hint", "login_hint_token", "login_hint"))
_NOTIFICATION_TOKENS = st.sampled_from((None, "", "A" * 1024, "A" * 1025, "a b", "tok=="))
_UNSIGNED = st.sampled_from((False, True))
_UNKNOWN_NAMES = st.sampled_from(("x_harness_probe", "request_uri", "nonce", "redirect_uri"))


def _m_drop_scope(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(scope=draw(EMPTY))


def _m_scope(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(scope=draw(scopes() | scopes(valid=False)))


def _m_drop_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=draw(EMPTY), login_hint_token=None, id_token_hint=None)


def _m_login_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=draw(ctx.login_hints))


def _draw_login_hint_token(draw: DrawFn, d: _Draft, ctx: _Context) -> str:
    """A login_hint_token and its fact, noted in the draft (client_signed: signed by the
    requesting client, so minted for the drawn one)."""
    token, fact = draw(ctx.login_hint_tokens)
    if ctx.config.users.login_hint_token_format == "client_signed" and fact != "garbage":
        token = login_hint_token(ctx.config.users, fact, client=d.client) or token
    d.token_facts[token] = fact
    return token


def _m_login_hint_token(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    token = _draw_login_hint_token(draw, d, ctx)
    d.set(login_hint=None, id_token_hint=None, login_hint_token=token)


def _m_id_token_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    d.set(login_hint=None, login_hint_token=None, id_token_hint=draw(ctx.id_token_hints))


def _m_extra_hint(draw: DrawFn, d: _Draft, ctx: _Context) -> None:
    kind = draw(_HINT_KINDS)
    if kind == "id_token_hint":
        d.set(id_token_hint=draw(ctx.id_token_hints))
    elif kind == "login_hint_token":
        d.set(login_hint_token=_draw_login_hint_token(draw, d, ctx))
    else:
        d.set(login_hint=draw(st.sampled_from(known_users(ctx.config))))


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
    target = metadata or dummy_metadata(config)
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
    return client.private_key is not None and alg_fits(alg, client.signing_alg)

"""Signed request objects with one aspect changed (CIBA §7.1.1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._requests import AUTH_PARAMETERS, RequestObjectSpec
from ciba_harness.strategies._clients import ASYMMETRIC, alg_fits, other_id, other_signer
from ciba_harness.strategies._values import ATTACKER, hostile_text

__all__ = ["SpecMutation", "request_object_mutations", "request_object_specs"]

_WRONG_TYPES: tuple[Any, ...] = (123, 1.5, True, ["openid"], {"a": 1}, "")


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
        "aud": st.sampled_from((None, ATTACKER, [ATTACKER], *([[issuer]] if issuer else []))),
        "iss": st.sampled_from((None, other_id(config, client), "")),
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
        "jku": st.just(f"{ATTACKER}/jwks"),
    }
    keys: list[tuple[str | None, Any]] = [("none", None), ("HS256", None)]
    if client.private_key is not None and client.signing_alg in ASYMMETRIC:
        keys += [(a, None) for a in ASYMMETRIC if alg_fits(a, client.signing_alg)]
    signer = other_signer(config, client)
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

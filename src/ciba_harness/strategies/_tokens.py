"""Token requests with an auth_req_id no provider issued (or none), and other deviations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy, composite

from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import CIBA_GRANT, ProviderMetadata
from ciba_harness.strategies._auth import client_authentications
from ciba_harness.strategies._cases import TokenCase
from ciba_harness.strategies._values import EMPTY, hostile_text, random_auth_req_ids

__all__ = ["token_cases"]

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
    bad_ids = EMPTY | hostile_text(min_size=1)
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

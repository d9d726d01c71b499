"""Parameter values of an authentication request: a valid request for a client, and the
hints (login_hint_token, id_token_hint) a mutation puts in."""

from __future__ import annotations

import time

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ciba_harness.core._clientauth import sign_jwt
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._requests import BackchannelParams, login_hint_token
from ciba_harness.strategies._values import (
    ATTACKER,
    FORGED_KEY,
    URLSAFE,
    binding_messages,
    hostile_text,
    scopes,
)

__all__ = ["backchannel_params", "foreign_id_tokens", "known_users", "login_hint_tokens"]


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
        login_hint=st.sampled_from(known_users(config)),
        binding_message=binding_messages() if fapi else st.none() | binding_messages(),
        requested_expiry=st.none() | st.integers(min_value=30, max_value=600),
        acr_values=st.none() | st.sampled_from(("urn:mace:incommon:iap:silver", "0 1")),
        client_notification_token=(
            st.text(st.sampled_from(URLSAFE), min_size=22, max_size=64)
            if needs_token
            else st.none()
        ),
        user_code=st.just(users.user_code) if needs_code else st.none(),
    )


def known_users(config: ProviderConfig) -> list[str]:
    users = config.users
    return [u for u in (users.login_hint, users.second_login_hint) if u]


def login_hint_tokens(config: ProviderConfig) -> SearchStrategy[tuple[str, str]]:
    """(token, fact): fact is valid, expired, unknown (no such user) or garbage."""
    users = config.users
    options: list[SearchStrategy[tuple[str, str]]] = []
    if users.login_hint_token_hs256_key or users.login_hint_token_format == "client_signed":
        # Minted by the core now (HS256), or per requesting client when drawn (client_signed:
        # only the fact is drawn here, see strategies._backchannel).
        options.append(
            st.sampled_from(("valid", "expired", "unknown")).map(
                lambda fact: (login_hint_token(users, fact) or "", fact)
            )
        )
    for value, fact in (
        (users.login_hint_token, "valid"),
        (users.expired_login_hint_token, "expired"),
        (users.unknown_login_hint_token, "unknown"),
    ):
        if value:
            options.append(st.just((value, fact)))
    forged = sign_jwt({"sub": users.login_hint}, FORGED_KEY, "HS256")
    options.append((st.just(forged) | hostile_text(min_size=1)).map(lambda t: (t, "garbage")))
    return st.one_of(options)


def foreign_id_tokens(config: ProviderConfig) -> SearchStrategy[str]:
    """ID tokens this provider never issued: garbage, unsigned, or signed by someone else."""
    sub = config.users.login_hint

    def forge(aud: str) -> str:
        now = int(time.time())
        claims = {"iss": ATTACKER, "sub": sub, "aud": aud, "exp": now + 300, "iat": now}
        return sign_jwt(claims, FORGED_KEY, "HS256")

    audiences = [c.client_id for c in config.clients] or ["client"]
    return st.one_of(
        st.sampled_from(audiences).map(forge),
        st.just(sign_jwt({"sub": sub}, None, "none")),
        hostile_text(min_size=1),
    )

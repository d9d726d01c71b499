"""Client authentication deviations: (authentication, requirement it breaks, name)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.strategies._clients import other_id, other_signer
from ciba_harness.strategies._values import ATTACKER, hostile_text, unknown_values

__all__ = ["AuthDeviation", "client_authentications"]

AuthDeviation = tuple[ClientAuthentication, str | None, str]


def client_authentications(
    config: ProviderConfig, client: ClientConfig, issuer: str | None = None
) -> SearchStrategy[AuthDeviation]:
    """Deviations from the client's registered authentication: (auth, requirement, name).

    The requirement is the MUST the deviation breaks (None: still a valid authentication).
    """
    method = client.auth_method
    known_ids = [c.client_id for c in config.clients]
    wrong_secrets = unknown_values([c.client_secret for c in config.clients if c.client_secret])

    def unknown_id(cid: str) -> AuthDeviation:
        return ClientAuthentication(client_id=cid), "CIBA-CAUTH-03", "unknown client_id"

    options: list[SearchStrategy[AuthDeviation]] = [
        st.just((ClientAuthentication(method="omit"), "CIBA-CAUTH-01", "no client authentication")),
        st.just((ClientAuthentication(method="none"), "CIBA-CAUTH-01", "client_id only")),
        unknown_values(known_ids).map(unknown_id),
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
        claims = {claim: other_id(config, client)}
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
        (st.sampled_from((ATTACKER, f"{ATTACKER}/token")) | hostile_text(min_size=1)).map(
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
        signer = other_signer(config, client)
        if signer is not None:
            other_key = ClientAuthentication(
                assertion_key=signer.private_key, assertion_alg=signer.signing_alg
            )
            options.append(
                st.just((other_key, "CIBA-CAUTH-08", "assertion signed with another client's key"))
            )
    return options

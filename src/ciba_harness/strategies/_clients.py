"""The clients a case is sent for, and the other clients (and keys) a case borrows."""

from __future__ import annotations

from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata

__all__ = ["ASYMMETRIC", "alg_fits", "backchannel_clients", "other_client", "other_id", "other_signer"]

ASYMMETRIC = ("RS256", "PS256", "ES256")


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


def other_client(config: ProviderConfig, client: ClientConfig) -> ClientConfig | None:
    return next((c for c in config.clients if c.client_id != client.client_id), None)


def other_id(config: ProviderConfig, client: ClientConfig) -> str:
    other = other_client(config, client)
    return other.client_id if other is not None else f"{client.client_id}-other"


def other_signer(config: ProviderConfig, client: ClientConfig) -> ClientConfig | None:
    """Another client holding a different private key (to sign with the wrong key)."""
    return next(
        (
            c
            for c in config.clients
            if c.client_id != client.client_id
            and c.private_key is not None
            and c.signing_alg in ASYMMETRIC
            and c.private_key_path != client.private_key_path
        ),
        None,
    )


def alg_fits(alg: str, client_alg: str | None) -> bool:
    """Whether the client's key signs `alg` (the RSA algs share a key, ES256 does not)."""
    if client_alg not in ASYMMETRIC:
        return False
    return (alg == "ES256") == (client_alg == "ES256")

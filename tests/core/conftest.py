"""Shared fixtures of the core unit tests: keys, a provider description, provider metadata."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from core_helpers import ISSUER, KEYS
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ciba_harness import (
    ClientConfig,
    ProviderConfig,
    ProviderMetadata,
    default_profile_path,
    load_config,
)


@pytest.fixture(scope="session")
def reference_config() -> ProviderConfig:
    return load_config(default_profile_path())


@pytest.fixture(scope="session")
def metadata() -> ProviderMetadata:
    return ProviderMetadata(
        issuer=ISSUER,
        token_endpoint=f"{ISSUER}/token",
        backchannel_authentication_endpoint=f"{ISSUER}/bc-authorize",
        jwks_uri=f"{ISSUER}/jwks",
        delivery_modes=("poll", "ping", "push"),
    )


@pytest.fixture(scope="session")
def provider_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        (KEYS / "provider-signing-rsa.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        (KEYS / "client-second-rs256.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture
def client_of(reference_config: ProviderConfig) -> Callable[[str], ClientConfig]:
    return reference_config.client

"""One trust decision for every transport: the httpx transport (pytest, the CLI) and the Locust
transport (load) verify the provider's certificate against the same store for the same config,
whatever CA file geventhttpclient offers (the system's)."""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import certifi
import pytest

from ciba_harness import CibaClient
from ciba_harness.client._tls import provider_trust
from ciba_harness.core._config import ProviderConfig, default_profile_path, load_config
from ciba_harness.load._context import tls_factory
from ciba_harness.provider.pki import ensure_test_pki

SYSTEM_CAFILE = ssl.get_default_verify_paths().cafile


@pytest.fixture(scope="module")
def reference_config() -> ProviderConfig:
    return load_config(default_profile_path())


def trust_of(context: ssl.SSLContext) -> tuple[Any, ...]:
    """What a context accepts: verification mode, host name check, the CA certificates."""
    anchors = sorted(str(sorted(cert.get("subject", ()))) for cert in context.get_ca_certs())
    return context.verify_mode, context.check_hostname, tuple(anchors)


def variants(reference_config: ProviderConfig) -> dict[str, ProviderConfig]:
    return {
        "default": replace(reference_config, ca_bundle=None, insecure_skip_verify=False),
        "ca_bundle": replace(reference_config, ca_bundle=ensure_test_pki().ca,
                             insecure_skip_verify=False),
        "insecure": replace(reference_config, ca_bundle=None, insecure_skip_verify=True),
    }


@pytest.mark.parametrize("variant", ["default", "ca_bundle", "insecure"])
def test_pytest_and_load_transports_trust_the_same(
    reference_config: ProviderConfig, variant: str
) -> None:
    config = variants(reference_config)[variant]
    client = CibaClient(config)
    try:
        httpx_trust = trust_of(client.transport.ssl_context)  # type: ignore[attr-defined]
    finally:
        client.close()
    load_trust = trust_of(tls_factory(config)(cafile=SYSTEM_CAFILE))
    assert httpx_trust == load_trust


def test_the_fallback_is_certifi_everywhere(reference_config: ProviderConfig) -> None:
    config = variants(reference_config)["default"]
    assert provider_trust(config) is True
    certifi_trust = trust_of(ssl.create_default_context(cafile=certifi.where()))
    assert trust_of(tls_factory(config)(cafile=SYSTEM_CAFILE)) == certifi_trust
    assert certifi_trust[2], "certifi's bundle lists CA certificates"


def test_trust_follows_the_config(reference_config: ProviderConfig) -> None:
    configs = variants(reference_config)
    assert provider_trust(configs["ca_bundle"]) == str(ensure_test_pki().ca)
    assert provider_trust(configs["insecure"]) is False
    both = replace(configs["ca_bundle"], insecure_skip_verify=True)
    assert provider_trust(both) is False, "insecure_skip_verify wins over a CA bundle"
    pinned = trust_of(tls_factory(configs["ca_bundle"])(cafile=SYSTEM_CAFILE))
    assert pinned[0] == ssl.CERT_REQUIRED and len(pinned[2]) == 1
    assert trust_of(tls_factory(configs["insecure"])())[:2] == (ssl.CERT_NONE, False)


def test_a_missing_ca_bundle_is_not_silently_replaced(
    reference_config: ProviderConfig, tmp_path: Path
) -> None:
    config = replace(reference_config, ca_bundle=tmp_path / "absent.pem")
    with pytest.raises(OSError):
        tls_factory(config)(cafile=SYSTEM_CAFILE)
    with pytest.raises(OSError):
        CibaClient(config)

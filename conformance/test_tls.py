"""TLS of the provider and of the notification endpoint (CIBA §4, §7, §10.2, §10.3; RFC 6749
§3.2; FAPI-CIBA "TLS considerations": TLS 1.2 or later, certificates valid for the host).

Needs a provider served over https (e.g. `--ciba-config fixtures/profiles/reference-tls.toml`
for the embedded reference provider over TLS); against a plain-http provider every test is
skipped with the reason. TLS versions are probed with Python's ssl module, one handshake per
probe; when this Python's OpenSSL cannot even offer TLS 1.0 / 1.1 the probe is inconclusive
and the test is skipped. FAPI-CIBA-16 is a MUST under `--ciba-profile fapi-ciba` and a
warning (BCP 195) otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from ciba_harness import (
    Severity,
    expect_callback,
    fail,
    fapi_clients,
    handshake_established,
    handshake_refused,
    probe_tls,
    require_client,
)

if TYPE_CHECKING:
    from ciba_harness import (
        CibaClient,
        NotificationInbox,
        NotificationReceiver,
        ProviderConfig,
        ProviderMetadata,
    )

ENDPOINT_NAMES = (
    "token_endpoint",
    "backchannel_authentication_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "registration_endpoint",
    "introspection_endpoint",
)


@pytest.fixture(scope="module")
def https_provider(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata):
    """Skip the module unless the provider under test is served over https."""
    if not ciba_metadata.issuer.startswith("https://"):
        pytest.skip(
            "not applicable: the provider under test is not served over https (the default "
            "embedded provider is plain http on loopback; run with --ciba-config "
            "fixtures/profiles/reference-tls.toml for the TLS reference provider)"
        )
    return ciba_metadata


def endpoint_urls(metadata) -> dict[str, str]:
    """Every endpoint URL the metadata names, mTLS aliases included."""
    urls = {"issuer": metadata.issuer}
    for name in ENDPOINT_NAMES:
        value = metadata.raw.get(name)
        if isinstance(value, str) and value:
            urls[name] = value
    for name, value in metadata.mtls_endpoint_aliases.items():
        urls[f"mtls_endpoint_aliases.{name}"] = value
    return urls


def origins(metadata) -> dict[str, str]:
    """One URL per distinct https host:port (a TLS probe per server)."""
    found: dict[str, str] = {}
    for url in endpoint_urls(metadata).values():
        parts = urlsplit(url)
        if parts.scheme == "https":
            found.setdefault(f"{parts.hostname}:{parts.port or 443}", url)
    return found


def verify_setting(ciba_config: ProviderConfig):
    if ciba_config.insecure_skip_verify:
        return False
    return ciba_config.ca_bundle or True


def notification_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, mode: str):
    """A client of `mode`; under FAPI-CIBA one the profile allows (private_key_jwt or mTLS)."""
    if not ciba_config.fapi:
        return require_client(ciba_config, ciba_metadata, mode=mode)
    if not ciba_metadata.supports_mode(mode):
        pytest.skip(f"not applicable: the provider does not advertise {mode} mode")
    for auth in ("private_key_jwt", "mtls"):
        clients = fapi_clients(ciba_config, mode=mode, auth=auth)
        if clients:
            return clients[0]
    pytest.skip(f"not covered: no FAPI-CIBA {mode} client configured")


def tls_severity(ciba_config: ProviderConfig) -> Severity:
    return Severity.FAILURE if ciba_config.fapi else Severity.WARNING


@pytest.mark.requirement("CIBA-SEC-01", "CIBA-SEC-02", "CIBA-DISC-02")
def test_every_endpoint_is_https(ciba: CibaClient, https_provider):
    """Every endpoint of the metadata (and every mTLS alias) is an https URL: the backchannel
    endpoint (CIBA-SEC-01), the token endpoint (CIBA-SEC-02) and the rest alike."""
    for name, url in endpoint_urls(https_provider).items():
        if urlsplit(url).scheme != "https":
            requirement = {"token_endpoint": "CIBA-SEC-02"}.get(name, "CIBA-SEC-01")
            raise fail(
                requirement,
                f"{name} is not served over TLS",
                expected="https://…",
                actual=url,
            )


@pytest.mark.requirement("FAPI-CIBA-16", "CIBA-SEC-01")
def test_tls_12_or_later_with_a_valid_certificate(
    ciba: CibaClient, ciba_config: ProviderConfig, https_provider
):
    """Each server of the provider completes a TLS 1.2 or 1.3 handshake whose certificate is
    valid for the host (verified against [provider] ca_bundle or the system store)."""
    if ciba_config.insecure_skip_verify:
        pytest.skip("not covered: certificate verification is disabled (insecure_skip_verify)")
    for url in origins(https_provider).values():
        probe = probe_tls(url, versions=("1.2", "1.3"), verify=verify_setting(ciba_config))
        ciba.check_at(tls_severity(ciba_config), handshake_established, probe,
                      requirement="FAPI-CIBA-16")


@pytest.mark.requirement("FAPI-CIBA-16")
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_legacy_tls_refused(ciba: CibaClient, ciba_config: ProviderConfig, https_provider, version):
    """A TLS 1.0 / 1.1 handshake with any server of the provider fails (FAPI-CIBA-16; BCP 195
    for plain CIBA: a warning there)."""
    tried = 0
    for url in origins(https_provider).values():
        probe = probe_tls(url, versions=(version, version), verify=False)
        if probe.inconclusive:
            continue
        tried += 1
        ciba.check_at(tls_severity(ciba_config), handshake_refused, probe,
                      requirement="FAPI-CIBA-16")
    if not tried:
        pytest.skip(f"not covered: this Python's OpenSSL cannot offer TLS {version}")


@pytest.mark.requirement("CIBA-SEC-03", "CIBA-PING-04", "CIBA-PUSH-01")
@pytest.mark.parametrize("mode", ["ping", "push"])
def test_notification_reaches_the_https_receiver(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    ciba_receiver: NotificationReceiver,
    https_provider,
    mode,
):
    """The notification endpoint is https and the provider's callback reaches it over TLS
    (the receiver speaks nothing else); for push the tokens travel over that connection."""
    if not ciba_receiver.url.startswith("https://"):
        pytest.skip(
            "not covered: the notification receiver is plain http "
            "(set [receiver] tls_certificate / tls_key or https = true)"
        )
    client = notification_client(ciba_config, ciba_metadata, mode)
    flow = ciba.start(client)
    ciba.approve(flow)
    requirement = "CIBA-PING-04" if mode == "ping" else "CIBA-SEC-03"
    expect_callback(ciba, ciba_config, ciba_inbox, flow, requirement=requirement, what=mode,
                    guarded=False)

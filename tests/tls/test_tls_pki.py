"""The generated test PKI: contents, permissions, concurrency, and `pki:NAME` in profiles."""

from __future__ import annotations

import ipaddress
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ciba_harness import ConfigError, load_config
from ciba_harness.provider import ProfileError, load_profile
from ciba_harness.provider.pki import (
    CLIENT_CERTS,
    SELF_SIGNED_CERTS,
    ensure_test_pki,
    resolve_pki_path,
)

REPO = Path(__file__).resolve().parents[2]
TLS_PROFILE = REPO / "fixtures" / "profiles" / "reference-tls.toml"


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_generated_set(tmp_path: Path) -> None:
    pki = ensure_test_pki(tmp_path / "pki")
    ca = cert(pki.ca)
    server = cert(pki.server_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    for name in CLIENT_CERTS:
        client = cert(pki.cert(name))
        client.verify_directly_issued_by(ca)
        usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    for name in SELF_SIGNED_CERTS:
        own = cert(pki.cert(name))
        assert own.issuer == own.subject
    rogue = cert(pki.cert("rogue-client-a"))
    assert rogue.subject == cert(pki.cert("client-a")).subject and rogue.issuer != ca.subject


def test_private_material_is_private(tmp_path: Path) -> None:
    pki = ensure_test_pki(tmp_path / "pki")
    assert stat.S_IMODE(os.stat(pki.directory).st_mode) == 0o700
    keys = sorted(pki.directory.glob("*.key"))
    assert keys and all(stat.S_IMODE(os.stat(k).st_mode) == 0o600 for k in keys)
    assert not (pki.directory / "ca.key").exists(), "the CA key is never written"


def test_concurrent_first_use_yields_one_set(tmp_path: Path) -> None:
    target = tmp_path / "shared"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ensure_test_pki(target), range(4)))
    assert {r.directory for r in results} == {target}
    cert(target / "ca.pem").verify_directly_issued_by(cert(target / "ca.pem"))
    assert not [p for p in tmp_path.iterdir() if p.name != "shared"], "staging left behind"


def test_reused_while_valid(tmp_path: Path) -> None:
    first = ensure_test_pki(tmp_path / "pki").ca.read_bytes()
    assert ensure_test_pki(tmp_path / "pki").ca.read_bytes() == first


def test_pki_references(tmp_path: Path) -> None:
    assert resolve_pki_path("pki:ca.pem") == ensure_test_pki().ca
    for bad in ("pki:", "pki:../etc/passwd", "pki:nope.pem"):
        with pytest.raises(ValueError):
            resolve_pki_path(bad)
    config = load_config(TLS_PROFILE, test_pki=resolve_pki_path)
    assert config.ca_bundle == ensure_test_pki().ca
    assert config.client("poll-mtls").certificate_path == ensure_test_pki().cert("client-a")
    settings = load_profile(TLS_PROFILE)
    assert settings.tls and settings.tls_client_ca == ensure_test_pki().ca
    broken = tmp_path / "broken.toml"
    broken.write_text(TLS_PROFILE.read_text().replace('"pki:client-a.pem"', '"pki:nope.pem"')
                      .replace("../keys/", str(REPO / "fixtures" / "keys") + "/"))
    with pytest.raises(ConfigError, match="nope.pem"):
        load_config(broken, test_pki=resolve_pki_path)
    with pytest.raises(ProfileError, match="nope.pem"):
        load_profile(broken)


def test_receiver_https_flag_uses_the_test_pki(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    text = (REPO / "fixtures" / "profiles" / "reference.toml").read_text()
    text = text.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:0"\nhttps = true', 1)
    text = text.replace("../keys/", str(REPO / "fixtures" / "keys") + "/")
    profile.write_text(text)
    receiver = load_config(profile, test_pki=resolve_pki_path).receiver
    assert receiver.tls_certificate == ensure_test_pki().server_cert
    assert receiver.tls_key == ensure_test_pki().server_key


def test_loading_a_config_makes_no_pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config model is sans-I/O: loading writes nothing; without a resolver a `pki:NAME`
    value (and `https = true`) is a ConfigError naming its key, and with one it is the file
    the resolver made."""
    home = tmp_path / "pki-home"
    monkeypatch.setenv("CIBA_HARNESS_PKI_DIR", str(home))
    profile = tmp_path / "p.toml"
    text = (REPO / "fixtures" / "profiles" / "reference.toml").read_text()
    text = text.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:0"\nhttps = true', 1)
    profile.write_text(text.replace("../keys/", str(REPO / "fixtures" / "keys") + "/"))
    with pytest.raises(ConfigError) as refused:
        load_config(profile)
    assert refused.value.key == "receiver.https" and "test PKI" in str(refused.value)
    with pytest.raises(ConfigError) as tls_refused:
        load_config(TLS_PROFILE)
    assert {"provider.ca_bundle", "clients[7].certificate"} <= {
        p.key for p in tls_refused.value.problems
    }
    assert not home.exists(), "config loading wrote the test PKI"
    asked: list[str] = []

    def resolver(reference: str) -> Path:
        asked.append(reference)
        return resolve_pki_path(reference)

    receiver = load_config(profile, test_pki=resolver).receiver
    assert asked == ["pki:server.pem", "pki:server.key"]
    assert receiver.tls_certificate == home / "server.pem" and receiver.tls_certificate.is_file()

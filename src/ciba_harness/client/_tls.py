"""TLS on the client side: SSL contexts for the harness's HTTP client, and handshake probes.

Contexts are built here rather than through httpx's `verify=<path>` / `cert=` shortcuts:
httpx 0.28 silently drops `cert=` when `verify` is a path, so a client certificate would
never be sent. Probes try one TLS handshake with chosen versions or cipher suites (FAPI-CIBA
-16/-17) and say whether the server accepted it, refused it, or whether this Python's
OpenSSL could not even offer it (then nothing can be concluded).
"""

from __future__ import annotations

import socket
import ssl
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ciba_harness.core._config import ProviderConfig
from ciba_harness.core._tls import FAPI_TLS12_CIPHERS, TlsProbe

__all__ = [
    "FAPI_TLS12_CIPHERS",
    "TlsProbe",
    "certificate_thumbprint",
    "client_ssl_context",
    "impostor_certificate",
    "offerable_tls12_ciphers",
    "probe_tls",
    "provider_ssl_context",
    "provider_trust",
]

_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def client_ssl_context(
    verify: bool | str | Path | ssl.SSLContext = True,
    cert: tuple[str, str] | None = None,
) -> ssl.SSLContext:
    """An SSL context for the harness client: trust (`verify`: True = the default bundle of
    httpx (certifi), a CA bundle path, False = no verification) plus an optional client
    certificate (`cert` = (certificate PEM path, key PEM path))."""
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("a prepared SSL context cannot take a client certificate here")
        return verify
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    else:
        context = ssl.create_default_context(cafile=str(verify))
    if cert is not None:
        context.load_cert_chain(cert[0], cert[1])
    return context


def provider_trust(config: ProviderConfig) -> bool | str:
    """How every transport of the harness (httpx under pytest and the CLI, FastHttp under
    load) verifies the provider's TLS certificate: False under `insecure_skip_verify` (lab
    only), else the configured `ca_bundle`, else True: certifi's bundle, the same on every
    machine (a system store would make one config pass here and fail there)."""
    if config.insecure_skip_verify:
        return False
    if config.ca_bundle:
        return str(config.ca_bundle)
    return True


def provider_ssl_context(
    config: ProviderConfig, cert: tuple[str, str] | None = None
) -> ssl.SSLContext:
    """The SSL context for talking to the provider of `config` (`provider_trust`), with an
    optional client certificate."""
    return client_ssl_context(provider_trust(config), cert)


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"not an https URL: {url}")
    return parts.hostname, parts.port or 443


def probe_tls(
    url: str,
    *,
    versions: tuple[str, str] = ("1.2", "1.3"),
    ciphers: str | None = None,
    verify: bool | str | Path = True,
    timeout: float = 5.0,
) -> TlsProbe:
    """One handshake with `url`'s host offering TLS `versions` (min, max) and, below TLS 1.3,
    only the OpenSSL cipher string `ciphers`. Legacy versions and weak suites are enabled on
    the client side (security level 0) so that the server is the one that decides."""
    host, port = _endpoint(url)
    offered = f"TLS {versions[0]}..{versions[1]}" + (f" with {ciphers}" if ciphers else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 / 1.1 on purpose
        try:
            context = client_ssl_context(verify)
            context.minimum_version = _VERSIONS[versions[0]]
            context.maximum_version = _VERSIONS[versions[1]]
            context.set_ciphers(f"{ciphers or 'DEFAULT'}:@SECLEVEL=0")
        except (ssl.SSLError, ValueError) as exc:
            return TlsProbe(host, port, offered, False, error=f"cannot offer: {exc}",
                            inconclusive=True)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return TlsProbe(host, port, offered, False, error=f"cannot connect: {exc}",
                        inconclusive=True)
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            cipher = tls.cipher()
            return TlsProbe(host, port, offered, True, tls.version(),
                            cipher[0] if cipher else None)
    except ssl.SSLError as exc:
        text = f"{exc.reason or exc}"
        # Refused by us before anything reached the server: no conclusion possible.
        local = exc.reason in {"NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE",
                               "NO_SUITABLE_SIGNATURE_ALGORITHM"}
        return TlsProbe(host, port, offered, False, error=text, inconclusive=local)
    except OSError as exc:  # reset / EOF: the server hung up, i.e. refused
        return TlsProbe(host, port, offered, False, error=f"{type(exc).__name__}: {exc}")
    finally:
        raw.close()


def offerable_tls12_ciphers() -> list[str]:
    """TLS 1.2-capable suites this Python's OpenSSL can offer (RSA or DHE/ECDHE key
    exchange with RSA authentication, i.e. ones an RSA-certificate server could pick)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        context.set_ciphers("ALL")
    names: list[str] = []
    for entry in context.get_ciphers():
        info: dict[str, Any] = dict(entry)
        if info.get("protocol") == "TLSv1.3":
            continue
        if info.get("auth") not in {"auth-rsa", None} or "PSK" in info["name"]:
            continue
        if "SRP" in info["name"] or "NULL" in info["name"] or "ANON" in str(info.get("kea")):
            continue
        names.append(str(info["name"]))
    return names


def certificate_thumbprint(path: str | Path) -> str:
    """RFC 8705 x5t#S256 of a PEM certificate file: base64url(SHA-256(DER))."""
    import base64
    import hashlib

    data = Path(path).read_bytes()
    der = ssl.PEM_cert_to_DER_cert(data.decode("ascii"))
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def impostor_certificate(path: str | Path, directory: Path) -> tuple[str, str]:
    """A self-signed certificate with the same subject as the PEM certificate at `path`, and
    its key, written to `directory` (a private temp directory): what an attacker who knows a
    client's subject DN can make. Returns (certificate path, key path)."""
    import datetime
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    original = x509.load_pem_x509_certificate(Path(path).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "impostor.pem"
    key_path = directory / "impostor.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    return str(cert_path), str(key_path)

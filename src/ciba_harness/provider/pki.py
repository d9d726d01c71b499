"""A throw-away test PKI for loopback TLS and mutual TLS, generated at run time.

Nothing is downloaded and nothing is kept in the repository: the first use generates a test
CA, a server certificate for ``127.0.0.1`` / ``::1`` / ``localhost``, client certificates
issued by the CA, self-signed client certificates and one client certificate from an
untrusted ("rogue") CA into a private cache directory under the system temp dir (mode 0700,
keys 0600), keyed by a hash of the layout version and the user. The CA's private key is never
written. Certificates are valid for 90 days; a set with less than 7 days left is replaced.

Profiles refer to these files as ``pki:NAME`` (e.g. ``pki:ca.pem``, ``pki:server.key``):
:func:`resolve_pki_path` turns such a value into the generated file's path, generating the
set on first use. ``CIBA_HARNESS_PKI_DIR`` overrides the directory.

It lives in the reference provider's package because the provider (which imports nothing
from the harness) needs it too; the harness imports it from here.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CLIENT_CERTS",
    "PKI_PREFIX",
    "SELF_SIGNED_CERTS",
    "TestPki",
    "certificate_thumbprint",
    "ensure_test_pki",
    "is_pki_reference",
    "resolve_pki_path",
]

#: bump when the set of files or their contents change (new cache directory)
LAYOUT_VERSION = "1"
PKI_PREFIX = "pki:"
ORGANISATION = "ciba-harness test"
VALID_DAYS = 90
RENEW_DAYS = 7
#: client certificates issued by the test CA (subject CN = the name)
CLIENT_CERTS = ("client-a", "client-b", "client-c", "client-d")
#: self-signed client certificates (for self_signed_tls_client_auth)
SELF_SIGNED_CERTS = ("self-a", "self-b")
#: issued by an untrusted CA, with the same subject as client-a
ROGUE_CERT = "rogue-client-a"

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TestPki:
    """Paths of one generated test PKI."""

    __test__ = False  # not a pytest test class

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def file(self, name: str) -> Path:
        return self.directory / name


def default_directory() -> Path:
    override = os.environ.get("CIBA_HARNESS_PKI_DIR")
    if override:
        return Path(override)
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    digest = hashlib.sha256(f"ciba-harness-pki:{LAYOUT_VERSION}:{user}".encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"ciba-harness-pki-{digest[:16]}"


def ensure_test_pki(directory: Path | None = None) -> TestPki:
    """The test PKI in `directory` (default: the per-user cache), generated when missing or
    about to expire. Safe when several processes ask at once (atomic directory rename)."""
    target = directory or default_directory()
    if _usable(target):
        return TestPki(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        _generate(staging)
        if target.exists() and not _usable(target):
            retired = target.with_name(f"{target.name}.old-{os.getpid()}")
            try:
                os.rename(target, retired)
                shutil.rmtree(retired, ignore_errors=True)
            except OSError:
                pass  # another process replaced it meanwhile
        try:
            os.rename(staging, target)
        except OSError:
            if not _usable(target):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return TestPki(target)


def is_pki_reference(value: str) -> bool:
    return value.startswith(PKI_PREFIX)


def resolve_pki_path(value: str) -> Path:
    """``pki:NAME`` -> path of that generated file (generating the PKI if needed)."""
    name = value[len(PKI_PREFIX):] if is_pki_reference(value) else value
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{value!r} does not name a file of the test PKI")
    pki = ensure_test_pki()
    path = pki.file(name)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in pki.directory.iterdir()))
        raise ValueError(f"{value!r}: the test PKI has no such file (it has {known})")
    return path


def certificate_thumbprint(pem_or_der: bytes) -> str:
    """RFC 8705 ``x5t#S256``: base64url SHA-256 of the DER certificate."""
    import base64

    if pem_or_der.lstrip().startswith(b"-----BEGIN"):
        der = x509.load_pem_x509_certificate(pem_or_der).public_bytes(serialization.Encoding.DER)
    else:
        der = pem_or_der
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


# ------------------------------------------------------------------------------------------


def _usable(directory: Path) -> bool:
    marker = directory / "ca.pem"
    expected = ["server.pem", "server.key", ROGUE_CERT + ".pem"] + [
        f"{n}.pem" for n in (*CLIENT_CERTS, *SELF_SIGNED_CERTS)
    ]
    if not marker.is_file() or not all((directory / name).is_file() for name in expected):
        return False
    try:
        cert = x509.load_pem_x509_certificate(marker.read_bytes())
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > datetime.timedelta(days=RENEW_DAYS)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca(common_name: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _rsa()
    name = _name(common_name)
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    key: Key,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    *,
    server: bool,
) -> x509.Certificate:
    subject = _name(common_name)
    builder = _builder(subject, issuer[0].subject if issuer else subject, key)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]),
            critical=False,
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False
        )
        return builder.sign(issuer[1], hashes.SHA256())
    return builder.sign(key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: Key | None) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = directory / f"{name}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))


def _generate(directory: Path) -> None:
    os.chmod(directory, 0o700)
    ca = _ca("ciba-harness test CA")
    _write(directory, "ca", ca[0], None)  # the CA key is never written
    server_key = _rsa()  # RSA: the FAPI TLS 1.2 suites are ECDHE_RSA / DHE_RSA
    _write(directory, "server", _leaf("127.0.0.1", server_key, ca, server=True), server_key)
    for name in CLIENT_CERTS:
        key: Key = _rsa()
        _write(directory, name, _leaf(name, key, ca, server=False), key)
    for name in SELF_SIGNED_CERTS:
        key = ec.generate_private_key(ec.SECP256R1())
        _write(directory, name, _leaf(name, key, None, server=False), key)
    rogue_ca = _ca("ciba-harness rogue CA (untrusted)")
    rogue_key = _rsa()
    _write(directory, ROGUE_CERT, _leaf("client-a", rogue_key, rogue_ca, server=False), rogue_key)

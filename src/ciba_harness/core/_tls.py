"""What a TLS handshake probe observed (the probing itself is client/_tls.py), as data."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAPI_TLS12_CIPHERS", "TlsProbe"]

#: FAPI-CIBA-17: below TLS 1.3 only these suites (OpenSSL names)
FAPI_TLS12_CIPHERS = frozenset(
    {
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
    }
)

@dataclass(frozen=True)
class TlsProbe:
    """The outcome of one handshake attempt."""

    host: str
    port: int
    offered: str  # what was offered, for messages
    established: bool
    version: str | None = None
    cipher: str | None = None
    error: str | None = None
    #: the handshake could not be attempted (this OpenSSL cannot offer what was asked, or
    #: the server is unreachable): no verdict possible
    inconclusive: bool = False

"""OAuth-style errors raised inside the provider and turned into JSON responses."""

from __future__ import annotations

import re

#: characters allowed in error_description (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E)
_DISALLOWED = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


def clean_description(text: str) -> str:
    return _DISALLOWED.sub("?", text)[:300]


class OAuthError(Exception):
    """An error answered as JSON ``{"error", "error_description"}``.

    ``basic`` marks an invalid_client raised after HTTP Basic authentication was attempted (the
    answer then carries ``WWW-Authenticate: Basic``).
    """

    def __init__(self, error: str, description: str, status: int = 400, *, basic: bool = False):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = clean_description(description)
        self.status = status
        self.basic = basic


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    return OAuthError("invalid_client", description, 401, basic=basic)

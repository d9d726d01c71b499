"""Protocol vocabulary the checks judge against: error codes per endpoint and value charsets."""

from __future__ import annotations

import re

__all__ = [
    "AUTH_REQ_ID_PATTERN",
    "ERROR_BODY_MEMBERS",
    "ERROR_DESCRIPTION_PATTERN",
    "ERROR_URI_PATTERN",
    "BACKCHANNEL_ERROR_CODES",
    "PUSH_ERROR_CODES",
    "TOKEN_ERROR_CODES",
]

AUTH_REQ_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
# RFC 6749 §5.2: error_description / error_uri charsets.
ERROR_DESCRIPTION_PATTERN = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")
ERROR_URI_PATTERN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]*$")
ERROR_BODY_MEMBERS = {"error", "error_description", "error_uri"}

BACKCHANNEL_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_scope",
        "expired_login_hint_token",
        "unknown_user_id",
        "unauthorized_client",
        "missing_user_code",
        "invalid_user_code",
        "invalid_binding_message",
        "invalid_client",
        "access_denied",
    }
)
TOKEN_ERROR_CODES = frozenset(
    {
        "authorization_pending",
        "slow_down",
        "expired_token",
        "access_denied",
        "invalid_grant",
        "invalid_request",
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
PUSH_ERROR_CODES = frozenset({"access_denied", "expired_token", "transaction_failed"})

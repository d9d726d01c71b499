"""A hostile CIBA provider for the harness's own robustness tests.

A real HTTP server on loopback that misbehaves on purpose, per endpoint and per request:
slow or no answers, closed and reset connections, 500, HTML, non-JSON and huge bodies,
wrong content types, redirect loops, JSON of the wrong shape, broken ID tokens, failing or
rotating keys, notifications that never come, come twice or name unknown transactions.
What it does not break it takes from an embedded reference provider whose issuer is the
hostile server's own URL, so a CIBA flow works around the misbehaviour.

    python -m ciba_harness.hostile --behaviour token=hang --behaviour backchannel=html
    python -m ciba_harness.hostile --list

    with start_hostile({"token": "ok,hang"}, config="my-profile.toml") as hostile:
        ...  # hostile.issuer

See docs/robustness.md for the catalogue and the harness's verdict on each behaviour.
"""

from ciba_harness.hostile._catalogue import (
    BEHAVIOURS,
    ENDPOINTS,
    HTTP_ENDPOINTS,
    Behaviour,
    HostileSelectionError,
    Step,
    catalogue_markdown,
    parse_selection,
)
from ciba_harness.hostile._server import Hit, HostileProvider, HostileStartError, start_hostile

__all__ = [
    "BEHAVIOURS",
    "ENDPOINTS",
    "HTTP_ENDPOINTS",
    "Behaviour",
    "Hit",
    "HostileProvider",
    "HostileSelectionError",
    "HostileStartError",
    "Step",
    "catalogue_markdown",
    "parse_selection",
    "start_hostile",
]

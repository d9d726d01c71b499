"""Embedded reference CIBA provider (OpenID Provider side of CIBA Core 1.0).

It is the harness's zero-configuration target and the oracle of the harness's own tests, so it
shares no code with the harness's protocol core. See docs/provider.md and docs/faults.md.
"""

from ciba_harness.provider.app import create_app
from ciba_harness.provider.faults import FAULTS, Fault
from ciba_harness.provider.server import ProviderStartError, RunningProvider, start_provider
from ciba_harness.provider.settings import (
    ClientSettings,
    ProfileError,
    ProviderSettings,
    UserRecord,
    load_profile,
)

__all__ = [
    "FAULTS",
    "ClientSettings",
    "Fault",
    "ProfileError",
    "ProviderSettings",
    "ProviderStartError",
    "RunningProvider",
    "UserRecord",
    "create_app",
    "load_profile",
    "start_provider",
]

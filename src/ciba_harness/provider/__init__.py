"""Embedded reference CIBA provider (OpenID Provider side of CIBA Core 1.0).

It is the harness's zero-configuration target and the oracle of the harness's own tests, so it
shares no code with the harness's protocol core. See docs/provider.md and docs/faults.md.
"""

from .app import create_app
from .faults import FAULTS, Fault
from .server import ProviderStartError, RunningProvider, start_provider
from .settings import ClientSettings, ProfileError, ProviderSettings, UserRecord, load_profile

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

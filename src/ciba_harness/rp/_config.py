"""The description of a client under test (client.toml). Without one: the reference client.

    [client]
    driver = "http"                     # http | command | reference (the default)
    start_url = "http://127.0.0.1:9500/start"
    # command = "./my-client --user {login_hint} --message {binding_message} --mode {mode}"
    modes = ["poll", "ping", "push"]    # the delivery modes the client supports
    notification_endpoint = "http://127.0.0.1:9500/notify"
    auth_method = "client_secret_basic" # or client_secret_post
    flow_timeout = 30                   # seconds one flow may take

    [provider]
    port = 9400                         # the client's issuer is http://127.0.0.1:9400

    [registrations]                     # what the client is configured with, per mode
    poll = { client_id = "rp-poll", secret_env = "RP_POLL_SECRET" }
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciba_harness.core._errors import ConfigError

__all__ = ["ClientUnderTest", "load_client_config", "reference_config"]

MODES = ("poll", "ping", "push")
DRIVERS = ("reference", "http", "command")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class ClientUnderTest:
    driver: str = "reference"
    start_url: str | None = None
    command: str | None = None
    modes: tuple[str, ...] = MODES
    notification_endpoint: str | None = None
    auth_method: str = "client_secret_basic"
    flow_timeout: float = 30.0
    provider_port: int = 0
    #: mode -> (client_id, secret)
    registrations: dict[str, tuple[str, str]] = field(default_factory=dict)
    source: str = "(built-in: the reference client)"
    faults: frozenset[str] = frozenset()

    @property
    def is_reference(self) -> bool:
        return self.driver == "reference"


def reference_config(faults: frozenset[str] = frozenset()) -> ClientUnderTest:
    registrations = {m: (f"rp-{m}", secrets.token_urlsafe(24)) for m in MODES}
    return ClientUnderTest(registrations=registrations, faults=faults)


def load_client_config(path: str | Path) -> ClientUnderTest:
    file = str(path)
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file", file=file) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from None
    client = _table(data, "client", file)
    provider = _table(data, "provider", file)
    driver = str(client.get("driver", "reference"))
    if driver not in DRIVERS:
        raise ConfigError(f"must be one of {', '.join(DRIVERS)}", file=file, key="client.driver")
    if driver == "reference":
        return reference_config()
    modes = tuple(str(m) for m in client.get("modes", MODES))
    if not modes or set(modes) - set(MODES):
        raise ConfigError("a non-empty list of poll, ping, push", file=file, key="client.modes")
    auth_method = str(client.get("auth_method", "client_secret_basic"))
    if auth_method not in AUTH_METHODS:
        raise ConfigError(f"must be one of {', '.join(AUTH_METHODS)}", file=file,
                          key="client.auth_method")
    if driver == "http" and not client.get("start_url"):
        raise ConfigError("the http driver needs start_url", file=file, key="client.start_url")
    if driver == "command" and not client.get("command"):
        raise ConfigError("the command driver needs command", file=file, key="client.command")
    if set(modes) & {"ping", "push"} and not client.get("notification_endpoint"):
        raise ConfigError("ping and push need the client's notification endpoint", file=file,
                          key="client.notification_endpoint")
    registrations_table = _table(data, "registrations", file)
    registrations = {}
    for mode in modes:
        entry = registrations_table.get(mode)
        key = f"registrations.{mode}"
        if not isinstance(entry, dict) or not entry.get("client_id"):
            raise ConfigError("client_id and secret (or secret_env) of this mode", file=file,
                              key=key)
        secret = entry.get("secret")
        if entry.get("secret_env"):
            secret = os.environ.get(str(entry["secret_env"]))
            if secret is None:
                raise ConfigError(f"environment variable {entry['secret_env']} is not set",
                                  file=file, key=key + ".secret_env")
        if not secret:
            raise ConfigError("a secret (or secret_env) is needed", file=file, key=key)
        registrations[mode] = (str(entry["client_id"]), str(secret))
    port = provider.get("port", 0)
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise ConfigError("a port number", file=file, key="provider.port")
    return ClientUnderTest(
        driver=driver,
        start_url=client.get("start_url"),
        command=client.get("command"),
        modes=modes,
        notification_endpoint=client.get("notification_endpoint"),
        auth_method=auth_method,
        flow_timeout=float(client.get("flow_timeout", 30)),
        provider_port=port,
        registrations=registrations,
        source=file,
    )


def _table(data: dict[str, Any], name: str, file: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("must be a table", file=file, key=name)
    return value

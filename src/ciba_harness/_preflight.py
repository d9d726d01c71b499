"""What the command line checks before a run starts, so a mistake in the user's input ends in
one clear message (cause and fix), exit code 2 and no report files, not in a failed run.

* the provider description loads (ConfigError names file and key);
* the reference provider can use it, when it is to be started ("embedded");
* the receiver's (and webhook's) listening ports are free;
* the provider answers discovery with CIBA metadata (a backchannel endpoint).

Everything the suite judges (issuer mismatch, wrong members, ...) stays a test verdict.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._config import ProviderConfig, default_profile_path, load_config
from ._errors import CibaHarnessError, ConfigError

__all__ = ["preflight", "describe_config_error"]


def describe_config_error(error: ConfigError) -> str:
    """A ConfigError as one line: what is wrong, and where to fix it."""
    if error.message == "file not found":
        fix = "give the path of an existing provider description (TOML)"
    elif error.key and error.file:
        fix = f"fix '{error.key}' in {error.file}"
    else:
        fix = f"fix {error.file or 'the provider description'}"
    return f"{error} — {fix} (every key is described in docs/configuration.md)"


def preflight(
    config_path: str | os.PathLike[str] | None,
    *,
    issuer: str | None = None,
    timeout: float | None = None,
) -> ProviderConfig:
    """Load and check the user's input; raises CibaHarnessError with one clear message."""
    path = Path(config_path) if config_path else default_profile_path()
    config = load_config(path)
    if issuer:
        config = config.with_issuer(issuer.rstrip("/"))
    if config.embedded:
        _check_reference_profile(config)
    _check_port(config.receiver.bind, "[receiver] bind", config)
    if config.device.driver == "webhook":
        _check_port(config.device.webhook_bind, "[device] webhook_bind", config)
    if not config.embedded:
        _check_discovery(config, timeout or config.budgets.request_timeout)
    return config


def _check_reference_profile(config: ProviderConfig) -> None:
    from .provider import ProfileError, load_profile

    try:
        load_profile(config.source)
    except (ProfileError, OSError, ValueError) as exc:
        raise CibaHarnessError(
            f"the reference provider cannot use {config.source}: {exc} — fix the file, or set "
            "[provider] issuer to your provider's URL"
        ) from None


def _check_port(bind: str, key: str, config: ProviderConfig) -> None:
    from ._receiver import bind_socket

    host, _, port = bind.rpartition(":")
    if port == "0":
        return
    try:
        sock = bind_socket(bind)
    except CibaHarnessError as exc:
        cause = str(exc).partition(" (choose another port")[0]
        raise CibaHarnessError(
            f"{cause} — free the port or change {key} in {config.source} (port 0 = any free port)"
        ) from None
    sock.close()


def _check_discovery(config: ProviderConfig, timeout: float) -> None:
    from ._client import HttpxTransport
    from ._discovery import discovery_request

    request = discovery_request(config.issuer, config.discovery_url)
    verify: object = True
    if config.ca_bundle:
        verify = str(config.ca_bundle)
    if config.insecure_skip_verify:
        verify = False
    transport = HttpxTransport(timeout=timeout, verify=verify)
    try:
        exchange = transport.send(request, label="preflight discovery")
    finally:
        transport.close()
    fix_issuer = (
        f"check [provider] issuer in {config.source} (or --ciba-issuer) and that the provider "
        "is running and reachable from here"
    )
    response = exchange.response
    if response is None or exchange.error is not None:
        raise CibaHarnessError(
            f"the provider at {config.issuer} is unreachable ({exchange.error}) — {fix_issuer}"
        )
    if response.status != 200:
        raise CibaHarnessError(
            f"discovery {request.url} answered HTTP {response.status}, not the provider "
            f"metadata — {fix_issuer}; the harness appends /.well-known/openid-configuration "
            "to the issuer, or set [provider] discovery_url"
        )
    document = response.json_object()
    if document is None:
        shown = response.content_type or "no content type"
        raise CibaHarnessError(
            f"discovery {request.url} did not return a JSON object ({shown}): this is not an "
            f"OpenID provider's metadata — {fix_issuer}"
        )
    if not isinstance(document.get("backchannel_authentication_endpoint"), str):
        raise CibaHarnessError(
            f"the provider at {config.issuer} does not offer CIBA: its metadata has no "
            "backchannel_authentication_endpoint — enable CIBA for this provider (realm, "
            "tenant) or point [provider] issuer at one that has it"
        )
    if not isinstance(document.get("token_endpoint"), str):
        raise CibaHarnessError(
            f"the provider metadata at {request.url} has no token_endpoint — {fix_issuer}"
        )

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
import urllib.parse
from pathlib import Path

from ciba_harness.client._tls import provider_trust
from ciba_harness.core._config import ProviderConfig, default_profile_path, load_config
from ciba_harness.core._discovery import discovery_request
from ciba_harness.core._errors import CibaHarnessError, ConfigError

__all__ = ["preflight", "describe_config_error", "describe_each_config_error",
           "receiver_warnings"]


def describe_config_error(error: ConfigError) -> str:
    """A ConfigError as one line: what is wrong, and where to fix it; how many more mistakes
    the file has (check-config lists them all)."""
    line = _describe(error)
    others = len(error.problems) - 1
    if others > 0:
        line += (f" — and {others} more mistake(s) in this file: "
                 f"ciba-harness check-config {error.file} lists them all")
    return line


def describe_each_config_error(error: ConfigError) -> list[str]:
    """Every mistake of the file, one line each (check-config)."""
    return [_describe(problem) for problem in error.problems]


def _describe(error: ConfigError) -> str:
    if error.message == "file not found":
        fix = "give the path of an existing provider description (TOML)"
    elif error.key and error.file:
        fix = f"fix '{error.key}' in {error.file}"
    else:
        fix = f"fix {error.file or 'the provider description'}"
    return f"{error} — {fix} (every key is described in docs/configuration.md)"


def receiver_warnings(config: ProviderConfig) -> list[str]:
    """Ping and push need the provider to call the receiver: a provider of its own (not the
    embedded one) cannot call back a random port, nor a loopback address unless it runs on
    this machine (CIBA §10.2, §10.3: the client_notification_endpoint is registered with the
    provider). Said before the run, not after every ping test waited in vain."""
    if config.embedded:
        return []
    callback_clients = [c for c in config.clients if c.delivery_mode in {"ping", "push"}]
    if not callback_clients:
        return []
    names = ", ".join(c.name for c in callback_clients)
    receiver = config.receiver
    host, _, port = receiver.bind.rpartition(":")
    warnings = []
    if port == "0":
        warnings.append(
            f"the receiver listens on a random port ([receiver] bind = {receiver.bind!r}, port 0) "
            f"but the ping/push clients ({names}) need a client_notification_endpoint "
            "registered with the provider — bind a fixed port and set [receiver] public_url "
            "(or the clients' notification_endpoint) to the address the provider reaches"
        )
    issuer_host = urllib.parse.urlsplit(config.issuer).hostname or ""
    unreachable = [c.name for c in callback_clients if not c.notification_endpoint]
    if receiver.public_url is None and unreachable and not _is_loopback(issuer_host):
        warnings.append(
            f"no [receiver] public_url and no notification_endpoint for {', '.join(unreachable)}: "
            f"the provider at {config.issuer} would be told {host or receiver.bind}, which it "
            "cannot reach from its network — set [receiver] public_url"
        )
    return warnings


def _is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


def preflight(
    config_path: str | os.PathLike[str] | None,
    *,
    issuer: str | None = None,
    timeout: float | None = None,
    reachability_only: bool = False,
) -> ProviderConfig:
    """Load and check the user's input; raises CibaHarnessError with one clear message.
    `reachability_only`: of the provider, check only that discovery answers at all (plain
    pytest: what the answer says is the suites' verdict, e.g. CIBA-DISC-02)."""
    # Lazy here and below: the plugin loads this module in every pytest process; provider/,
    # the receiver and httpx load (starlette, uvicorn, httpx) only when a check needs them.
    from ciba_harness.provider.pki import resolve_pki_path

    path = Path(config_path) if config_path else default_profile_path()
    config = load_config(path, test_pki=resolve_pki_path)
    if issuer:
        config = config.with_issuer(issuer.rstrip("/"))
    if config.embedded:
        _check_reference_profile(config)
    _check_port(config.receiver.bind, "[receiver] bind", config)
    if config.device.driver == "webhook":
        _check_port(config.device.webhook_bind, "[device] webhook_bind", config)
    if not config.embedded:
        _check_discovery(config, timeout or config.budgets.request_timeout, reachability_only)
    return config


def _check_reference_profile(config: ProviderConfig) -> None:
    from ciba_harness.provider import ProfileError, load_profile

    try:
        load_profile(config.source)
    except (ProfileError, OSError, ValueError) as exc:
        raise CibaHarnessError(
            f"the reference provider cannot use {config.source}: {exc} — fix the file, or set "
            "[provider] issuer to your provider's URL"
        ) from None


def _check_port(bind: str, key: str, config: ProviderConfig) -> None:
    from ciba_harness.client._receiver import bind_socket

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


def _check_discovery(config: ProviderConfig, timeout: float, reachability_only: bool) -> None:
    from ciba_harness.client._httpx import HttpxTransport

    request = discovery_request(config.issuer, config.discovery_url)
    transport = HttpxTransport(timeout=timeout, verify=provider_trust(config))
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
    if reachability_only:
        return
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

"""The provider description: one TOML file, validated at load with errors naming file and key.

Secrets may be written `${ENV_VAR}`. Relative paths are resolved from the file's folder.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ciba_harness.core._errors import ConfigError
from ciba_harness.core._packages import fixtures_folder

__all__ = [
    "AUTH_METHODS",
    "DELIVERY_MODES",
    "DEVICE_DRIVERS",
    "Budgets",
    "ClientConfig",
    "DeviceConfig",
    "HttpCallTemplate",
    "ProviderConfig",
    "ReceiverConfig",
    "TestPkiResolver",
    "UsersConfig",
    "default_profile_path",
    "load_config",
]

AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "none",
]
DeliveryMode = Literal["poll", "ping", "push"]
AUTH_METHODS: tuple[str, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "none",
)
DELIVERY_MODES: tuple[str, ...] = ("poll", "ping", "push")
DEVICE_DRIVERS: tuple[str, ...] = ("embedded", "http", "webhook", "manual")
SECRET_METHODS = {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
ASYMMETRIC_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
# Keys of the shared tables that only the reference provider reads (its own loader checks them).
PROVIDER_USER_KEYS = frozenset({"extra_users", "blocked_users", "users"})
PROVIDER_CLIENT_KEYS = frozenset(
    {
        "jwks",
        "redirect_uris",
        "grant_types",
        "scope",
        "id_token_signed_response_alg",
        "tls_client_auth_subject_dn",
        "certificate_subject_dn",
        "certificate_fingerprint",
    }
)
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def default_profile_path() -> Path:
    """The embedded reference provider's profile, shipped in fixtures/."""
    return fixtures_folder() / "profiles" / "reference.toml"


@dataclass(frozen=True)
class ClientConfig:
    name: str
    client_id: str
    auth_method: AuthMethod
    delivery_mode: DeliveryMode
    client_secret: str | None = None
    private_key: PrivateKey | None = field(default=None, repr=False)
    private_key_path: Path | None = None
    signing_alg: str | None = None
    certificate_path: Path | None = None
    certificate_key_path: Path | None = None
    notification_endpoint: str | None = None
    user_code_required: bool = False
    sign_requests: bool = False
    request_signing_alg: str | None = None
    ciba_allowed: bool = True
    roles: tuple[str, ...] = ()

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(s for s in (self.client_secret,) if s)

    @property
    def can_sign(self) -> bool:
        return self.private_key is not None

    @property
    def fapi_fit(self) -> bool:
        """Usable under FAPI-CIBA: private_key_jwt with PS256 / ES256 or mTLS, a key to sign
        request objects, a certificate for certificate-bound tokens."""
        if self.auth_method == "private_key_jwt":
            method_ok = self.signing_alg in {"PS256", "ES256"}
        else:
            method_ok = self.auth_method in {"tls_client_auth", "self_signed_tls_client_auth"}
        return method_ok and self.can_sign and self.certificate_path is not None


@dataclass(frozen=True)
class UsersConfig:
    login_hint: str
    second_login_hint: str | None = None
    unknown_login_hint: str = "unknown-user-ciba-harness"
    user_code: str | None = None
    login_hint_token: str | None = None
    expired_login_hint_token: str | None = None
    unknown_login_hint_token: str | None = None
    login_hint_token_hs256_key: str | None = field(default=None, repr=False)
    # How the harness mints login_hint_tokens: HS256 with the provider's key (the reference
    # provider's default), or a JWS signed by the requesting client.
    login_hint_token_format: str = "provider_hs256"


LOGIN_HINT_TOKEN_FORMATS = ("provider_hs256", "client_signed")


@dataclass(frozen=True)
class HttpCallTemplate:
    """A templated HTTP call ({auth_req_id}, {login_hint}, {binding_message}, {action})."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DeviceConfig:
    driver: str = "embedded"
    token: str | None = field(default=None, repr=False)
    approve: HttpCallTemplate | None = None
    deny: HttpCallTemplate | None = None
    approve_delay: float = 0.0
    webhook_bind: str = "127.0.0.1:0"


@dataclass(frozen=True)
class ReceiverConfig:
    bind: str = "127.0.0.1:0"
    public_url: str | None = None
    tls_certificate: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class Budgets:
    request_timeout: float = 10.0
    max_wait: float = 60.0
    requested_expiry: int = 10
    approve_timeout: float = 10.0
    run_timeout: float = 300.0  # the whole run (every test still to run then fails at once)


@dataclass(frozen=True)
class ProviderConfig:
    source: Path
    issuer: str
    discovery_url: str | None
    profile: str
    clients: tuple[ClientConfig, ...]
    users: UsersConfig
    device: DeviceConfig
    receiver: ReceiverConfig
    budgets: Budgets
    ca_bundle: Path | None = None
    insecure_skip_verify: bool = False
    strict: bool = False
    dynamic_registration: bool = False
    #: FAPI-CIBA edition for FAPI-CIBA-06: "id1" (signed requests only, as the certification
    #: suite tests) or "draft" (unsigned requests accepted too; ambiguity A-19)
    fapi_ciba_version: str = "id1"
    #: the FAPI security profile combined with FAPI-CIBA: "1.0" or "2.0" (rows of the other
    #: one are judged as warnings)
    fapi_base: str = "1.0"

    @property
    def embedded(self) -> bool:
        return self.issuer == "embedded"

    @property
    def fapi(self) -> bool:
        return self.profile == "fapi-ciba"

    def with_issuer(self, issuer: str) -> ProviderConfig:
        return replace(self, issuer=issuer)

    def client(self, name: str) -> ClientConfig:
        for client in self.clients:
            if client.name == name:
                return client
        raise KeyError(name)

    def find_client(
        self,
        *,
        mode: str | None = None,
        auth_method: str | None = None,
        role: str | None = None,
        user_code: bool = False,
        signed: bool = False,
        ciba_allowed: bool = True,
        exclude: tuple[str, ...] = (),
    ) -> ClientConfig | None:
        """First client matching every criterion; the plain ones come first. Under the
        FAPI-CIBA profile, unless an auth_method is asked for, only clients FAPI allows
        (`fapi_fit`)."""
        candidates = self.clients
        if self.fapi:  # FAPI-fit clients first (stable), the others only on explicit request
            candidates = tuple(sorted(self.clients, key=lambda c: not c.fapi_fit))
        for client in candidates:
            if client.name in exclude or client.ciba_allowed != ciba_allowed:
                continue
            if self.fapi and not auth_method and not client.fapi_fit:
                continue
            if mode and client.delivery_mode != mode:
                continue
            if auth_method and client.auth_method != auth_method:
                continue
            if role and role not in client.roles:
                continue
            if client.user_code_required != user_code or client.sign_requests != signed:
                continue
            if not auth_method and client.auth_method == "none":
                continue
            return client
        return None

    @property
    def secrets(self) -> frozenset[str]:
        """Every configured secret value, for redaction."""
        values: set[str] = set()
        for client in self.clients:
            values |= client.secrets
        for value in (
            self.device.token,
            self.users.login_hint_token_hs256_key,
            self.users.login_hint_token,
            self.users.expired_login_hint_token,
            self.users.unknown_login_hint_token,
        ):
            if value:
                values.add(value)
        return frozenset(values)


# --- loading -------------------------------------------------------------------------------

#: Turns a `pki:NAME` file value into the path of that file of the generated test PKI, making
#: the PKI when missing (front-ends pass ciba_harness.provider.pki.resolve_pki_path): config
#: loading itself writes nothing, and the core knows nothing of the reference provider.
TestPkiResolver = Callable[[str], Path]
PKI_PREFIX = "pki:"


class _Reader:
    """Typed access to a TOML table with errors that name the file and the dotted key.

    Mistakes are collected, not raised, so that one pass finds every mistake of the file: a
    getter that finds one reports it and answers its default; `load_config` raises the
    first with all of them in `ConfigError.problems`."""

    def __init__(
        self, file: Path, table: Mapping[str, Any], prefix: str = "",
        problems: list[ConfigError] | None = None, test_pki: TestPkiResolver | None = None,
    ) -> None:
        self.file = file
        self.table = table
        self.prefix = prefix
        self.seen: set[str] = set()
        self.problems: list[ConfigError] = [] if problems is None else problems
        self.test_pki = test_pki

    def reject_unknown(self, also_allowed: frozenset[str] = frozenset()) -> None:
        """A key nobody reads is a typo until proven otherwise: name it, suggest the closest."""
        for key in self.table:
            if key in self.seen or key in also_allowed:
                continue
            known = sorted(self.seen | also_allowed)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            self.report(key, f"unknown key{hint}")

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=str(self.file), key=f"{self.prefix}{key}")

    def report(self, key: str, message: str, *, at: str | None = None) -> None:
        """Record a mistake of `key`; `at`: the key whose line shows it (a misspelling)."""
        error = self.error(key, message)
        error.line = _line_of_key(self.file, f"{self.prefix}{at or key}")
        self.problems.append(error)

    def reported(self, key: str) -> bool:
        return any(p.key == f"{self.prefix}{key}" for p in self.problems)

    def child(self, table: Mapping[str, Any], prefix: str) -> _Reader:
        return _Reader(self.file, table, prefix, self.problems, self.test_pki)

    def sub(self, key: str) -> _Reader:
        self.seen.add(key)
        value = self.table.get(key, {})
        if not isinstance(value, Mapping):
            self.report(key, "must be a table")
            value = {}
        return self.child(value, f"{self.prefix}{key}.")

    def _get(self, key: str, kind: type | tuple[type, ...], default: Any, required: bool) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if required:
                unread = [k for k in self.table if k not in self.seen]
                close = difflib.get_close_matches(key, unread, n=1, cutoff=0.75)
                if close:  # `isuer = ...`: one mistake, told at the misspelled key's line
                    self.seen.add(close[0])
                    self.report(key, f"is required (did you mean '{key}' instead of "
                                f"'{close[0]}'?)", at=close[0])
                else:
                    self.report(key, "is required")
            return default
        value = self.table[key]
        if isinstance(value, str):
            value = self._expand(key, value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.report(key, f"must be a {names}, got {type(value).__name__}")
            return default
        return value

    def _expand(self, key: str, value: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                self.report(key, f"refers to environment variable {name}, which is not set")
                return ""
            return os.environ[name]

        return _ENV_PATTERN.sub(substitute, value)

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        return self._get(key, str, default, required)

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self._get(key, bool, default, False))

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        """A finite number; positive, or (positive=False) at least zero."""
        value = float(self._get(key, float, default, False))
        if not math.isfinite(value):
            self.report(key, f"must be a finite number, got {value}")
        elif positive and value <= 0:
            self.report(key, f"must be positive, got {value}")
        elif value < 0:
            self.report(key, f"must not be negative, got {value}")
        else:
            return value
        return default

    def integer(self, key: str, default: int, *, positive: bool = True) -> int:
        value = int(self._get(key, int, default, False))
        if positive and value <= 0:
            self.report(key, f"must be positive, got {value}")
            return default
        return value

    def choice(
        self,
        key: str,
        choices: tuple[str, ...],
        default: str | None = None,
        *,
        required: bool = False,
    ) -> Any:
        value = self.text(key, default, required=required)
        if value is None and required:
            return choices[0]  # reported as missing
        if value not in choices:
            self.report(key, f"must be one of {', '.join(choices)}, got {value!r}")
            return default if default is not None else choices[0]
        return value

    def path(self, key: str, *, must_exist: bool = True) -> Path | None:
        """A file path relative to the profile, or `pki:NAME`: a file of the generated test
        PKI (loopback tests only; see `test_pki_file`)."""
        value: str | None = self.text(key)
        if value is None:
            return None
        if value.startswith(PKI_PREFIX):
            return self.test_pki_file(key, value)
        path: Path = (self.file.parent / value).resolve()
        if must_exist and not path.is_file():
            self.report(key, f"file {path} does not exist")
            return None
        return path

    def test_pki_file(self, key: str, reference: str) -> Path | None:
        """The file `reference` (`pki:NAME`) names, through the caller's `test_pki` resolver."""
        if self.test_pki is None:
            self.report(key, f"{reference!r} names a file of the generated test PKI, which only a "
                        "front-end makes: pytest, ciba-harness and the load runner do; in code, "
                        "load_config(path, test_pki=ciba_harness.provider.pki.resolve_pki_path)")
            return None
        try:
            return self.test_pki(reference)
        except (ValueError, OSError) as exc:
            self.report(key, str(exc))
            return None

    def text_list(self, key: str) -> tuple[str, ...]:
        self.seen.add(key)
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.report(key, "must be a list of strings")
            return ()
        return tuple(value)


def load_config(
    path: str | os.PathLike[str], *, test_pki: TestPkiResolver | None = None
) -> ProviderConfig:
    """Read and validate a provider description. Raises ConfigError (never a traceback-y error).

    `test_pki` resolves `pki:NAME` file values (and `[receiver] https`); without one such a
    value is a ConfigError naming its key."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(file)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a TOML file", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read: {exc}", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", file=str(file)) from None
    file = file.resolve()
    root = _Reader(file, raw, test_pki=test_pki)
    config = _read_config(root)
    if root.problems:
        first = root.problems[0]
        first.problems = list(root.problems)
        raise first
    return config


def _read_config(root: _Reader) -> ProviderConfig:
    file, raw = root.file, root.table
    known = {"provider", "budgets", "device", "receiver", "users", "clients", "reference_provider"}
    for key in raw:
        if key not in known:
            root.report(key, f"unknown section (known: {', '.join(sorted(known))})")

    provider = root.sub("provider")
    issuer = provider.text("issuer", "embedded", required=True)
    if issuer != "embedded" and not re.match(r"^https?://[^/\s]+", issuer):
        provider.report("issuer", f"must be an http(s) URL or 'embedded', got {issuer!r}")
    profile = provider.choice("profile", ("ciba", "fapi-ciba"), "ciba")
    fapi_ciba_version = provider.choice("fapi_ciba_version", ("id1", "draft"), "id1")
    fapi_base = provider.choice("fapi_base", ("1.0", "2.0"), "1.0")
    budgets_reader = root.sub("budgets")
    budgets = Budgets(
        request_timeout=budgets_reader.number("request_timeout", 10.0),
        max_wait=budgets_reader.number("max_wait", 60.0),
        requested_expiry=budgets_reader.integer("requested_expiry", 10),
        approve_timeout=budgets_reader.number("approve_timeout", 10.0),
        run_timeout=budgets_reader.number("run_timeout", 300.0),
    )
    clients = _load_clients(root)
    if clients and not any(c.ciba_allowed and c.auth_method != "none" for c in clients):
        root.report("clients", "needs at least one confidential client allowed to use CIBA")
    receiver = root.sub("receiver")
    _check_bind(receiver, "bind", receiver.text("bind", "127.0.0.1:0"))
    device = _load_device(root.sub("device"))
    users = root.sub("users")
    config = ProviderConfig(
        source=file,
        issuer=issuer.rstrip("/") if issuer != "embedded" else issuer,
        discovery_url=provider.text("discovery_url"),
        profile=profile,
        clients=clients,
        users=UsersConfig(
            login_hint=users.text("login_hint", required=True),
            second_login_hint=users.text("second_login_hint"),
            unknown_login_hint=users.text("unknown_login_hint", "unknown-user-ciba-harness"),
            user_code=users.text("user_code"),
            login_hint_token=users.text("login_hint_token"),
            expired_login_hint_token=users.text("expired_login_hint_token"),
            unknown_login_hint_token=users.text("unknown_login_hint_token"),
            login_hint_token_hs256_key=users.text("login_hint_token_hs256_key"),
            login_hint_token_format=users.choice(
                "login_hint_token_format", LOGIN_HINT_TOKEN_FORMATS, "provider_hs256"
            ),
        ),
        device=device,
        receiver=_load_receiver(receiver),
        budgets=budgets,
        ca_bundle=provider.path("ca_bundle"),
        insecure_skip_verify=provider.flag("insecure_skip_verify"),
        strict=provider.flag("strict"),
        dynamic_registration=provider.flag("dynamic_registration"),
        fapi_ciba_version=fapi_ciba_version,
        fapi_base=fapi_base,
    )
    for section in (provider, budgets_reader, receiver):
        section.reject_unknown()
    # [users] and [[clients]] are shared with the reference provider, which reads more keys.
    users.reject_unknown(PROVIDER_USER_KEYS)
    return config


_TABLE_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _line_of_key(file: Path, dotted: str) -> int | None:
    """Where `dotted` (e.g. `clients[1].auth_method`, `provider.issuer`) is written in the
    file: the key's line, else its table's header line; None when neither is found."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    table, _, leaf = dotted.rpartition(".")
    counts: dict[str, int] = {}
    current = ""
    header_line = None
    for number, line in enumerate(lines, start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            name = header.group(2)
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                current = f"{name}[{counts[name]}]"
            else:
                current = name
            if current == table:
                header_line = number
            if not table and name == leaf and header_line is None:
                header_line = number  # a whole section (e.g. `clients`, an unknown one)
            continue
        key = _KEY_LINE.match(line)
        if key and current == table and key.group(1) == leaf:
            return number
    return header_line


def _load_receiver(reader: _Reader) -> ReceiverConfig:
    certificate = reader.path("tls_certificate")
    key = reader.path("tls_key")
    if (certificate is None) != (key is None):
        reader.report("tls_key" if key is None else "tls_certificate",
                      "tls_certificate and tls_key go together")
    if reader.flag("https") and certificate is None:
        # A certificate for 127.0.0.1 / localhost from the generated test PKI; the provider
        # must trust its CA (pki:ca.pem).
        certificate = reader.test_pki_file("https", PKI_PREFIX + "server.pem")
        key = reader.test_pki_file("https", PKI_PREFIX + "server.key") if certificate else None
    public_url = reader.text("public_url")
    if public_url is not None and not re.match(r"^https?://[^/\s]+", public_url):
        reader.report("public_url", f"must be an http(s) URL, got {public_url!r}")
    return ReceiverConfig(
        bind=reader.text("bind", "127.0.0.1:0"),
        public_url=public_url,
        tls_certificate=certificate,
        tls_key=key,
    )


def _check_bind(reader: _Reader, key: str, value: str) -> None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        reader.report(key, f"must be HOST:PORT, got {value!r}")


def _load_device(reader: _Reader) -> DeviceConfig:
    driver = reader.choice("driver", DEVICE_DRIVERS, "embedded")
    templates: dict[str, HttpCallTemplate | None] = {}
    for action in ("approve", "deny"):
        if action not in reader.table:
            templates[action] = None
            continue
        call = reader.sub(action)
        call.seen |= {"form", "headers", "json"}
        form = call.table.get("form")
        headers = call.table.get("headers", {})
        if not isinstance(headers, Mapping) or (form is not None and not isinstance(form, Mapping)):
            reader.report(action, "headers and form must be tables of strings")
            templates[action] = None
            continue
        templates[action] = HttpCallTemplate(
            method=call.text("method", "POST"),
            url=call.text("url", "", required=True),
            headers={k: call._expand(f"headers.{k}", str(v)) for k, v in headers.items()},
            json=_expand_json(call, "json", call.table.get("json")),
            form=(
                {k: call._expand(f"form.{k}", str(v)) for k, v in form.items()}
                if form is not None
                else None
            ),
        )
        call.reject_unknown()
    reader.seen |= {"approve", "deny"}
    if driver == "http" and (templates["approve"] is None or templates["deny"] is None):
        reader.report("driver", "the http driver needs [device.approve] and [device.deny]")
    webhook_bind = reader.text("webhook_bind", "127.0.0.1:0")
    _check_bind(reader, "webhook_bind", webhook_bind)
    device = DeviceConfig(
        driver=driver,
        token=reader.text("token"),
        approve=templates["approve"],
        deny=templates["deny"],
        approve_delay=reader.number("approve_delay", 0.0, positive=False),
        webhook_bind=webhook_bind,
    )
    reader.reject_unknown()
    return device


def _expand_json(reader: _Reader, key: str, value: Any) -> Any:
    """`${ENV}` substitution in every string of a JSON template (secrets live there too)."""
    if isinstance(value, str):
        return reader._expand(key, value)
    if isinstance(value, Mapping):
        return {k: _expand_json(reader, f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_json(reader, f"{key}[{i}]", v) for i, v in enumerate(value)]
    return value


def _load_clients(root: _Reader) -> tuple[ClientConfig, ...]:
    raw_clients = root.table.get("clients")
    if not isinstance(raw_clients, list) or not raw_clients:
        root.report("clients", "at least one [[clients]] entry is required")
        return ()
    clients: list[ClientConfig] = []
    names: set[str] = set()
    for index, table in enumerate(raw_clients):
        if not isinstance(table, Mapping):
            root.report(f"clients[{index}]", "must be a table")
            continue
        reader = root.child(table, f"clients[{index}].")
        client_id = reader.text("client_id", f"clients[{index}]", required=True)
        name = reader.text("name", client_id)
        if name in names:
            reader.report("name", f"duplicate client name {name!r}")
        names.add(name)
        method = reader.choice("auth_method", AUTH_METHODS, required=True)
        mode = reader.choice("delivery_mode", DELIVERY_MODES, "poll")
        secret = reader.text("client_secret")
        if method in SECRET_METHODS and not secret and not reader.reported("client_secret"):
            reader.report("client_secret", f"is required for auth_method {method}")
        key_path = reader.path("private_key")
        key = _load_private_key(reader, key_path) if key_path else None
        if method == "private_key_jwt" and key is None and not reader.reported("private_key"):
            reader.report("private_key", "is required for auth_method private_key_jwt")
        signing_alg = reader.text("signing_alg")
        if signing_alg is None:
            signing_alg = "HS256" if method == "client_secret_jwt" else _default_alg(key)
        if method == "private_key_jwt" and key is not None and signing_alg not in ASYMMETRIC_ALGS:
            reader.report("signing_alg", f"{signing_alg!r} is not an asymmetric JWS alg")
        certificate = reader.path("certificate")
        certificate_key = reader.path("certificate_key")
        if method in {"tls_client_auth", "self_signed_tls_client_auth"} and not (
            certificate and certificate_key
        ):
            reader.report(
                "certificate", f"certificate and certificate_key are required for {method}"
            )
        sign_requests = reader.flag("sign_requests")
        if sign_requests and key is None and not reader.reported("private_key"):
            reader.report("sign_requests", "needs a private_key to sign requests with")
        clients.append(
            ClientConfig(
                name=name,
                client_id=client_id,
                auth_method=method,
                delivery_mode=mode,
                client_secret=secret,
                private_key=key,
                private_key_path=key_path,
                signing_alg=signing_alg,
                certificate_path=certificate,
                certificate_key_path=certificate_key,
                notification_endpoint=reader.text("notification_endpoint"),
                user_code_required=reader.flag("user_code_required"),
                sign_requests=sign_requests,
                request_signing_alg=reader.text(
                    "request_signing_alg", signing_alg if key else None
                ),
                ciba_allowed=reader.flag("ciba_allowed", True),
                roles=reader.text_list("roles"),
            )
        )
        reader.reject_unknown(PROVIDER_CLIENT_KEYS)
    return tuple(clients)


def _default_alg(key: PrivateKey | None) -> str | None:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    return None


def _load_private_key(reader: _Reader, path: Path) -> PrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        reader.report("private_key", f"{path} is not an unencrypted PEM private key ({exc})")
        return None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        reader.report("private_key", f"{path} holds a {type(key).__name__}; RSA or EC needed")
        return None
    return key

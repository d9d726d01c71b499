"""Settings of the reference provider, parsed from a harness profile (TOML).

The provider reads the profile's ``[[clients]]``, ``[users]``, ``[device]`` and
``[reference_provider]`` sections. Everything else in the profile belongs to the harness and is
ignored here. Key files are read once, at load time, so that creating an app never touches the
file system.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUTH_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt",
     "tls_client_auth", "self_signed_tls_client_auth", "none"}
)
MTLS_METHODS = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})
PROFILES = ("ciba", "fapi-ciba")
DELIVERY_MODES = ("poll", "ping", "push")
REQUEST_SIGNING_ALGS = ("RS256", "PS256", "ES256")
ID_TOKEN_ALGS = ("RS256", "PS256", "ES256")


class ProfileError(ValueError):
    """The profile cannot be used by the reference provider (message names the cause)."""


@dataclass(frozen=True)
class ClientSettings:
    """One pre-registered client (a ``[[clients]]`` entry)."""

    client_id: str
    auth_method: str
    delivery_mode: str = "poll"
    name: str = ""
    client_secret: str | None = None
    #: token_endpoint_auth_signing_alg (client assertions); None = any advertised alg
    signing_alg: str | None = None
    #: PEM of the client's public key (derived from ``private_key`` in the profile)
    public_key_pem: bytes | None = None
    #: registered backchannel_authentication_request_signing_alg (only with sign_requests)
    sign_requests: bool = False
    request_signing_alg: str | None = None
    #: registered backchannel_user_code_parameter
    user_code_required: bool = False
    #: False: confidential client without the CIBA grant
    ciba_allowed: bool = True
    notification_endpoint: str | None = None
    roles: tuple[str, ...] = ()
    #: PEM of the client's certificate (profile key ``certificate``): the registered
    #: certificate of a self_signed_tls_client_auth client, the default subject DN of a
    #: tls_client_auth client
    certificate_pem: bytes | None = None
    #: RFC 8705 ``tls_client_auth_subject_dn`` (RFC 4514 string)
    tls_client_auth_subject_dn: str | None = None


@dataclass(frozen=True)
class UserRecord:
    """A user the provider knows; ``user_id`` is both the login_hint and the ``sub``."""

    user_id: str
    user_code: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """Everything the reference provider needs; build it with :func:`load_profile`."""

    clients: Mapping[str, ClientSettings]
    users: Mapping[str, UserRecord]
    signing_key_pem: bytes
    device_token: str
    login_hint_token_key: str | None = None
    id_token_alg: str = "RS256"
    interval: int = 5
    default_expires_in: int = 120
    max_requested_expiry: int = 3600
    slow_down_increment: int = 5
    access_token_lifetime: int = 300
    binding_message_max: int = 20
    request_object_max_lifetime: int = 3600
    notification_timeout: float = 3.0
    device_webhook_url: str | None = None
    clock_skew: int = 30
    poll_interval_tolerance: float = 0.2
    blocked_users: frozenset[str] = field(default_factory=frozenset)
    refresh_token_lifetime: int = 86400
    transaction_retention: int = 600
    #: TLS verification of https notification / webhook endpoints
    notification_verify_tls: bool = True
    notification_ca_file: Path | None = None
    #: "ciba" or "fapi-ciba" (the FAPI-CIBA rules, docs/provider.md)
    profile: str = "ciba"
    #: HTTPS serving (start_provider): server certificate chain and key (PEM files)
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    #: CA bundle that issues the certificates of tls_client_auth clients
    tls_client_ca: Path | None = None
    #: ``[reference_provider] policies``: names of policies / combinations (policies.py)
    policies: tuple[str, ...] = ()
    source: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None


# ---------------------------------------------------------------------------------------------


def _public_pem_from_private(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"key file {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ProfileError(f"key file {path}: only RSA and EC keys are supported")
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read_private_pem(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"signing key {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ProfileError(f"signing key {path}: only RSA and EC keys are supported")
    return data


def resolve_file(base: Path, value: str, what: str, *, must_exist: bool = True) -> Path:
    """A file named in the profile: relative to ``base``, or ``pki:NAME`` of the generated
    test PKI (``pki.py``). Raises ProfileError when it does not exist (``must_exist``)."""
    from ciba_harness.provider.pki import is_pki_reference, resolve_pki_path

    if is_pki_reference(value):
        try:
            return resolve_pki_path(value)
        except (ValueError, OSError) as exc:
            raise ProfileError(f"{what}: {exc}") from None
    path = (base / value).resolve()
    if must_exist and not path.is_file():
        raise ProfileError(f"{what} {path} does not exist")
    return path


def _read_certificate(path: Path, what: str) -> bytes:
    from cryptography import x509

    data = path.read_bytes()
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ProfileError(f"{what} {path} is not a PEM certificate") from None
    return data


def _get(section: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    value = section.get(key)
    if value is None:
        return None
    types = typ if isinstance(typ, tuple) else (typ,)
    if isinstance(value, bool) and bool not in types:
        raise ProfileError(f"{where}.{key} must not be a boolean")
    if not isinstance(value, types):
        raise ProfileError(f"{where}.{key} has the wrong type ({type(value).__name__})")
    return value


def _positive_int(section: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = _get(section, key, int, where)
    if value is None:
        return default
    if value <= 0:
        raise ProfileError(f"{where}.{key} must be a positive integer")
    return int(value)


def _positive_float(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = _get(section, key, (int, float), where)
    if value is None:
        return default
    if value < 0:
        raise ProfileError(f"{where}.{key} must not be negative")
    return float(value)


def _parse_client(raw: Mapping[str, Any], base: Path, index: int) -> ClientSettings:
    where = f"clients[{index}]"
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where} must be a table")
    client_id = _get(raw, "client_id", str, where)
    if not client_id:
        raise ProfileError(f"{where}.client_id is missing")
    where = f"client {client_id!r}"
    auth_method = _get(raw, "auth_method", str, where) or "client_secret_basic"
    if auth_method not in AUTH_METHODS:
        raise ProfileError(f"{where}: unknown auth_method {auth_method!r}")
    mode = _get(raw, "delivery_mode", str, where) or "poll"
    if mode not in DELIVERY_MODES:
        raise ProfileError(f"{where}: unknown delivery_mode {mode!r}")
    secret = _get(raw, "client_secret", str, where)
    if auth_method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        if not secret:
            raise ProfileError(f"{where}: auth_method {auth_method} needs client_secret")
    public_pem: bytes | None = None
    key_path = _get(raw, "private_key", str, where)
    if key_path:
        public_pem = _public_pem_from_private(
            resolve_file(base, key_path, f"{where}.private_key", must_exist=False)
        )
    if auth_method == "private_key_jwt" and public_pem is None:
        raise ProfileError(f"{where}: auth_method private_key_jwt needs private_key")
    signing_alg = _get(raw, "signing_alg", str, where)
    sign_requests = bool(_get(raw, "sign_requests", bool, where) or False)
    request_alg = _get(raw, "request_signing_alg", str, where)
    if sign_requests:
        if public_pem is None:
            raise ProfileError(f"{where}: sign_requests needs private_key")
        request_alg = request_alg or signing_alg or "RS256"
        if request_alg not in REQUEST_SIGNING_ALGS:
            raise ProfileError(f"{where}: request_signing_alg {request_alg!r} is not supported")
    else:
        request_alg = None
    roles = _get(raw, "roles", list, where) or []
    if not all(isinstance(r, str) for r in roles):
        raise ProfileError(f"{where}.roles must be a list of strings")
    ciba_allowed = _get(raw, "ciba_allowed", bool, where)
    cert_rel = _get(raw, "certificate", str, where)
    certificate_pem = None
    if cert_rel:
        cert_path = resolve_file(base, cert_rel, f"{where}.certificate")
        certificate_pem = _read_certificate(cert_path, f"{where}.certificate")
    subject_dn = _get(raw, "tls_client_auth_subject_dn", str, where)
    if subject_dn is not None:
        from cryptography import x509

        try:
            x509.Name.from_rfc4514_string(subject_dn)
        except ValueError:
            raise ProfileError(f"{where}.tls_client_auth_subject_dn is not an RFC 4514 DN") from None
    if auth_method == "tls_client_auth" and subject_dn is None and certificate_pem is None:
        raise ProfileError(
            f"{where}: tls_client_auth needs tls_client_auth_subject_dn or certificate"
        )
    if auth_method == "self_signed_tls_client_auth" and certificate_pem is None:
        raise ProfileError(f"{where}: self_signed_tls_client_auth needs certificate")
    return ClientSettings(
        client_id=client_id,
        auth_method=auth_method,
        delivery_mode=mode,
        name=_get(raw, "name", str, where) or client_id,
        client_secret=secret,
        signing_alg=signing_alg,
        public_key_pem=public_pem,
        sign_requests=sign_requests,
        request_signing_alg=request_alg,
        user_code_required=bool(_get(raw, "user_code_required", bool, where) or False),
        ciba_allowed=True if ciba_allowed is None else ciba_allowed,
        notification_endpoint=_get(raw, "notification_endpoint", str, where),
        roles=tuple(roles),
        certificate_pem=certificate_pem,
        tls_client_auth_subject_dn=subject_dn,
    )


def settings_from_dict(data: Mapping[str, Any], base_dir: Path, source: Path | None = None) -> (
    ProviderSettings
):
    """Build settings from an already parsed profile; relative paths resolve from base_dir."""
    raw_clients = data.get("clients", [])
    if not isinstance(raw_clients, list):
        raise ProfileError("[[clients]] must be an array of tables")
    clients: dict[str, ClientSettings] = {}
    for i, raw in enumerate(raw_clients):
        client = _parse_client(raw, base_dir, i)
        if client.client_id in clients:
            raise ProfileError(f"duplicate client_id {client.client_id!r}")
        clients[client.client_id] = client

    users_sec = data.get("users", {})
    if not isinstance(users_sec, Mapping):
        raise ProfileError("[users] must be a table")
    users: dict[str, UserRecord] = {}
    first = _get(users_sec, "login_hint", str, "users")
    if first:
        users[first] = UserRecord(first, _get(users_sec, "user_code", str, "users"))
    second = _get(users_sec, "second_login_hint", str, "users")
    if second and second not in users:
        users[second] = UserRecord(second, None)

    ref = data.get("reference_provider", {})
    if not isinstance(ref, Mapping):
        raise ProfileError("[reference_provider] must be a table")
    where = "reference_provider"
    for extra in _get(ref, "extra_users", list, where) or []:
        if not isinstance(extra, str) or not extra:
            raise ProfileError(f"{where}.extra_users must be a list of non-empty strings")
        users.setdefault(extra, UserRecord(extra, None))
    if not users:
        raise ProfileError("the profile names no user ([users] login_hint)")

    key_rel = _get(ref, "signing_key", str, where)
    if not key_rel:
        raise ProfileError(f"{where}.signing_key is missing")
    signing_pem = _read_private_pem(
        resolve_file(base_dir, key_rel, f"{where}.signing_key", must_exist=False)
    )
    id_alg = _get(ref, "id_token_alg", str, where) or "RS256"
    if id_alg not in ID_TOKEN_ALGS:
        raise ProfileError(f"{where}.id_token_alg {id_alg!r} is not supported")

    device = data.get("device", {})
    if not isinstance(device, Mapping):
        raise ProfileError("[device] must be a table")
    device_token = _get(device, "token", str, "device")
    if not device_token:
        raise ProfileError("[device] token is missing (the device API needs it)")

    blocked = _get(ref, "blocked_users", list, where) or []
    if not all(isinstance(b, str) for b in blocked):
        raise ProfileError(f"{where}.blocked_users must be a list of strings")
    for name in blocked:
        users.setdefault(name, UserRecord(name, None))  # known, but refused (access_denied)
    webhook = _get(ref, "device_webhook_url", str, where) or None

    verify = _get(ref, "notification_verify_tls", bool, where)
    ca_rel = _get(ref, "notification_ca_file", str, where)
    ca_file: Path | None = None
    if ca_rel:
        ca_file = resolve_file(base_dir, ca_rel, f"{where}.notification_ca_file")
    profile = _get(ref, "profile", str, where) or "ciba"
    if profile not in PROFILES:
        raise ProfileError(f"{where}.profile must be one of {', '.join(PROFILES)}")
    tls_files: dict[str, Path | None] = {}
    for name in ("tls_certificate", "tls_key", "tls_client_ca"):
        value = _get(ref, name, str, where)
        tls_files[name] = resolve_file(base_dir, value, f"{where}.{name}") if value else None
    if (tls_files["tls_certificate"] is None) != (tls_files["tls_key"] is None):
        raise ProfileError(f"{where}: tls_certificate and tls_key go together")
    policy_names = _get(ref, "policies", list, where) or []
    if not all(isinstance(n, str) for n in policy_names):
        raise ProfileError(f"{where}.policies must be a list of policy names")
    from ciba_harness.provider.policies import PolicyError, resolve_policies

    try:
        resolve_policies(policy_names)
    except PolicyError as exc:
        raise ProfileError(f"{where}.policies: {exc}") from None
    if tls_files["tls_client_ca"] is None and any(
        c.auth_method == "tls_client_auth" for c in clients.values()
    ):
        raise ProfileError(f"{where}.tls_client_ca is required by tls_client_auth clients")
    return ProviderSettings(
        clients=clients,
        users=users,
        signing_key_pem=signing_pem,
        device_token=device_token,
        login_hint_token_key=_get(users_sec, "login_hint_token_hs256_key", str, "users"),
        id_token_alg=id_alg,
        interval=_positive_int(ref, "interval", 5, where),
        default_expires_in=_positive_int(ref, "default_expires_in", 120, where),
        max_requested_expiry=_positive_int(ref, "max_requested_expiry", 3600, where),
        slow_down_increment=_positive_int(ref, "slow_down_increment", 5, where),
        access_token_lifetime=_positive_int(ref, "access_token_lifetime", 300, where),
        binding_message_max=_positive_int(ref, "binding_message_max", 20, where),
        request_object_max_lifetime=_positive_int(ref, "request_object_max_lifetime", 3600, where),
        notification_timeout=_positive_float(ref, "notification_timeout", 3.0, where),
        device_webhook_url=webhook,
        clock_skew=_positive_int(ref, "clock_skew", 30, where),
        poll_interval_tolerance=_positive_float(ref, "poll_interval_tolerance", 0.2, where),
        blocked_users=frozenset(blocked),
        refresh_token_lifetime=_positive_int(ref, "refresh_token_lifetime", 86400, where),
        transaction_retention=_positive_int(ref, "transaction_retention", 600, where),
        notification_verify_tls=True if verify is None else verify,
        notification_ca_file=ca_file,
        profile=profile,
        tls_certificate=tls_files["tls_certificate"],
        tls_key=tls_files["tls_key"],
        tls_client_ca=tls_files["tls_client_ca"],
        policies=tuple(policy_names),
        source=source,
    )


def load_profile(path: str | Path) -> ProviderSettings:
    """Parse a profile TOML; relative paths inside it are resolved from the file's directory."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read profile {p}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {p} is not valid TOML: {exc}") from None
    return settings_from_dict(data, p.resolve().parent, source=p.resolve())


#: the package the reference profiles ship in (the repository's fixtures/, see setup.py)
FIXTURES_PACKAGE = "ciba_harness_fixtures"


def default_profile_path() -> Path:
    """The reference provider's own profile, shipped in fixtures/ (found without importing the
    harness: the provider shares no code with it)."""
    spec = importlib.util.find_spec(FIXTURES_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise ProfileError(
            f"the package {FIXTURES_PACKAGE} is not installed — reinstall ciba-harness "
            "(`pip install ciba-harness`, or `pip install -e .` in a checkout)"
        )
    return Path(locations[0]) / "profiles" / "reference.toml"

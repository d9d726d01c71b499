"""load_config: the shipped profile loads; every invalid description gives a ConfigError that
names the file and the dotted key."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from core_helpers import KEYS
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ciba_harness import ConfigError, default_profile_path, load_config
from ciba_harness.core._config import ProviderConfig

BASE = """\
[provider]
issuer = "https://op.example.com/"

[users]
login_hint = "alice"

[[clients]]
name = "basic"
client_id = "basic-id"
client_secret = "basic-secret-123"
auth_method = "client_secret_basic"
"""


def write(tmp_path: Path, text: str, name: str = "profile.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> ProviderConfig:
    return load_config(write(tmp_path, text))


def config_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    # Every error names the file it is about.
    assert str(path.resolve()) in str(error) or str(path) in str(error)
    return error


def assert_key(error: ConfigError, key: str, *words: str) -> None:
    assert error.key == key, str(error)
    assert f"key '{key}'" in str(error)
    for word in words:
        assert word in str(error), str(error)


# --- the shipped profile ---------------------------------------------------------------------


def test_reference_profile_loads() -> None:
    config = load_config(default_profile_path())
    assert config.embedded
    assert config.profile == "ciba"
    assert config.budgets.request_timeout == 5.0
    assert config.budgets.requested_expiry == 3
    assert config.users.login_hint == "alice"
    assert config.device.driver == "embedded"
    assert config.device.token == "device-api-test-token"
    names = [c.name for c in config.clients]
    assert len(names) == len(set(names)) == 13
    rs256 = config.client("poll-rs256")
    assert isinstance(rs256.private_key, rsa.RSAPrivateKey)
    assert rs256.private_key_path == (KEYS / "client-rs256.pem").resolve()
    assert isinstance(config.client("poll-es256").private_key, ec.EllipticCurvePrivateKey)
    assert config.client("poll-signed").sign_requests
    assert config.client("poll-signed").request_signing_alg == "RS256"
    assert config.client("poll-secret-jwt").signing_alg == "HS256"
    assert not config.client("no-ciba").ciba_allowed
    assert config.client("poll-second").roles == ("second",)
    assert config.client("push-basic").delivery_mode == "push"
    # Secrets are collected for redaction.
    assert "poll-basic-secret-6c1f0e2a" in config.secrets
    assert "device-api-test-token" in config.secrets
    # The plain poll client comes first; the selectors honour every criterion.
    assert config.find_client(mode="poll") is config.client("poll-basic")
    assert config.find_client(mode="ping") is config.client("ping-basic")
    assert config.find_client(signed=True) is config.client("poll-signed")
    assert config.find_client(user_code=True) is config.client("poll-usercode")
    assert config.find_client(ciba_allowed=False) is config.client("no-ciba")
    assert config.find_client(role="second") is config.client("poll-second")
    assert config.find_client(auth_method="none") is config.client("public")


def test_minimal_profile_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    assert config.issuer == "https://op.example.com"  # trailing slash dropped
    assert config.source == (tmp_path / "profile.toml").resolve()
    assert config.profile == "ciba"
    assert config.budgets.max_wait == 60.0
    assert config.receiver.bind == "127.0.0.1:0"
    client = config.client("basic")
    assert client.delivery_mode == "poll"
    assert client.ciba_allowed
    assert client.private_key is None
    with pytest.raises(KeyError):
        config.client("nope")


def test_relative_paths_resolve_from_the_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").mkdir()
    shutil.copy(KEYS / "client-rs256.pem", tmp_path / "keys" / "k.pem")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    path = write(
        tmp_path,
        BASE
        + """
[[clients]]
name = "jwt"
client_id = "jwt"
auth_method = "private_key_jwt"
private_key = "../keys/k.pem"
""",
        name="profiles/p.toml",
    )
    client = load_config(path).client("jwt")
    assert client.private_key_path == (tmp_path / "keys" / "k.pem").resolve()
    assert isinstance(client.private_key, rsa.RSAPrivateKey)
    assert client.signing_alg == "RS256"
    assert client.request_signing_alg == "RS256"


def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIBA_TEST_SECRET", "from-the-environment")
    config = load_text(
        tmp_path,
        BASE.replace('"basic-secret-123"', '"pre-${CIBA_TEST_SECRET}-post"'),
    )
    assert config.client("basic").client_secret == "pre-from-the-environment-post"
    assert "pre-from-the-environment-post" in config.secrets


def test_env_substitution_unset_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIBA_TEST_UNSET_VARIABLE", raising=False)
    error = config_error(
        tmp_path, BASE.replace('"basic-secret-123"', '"${CIBA_TEST_UNSET_VARIABLE}"')
    )
    assert_key(error, "clients[0].client_secret", "CIBA_TEST_UNSET_VARIABLE", "not set")


def test_env_substitution_in_device_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIBA_TEST_HOOK_TOKEN", "hook-token-value")
    config = load_text(
        tmp_path,
        BASE
        + """
[device]
driver = "http"
[device.approve]
url = "https://op.example.com/hook/{auth_req_id}"
headers = { Authorization = "Bearer ${CIBA_TEST_HOOK_TOKEN}" }
form = { token = "${CIBA_TEST_HOOK_TOKEN}", action = "{action}" }
[device.deny]
url = "https://op.example.com/hook/{auth_req_id}"
json = { token = "${CIBA_TEST_HOOK_TOKEN}", nested = ["${CIBA_TEST_HOOK_TOKEN}"] }
""",
    )
    approve, deny = config.device.approve, config.device.deny
    assert approve is not None and deny is not None
    assert approve.method == "POST"
    assert approve.headers["Authorization"] == "Bearer hook-token-value"
    assert approve.form == {"token": "hook-token-value", "action": "{action}"}
    assert deny.json == {"token": "hook-token-value", "nested": ["hook-token-value"]}


# --- invalid files ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "directory" in str(info.value)


def test_bad_toml(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[provider\nissuer = ")
    assert "not valid TOML" in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[provider]\nissuer = "\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


# --- invalid keys: (TOML, dotted key, words the message contains) ----------------------------

KEY_ERRORS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("unknown section", BASE + "\n[bogus]\nx = 1\n", "bogus", ("unknown section",)),
    (
        "provider not a table",
        BASE.replace('[provider]\nissuer = "https://op.example.com/"\n', 'provider = "x"\n'),
        "provider",
        ("table",),
    ),
    (
        "missing issuer",
        BASE.replace('issuer = "https://op.example.com/"', 'profile = "ciba"'),
        "provider.issuer",
        ("required",),
    ),
    (
        "issuer not a string",
        BASE.replace('"https://op.example.com/"', "42"),
        "provider.issuer",
        ("str",),
    ),
    (
        "bad issuer URL",
        BASE.replace("https://op.example.com/", "ftp://op.example.com"),
        "provider.issuer",
        ("URL", "ftp://op.example.com"),
    ),
    (
        "issuer without host",
        BASE.replace("https://op.example.com/", "op.example.com"),
        "provider.issuer",
        ("URL",),
    ),
    (
        "bad profile",
        BASE.replace('issuer = "https://op.example.com/"', 'issuer = "https://op"\nprofile = "fapi2"'),
        "provider.profile",
        ("ciba", "fapi-ciba", "fapi2"),
    ),
    ("missing clients", BASE[: BASE.index("[[clients]]")], "clients", ("[[clients]]",)),
    (
        "clients not an array of tables",
        BASE[: BASE.index("[[clients]]")] + 'clients = "basic"\n',
        "clients",
        ("[[clients]]",),
    ),
    (
        "client without client_id",
        BASE.replace('client_id = "basic-id"\n', ""),
        "clients[0].client_id",
        ("required",),
    ),
    (
        "unknown auth_method",
        BASE.replace('"client_secret_basic"', '"client_secret_magic"'),
        "clients[0].auth_method",
        ("client_secret_magic", "private_key_jwt"),
    ),
    (
        "missing auth_method",
        BASE.replace('auth_method = "client_secret_basic"\n', ""),
        "clients[0].auth_method",
        ("required",),
    ),
    (
        "unknown delivery mode",
        BASE + 'delivery_mode = "pull"\n',
        "clients[0].delivery_mode",
        ("poll", "pull"),
    ),
    (
        "secret method without secret",
        BASE.replace('client_secret = "basic-secret-123"\n', ""),
        "clients[0].client_secret",
        ("client_secret_basic",),
    ),
    (
        "client_secret_post without secret",
        BASE.replace('client_secret = "basic-secret-123"\n', "").replace(
            "client_secret_basic", "client_secret_post"
        ),
        "clients[0].client_secret",
        ("client_secret_post",),
    ),
    (
        "private_key_jwt without key",
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n',
        "clients[1].private_key",
        ("private_key_jwt",),
    ),
    (
        "key file missing",
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        'private_key = "no-such-key.pem"\n',
        "clients[1].private_key",
        ("no-such-key.pem", "does not exist"),
    ),
    (
        "private_key_jwt with a MAC alg",
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        f'private_key = "{KEYS / "client-rs256.pem"}"\nsigning_alg = "HS256"\n',
        "clients[1].signing_alg",
        ("HS256",),
    ),
    (
        "duplicate client names",
        BASE + BASE[BASE.index("[[clients]]") :].replace("basic-id", "other-id"),
        "clients[1].name",
        ("duplicate", "basic"),
    ),
    (
        "duplicate client ids without names",
        BASE.replace('name = "basic"\n', "")
        + BASE[BASE.index("[[clients]]") :].replace('name = "basic"\n', ""),
        "clients[1].name",
        ("duplicate", "basic-id"),
    ),
    (
        "sign_requests without key",
        BASE + "sign_requests = true\n",
        "clients[0].sign_requests",
        ("private_key",),
    ),
    (
        "tls_client_auth without certificate",
        BASE + '\n[[clients]]\nname = "mtls"\nclient_id = "mtls"\nauth_method = "tls_client_auth"\n',
        "clients[1].certificate",
        ("certificate_key",),
    ),
    (
        "roles not a list of strings",
        BASE + "roles = [1, 2]\n",
        "clients[0].roles",
        ("list of strings",),
    ),
    (
        "flag not a boolean",
        BASE + 'ciba_allowed = "yes"\n',
        "clients[0].ciba_allowed",
        ("bool",),
    ),
    (
        "no confidential CIBA client: only a public one",
        BASE.replace('client_secret = "basic-secret-123"\n', "").replace(
            "client_secret_basic", "none"
        ),
        "clients",
        ("confidential",),
    ),
    (
        "no confidential CIBA client: CIBA not allowed",
        BASE + "ciba_allowed = false\n",
        "clients",
        ("confidential",),
    ),
    ("negative request_timeout", BASE + "[budgets]\nrequest_timeout = -1\n", "budgets.request_timeout", ("positive",)),
    ("zero max_wait", BASE + "[budgets]\nmax_wait = 0\n", "budgets.max_wait", ("positive",)),
    ("nan max_wait", BASE + "[budgets]\nmax_wait = nan\n", "budgets.max_wait", ("finite",)),
    ("inf max_wait", BASE + "[budgets]\nmax_wait = inf\n", "budgets.max_wait", ("finite",)),
    (
        "negative requested_expiry",
        BASE + "[budgets]\nrequested_expiry = -3\n",
        "budgets.requested_expiry",
        ("positive",),
    ),
    (
        "fractional requested_expiry",
        BASE + "[budgets]\nrequested_expiry = 2.5\n",
        "budgets.requested_expiry",
        ("int",),
    ),
    (
        "negative approve_timeout",
        BASE + "[budgets]\napprove_timeout = -0.5\n",
        "budgets.approve_timeout",
        ("positive",),
    ),
    (
        "budget not a number",
        BASE + '[budgets]\nmax_wait = "long"\n',
        "budgets.max_wait",
        ("float",),
    ),
    ("bad bind: no port", BASE + '[receiver]\nbind = "127.0.0.1"\n', "receiver.bind", ("HOST:PORT",)),
    ("bad bind: port text", BASE + '[receiver]\nbind = "localhost:http"\n', "receiver.bind", ("HOST:PORT",)),
    ("bad bind: port too big", BASE + '[receiver]\nbind = "0.0.0.0:70000"\n', "receiver.bind", ("HOST:PORT",)),
    (
        "bad webhook bind",
        BASE + '[device]\ndriver = "webhook"\nwebhook_bind = ":0:"\n',
        "device.webhook_bind",
        ("HOST:PORT",),
    ),
    (
        "unknown driver",
        BASE + '[device]\ndriver = "robot"\n',
        "device.driver",
        ("embedded", "robot"),
    ),
    (
        "http driver without approve/deny",
        BASE + '[device]\ndriver = "http"\n',
        "device.driver",
        ("[device.approve]", "[device.deny]"),
    ),
    (
        "http driver without deny",
        BASE + '[device]\ndriver = "http"\n[device.approve]\nurl = "https://op/approve"\n',
        "device.driver",
        ("[device.deny]",),
    ),
    (
        "device call without url",
        BASE + '[device]\ndriver = "http"\n[device.approve]\nmethod = "POST"\n',
        "device.approve.url",
        ("required",),
    ),
    (
        "device call headers not a table",
        BASE + '[device.approve]\nurl = "https://op/a"\nheaders = "x"\n',
        "device.approve",
        ("tables",),
    ),
    (
        "negative approve_delay",
        BASE + "[device]\napprove_delay = -1.0\n",
        "device.approve_delay",
        ("negative",),
    ),
    (
        "missing login_hint",
        BASE.replace('login_hint = "alice"', 'second_login_hint = "bob"'),
        "users.login_hint",
        ("required",),
    ),
    (
        "ca_bundle missing",
        BASE.replace('[users]', 'ca_bundle = "missing-ca.pem"\n\n[users]'),
        "provider.ca_bundle",
        ("does not exist",),
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [pytest.param(text, key, words, id=case) for case, text, key, words in KEY_ERRORS],
)
def test_invalid_key(tmp_path: Path, text: str, key: str, words: tuple[str, ...]) -> None:
    assert_key(config_error(tmp_path, text), key, *words)


def test_key_file_is_not_a_key(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")
    error = config_error(
        tmp_path,
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        'private_key = "garbage.pem"\n',
    )
    assert_key(error, "clients[1].private_key", "garbage.pem", "PEM private key")


def test_key_file_is_binary_garbage(tmp_path: Path) -> None:
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)
    error = config_error(
        tmp_path,
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        'private_key = "random.bin"\n',
    )
    assert_key(error, "clients[1].private_key", "random.bin")


def test_key_file_holds_an_unsupported_key_type(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ed.pem").write_bytes(pem)
    error = config_error(
        tmp_path,
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        'private_key = "ed.pem"\n',
    )
    assert_key(error, "clients[1].private_key", "RSA or EC")


def test_encrypted_key_file(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((KEYS / "client-es256.pem").read_bytes(), None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "enc.pem").write_bytes(pem)
    error = config_error(
        tmp_path,
        BASE
        + '\n[[clients]]\nname = "jwt"\nclient_id = "jwt"\nauth_method = "private_key_jwt"\n'
        'private_key = "enc.pem"\n',
    )
    assert_key(error, "clients[1].private_key", "enc.pem")


def test_login_hint_token_format(tmp_path: Path) -> None:
    """[users] login_hint_token_format: how the harness mints login_hint_tokens (the
    provider's HS256 key, or signed by the requesting client)."""
    assert load_text(tmp_path, BASE).users.login_hint_token_format == "provider_hs256"
    signed = BASE.replace('login_hint = "alice"',
                          'login_hint = "alice"\nlogin_hint_token_format = "client_signed"')
    assert load_text(tmp_path, signed).users.login_hint_token_format == "client_signed"
    with pytest.raises(ConfigError, match="users.login_hint_token_format.*must be one of"):
        load_text(tmp_path, signed.replace('"client_signed"', '"jwe"'))

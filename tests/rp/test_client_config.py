"""client.toml: what a client under test is described with, and the errors for a wrong one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ciba_harness.core._errors import ConfigError
from ciba_harness.rp._config import load_client_config

GOOD = """
[client]
driver = "http"
start_url = "http://127.0.0.1:9500/start"
modes = ["poll", "ping"]
notification_endpoint = "http://127.0.0.1:9500/notify"
auth_method = "client_secret_post"
[provider]
port = 9400
[registrations]
poll = { client_id = "rp-poll", secret = "s1" }
ping = { client_id = "rp-ping", secret_env = "RP_TEST_PING_SECRET" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RP_TEST_PING_SECRET", "s2")
    config = load_client_config(write(tmp_path, GOOD))
    assert (config.driver, config.modes, config.provider_port) == ("http", ("poll", "ping"), 9400)
    assert config.registrations == {"poll": ("rp-poll", "s1"), "ping": ("rp-ping", "s2")}
    assert config.auth_method == "client_secret_post" and not config.is_reference


@pytest.mark.parametrize(("change", "key"), [
    (('driver = "http"', 'driver = "telnet"'), "client.driver"),
    (('start_url = "http://127.0.0.1:9500/start"\n', ""), "client.start_url"),
    (('modes = ["poll", "ping"]', 'modes = ["fax"]'), "client.modes"),
    (('notification_endpoint = "http://127.0.0.1:9500/notify"\n', ""),
     "client.notification_endpoint"),
    (('auth_method = "client_secret_post"', 'auth_method = "private_key_jwt"'),
     "client.auth_method"),
    (('port = 9400', 'port = 70000'), "provider.port"),
    (('poll = { client_id = "rp-poll", secret = "s1" }', ""), "registrations.poll"),
])
def test_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             change: tuple[str, str], key: str) -> None:
    monkeypatch.setenv("RP_TEST_PING_SECRET", "s2")
    with pytest.raises(ConfigError) as caught:
        load_client_config(write(tmp_path, GOOD.replace(*change)))
    assert caught.value.key == key


def test_missing_secret_env_and_bad_files(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RP_TEST_PING_SECRET", raising=False)
    with pytest.raises(ConfigError, match="RP_TEST_PING_SECRET"):
        load_client_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no such file"):
        load_client_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="TOML"):
        load_client_config(write(tmp_path, "[client\n"))
    assert load_client_config(write(tmp_path, '[client]\ndriver = "reference"\n')).is_reference


def test_tests_of_unsupported_modes_are_skipped() -> None:
    from ciba_harness.rp._config import ClientUnderTest
    from ciba_harness.rp._harness import ClientSession, ClientTest
    from ciba_harness.rp._provider import ClientTestProvider

    session = ClientSession(ClientUnderTest(driver="http", modes=("poll",)),
                            ClientTestProvider([]), driver=None)  # type: ignore[arg-type]
    with pytest.raises(pytest.skip.Exception, match="does not support ping mode"):
        ClientTest(session).observe("ping_faithful")

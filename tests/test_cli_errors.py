"""Mistakes in the user's input end in one clear message, exit code 2, no traceback and no
report files: a wrong or incomplete config, a missing or broken key file, an unreachable or
non-CIBA provider, a port already in use.

`ciba-harness conformance` checks all of it before pytest starts (preflight), `check-config`
runs the same checks, `load` and `provider` report their own.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciba_harness import default_profile_path
from ciba_harness.hostile import HostileProvider, start_hostile

PROFILE = default_profile_path()
KEYS = PROFILE.parent.parent / "keys"


def _harness(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "ciba_harness.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def _profile(tmp_path: Path, *, name: str = "provider.toml", **changes: str) -> Path:
    """The reference profile with absolute key paths and `old=new` text replacements."""
    text = PROFILE.read_text(encoding="utf-8").replace('"../keys/', f'"{KEYS}/')
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_clear_line(stderr: str, *words: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one message, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("ciba-harness: "), line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert " — " in line, f"no fix named: {line}"
    assert "Traceback" not in stderr
    return line


@pytest.fixture(scope="module")
def non_ciba_provider() -> Iterator[HostileProvider]:
    with start_hostile({"discovery": "no_backchannel_endpoint"}) as hostile:
        yield hostile


@pytest.fixture(scope="module")
def html_provider() -> Iterator[HostileProvider]:
    with start_hostile({"discovery": "html"}) as hostile:
        yield hostile


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield int(sock.getsockname()[1])
    sock.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BROKEN_TOML = "[provider\nissuer = "
MINIMAL = """[provider]
issuer = "{issuer}"
[budgets]
request_timeout = 2.0
[users]
login_hint = "alice"
[[clients]]
client_id = "c1"
client_secret = "s3cr3t-of-the-cli-test"
auth_method = "client_secret_basic"
"""


def _case(
    name: str, tmp_path: Path, request: pytest.FixtureRequest | None = None
) -> tuple[list[str], tuple[str, ...]]:
    """The --ciba-config/--ciba-issuer arguments of a mistake, and words its message names."""
    if name == "missing_file":
        return ["--ciba-config", str(tmp_path / "nope.toml")], ("nope.toml", "file not found",
                                                                "existing provider description")
    if name == "not_toml":
        path = tmp_path / "broken.toml"
        path.write_text(BROKEN_TOML)
        return ["--ciba-config", str(path)], ("broken.toml", "is not valid TOML", "fix")
    if name == "incomplete":
        path = tmp_path / "incomplete.toml"
        path.write_text('[provider]\nissuer = "embedded"\n')
        return ["--ciba-config", str(path)], ("key 'clients'", "[[clients]] entry is required")
    if name == "wrong_value":
        path = _profile(tmp_path, **{'auth_method = "client_secret_post"': 'auth_method = "magic"'})
        return ["--ciba-config", str(path)], ("clients[1].auth_method", "must be one of",
                                              "fix 'clients[1].auth_method'")
    if name == "unset_environment_variable":
        path = _profile(tmp_path, **{'"poll-basic-secret-6c1f0e2a"': '"${CIBA_TEST_UNSET_SECRET}"'})
        return ["--ciba-config", str(path)], ("CIBA_TEST_UNSET_SECRET", "which is not set")
    if name == "key_file_missing":
        path = _profile(tmp_path, **{f'"{KEYS}/client-rs256.pem"': '"missing-key.pem"'})
        return ["--ciba-config", str(path)], ("clients[3].private_key", "does not exist")
    if name == "key_file_not_a_key":
        garbage = tmp_path / "not-a-key.pem"
        garbage.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        path = _profile(tmp_path, **{f'"{KEYS}/client-rs256.pem"': f'"{garbage}"'})
        return ["--ciba-config", str(path)], ("not-a-key.pem", "is not an unencrypted PEM private key")
    if name == "unreachable_provider":
        path = tmp_path / "unreachable.toml"
        port = _closed_port()
        path.write_text(MINIMAL.format(issuer=f"http://127.0.0.1:{port}"))
        return ["--ciba-config", str(path)], (f"127.0.0.1:{port} is unreachable", "Connection refused",
                                              "check [provider] issuer")
    if name == "non_ciba_provider":
        assert request is not None
        hostile = request.getfixturevalue("non_ciba_provider")
        path = tmp_path / "plain-oidc.toml"
        path.write_text(MINIMAL.format(issuer=hostile.issuer))
        return ["--ciba-config", str(path)], ("does not offer CIBA", "backchannel_authentication_endpoint",
                                              "enable CIBA")
    if name == "not_an_openid_provider":
        assert request is not None
        hostile = request.getfixturevalue("html_provider")
        path = _profile(tmp_path)
        return ["--ciba-config", str(path), "--ciba-issuer", hostile.issuer], (
            "did not return a JSON object (text/html)", "check [provider] issuer")
    if name == "receiver_port_in_use":
        assert request is not None
        port = request.getfixturevalue("busy_port")
        path = _profile(tmp_path, **{'bind = "127.0.0.1:0"': f'bind = "127.0.0.1:{port}"'})
        return ["--ciba-config", str(path)], (f"cannot listen on 127.0.0.1:{port}", "Address already in use",
                                              "change [receiver] bind")
    raise AssertionError(name)


MISTAKES = [
    "missing_file", "not_toml", "incomplete", "wrong_value", "unset_environment_variable",
    "key_file_missing", "key_file_not_a_key", "unreachable_provider", "non_ciba_provider",
    "not_an_openid_provider", "receiver_port_in_use",
]


@pytest.mark.parametrize("mistake", MISTAKES)
def test_conformance_stops_before_running(
    mistake: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args, words = _case(mistake, tmp_path, request)
    report = tmp_path / "report"
    result = _harness("conformance", *args, "--ciba-report", str(report), cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    _one_clear_line(result.stderr, *words)
    assert result.stdout == ""  # pytest never started
    assert not report.exists(), "a report was written for a run that never started"
    assert not (tmp_path / "reports").exists()
    assert "s3cr3t-of-the-cli-test" not in result.stderr


@pytest.mark.parametrize("mistake", MISTAKES)
def test_check_config_names_the_same_mistake(
    mistake: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args, words = _case(mistake, tmp_path, request)
    if "--ciba-issuer" in args:
        pytest.skip("check-config reads the issuer from the file only")
    result = _harness("check-config", args[1], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    # check-config lists every mistake of the file, one line each: this one among them
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    named = [line for line in lines if all(word in line for word in words)]
    assert len(named) == 1, lines
    _one_clear_line(named[0], *words)
    assert all(line.startswith("ciba-harness: ") and " — " in line for line in lines), lines
    assert list(tmp_path.glob("**/results.json")) == []


def test_check_config_accepts_a_good_profile(tmp_path: Path) -> None:
    result = _harness("check-config", str(PROFILE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.match(r".*reference\.toml: ok — issuer embedded, \d+ clients", result.stdout)


def test_load_reports_a_config_mistake_in_one_line(tmp_path: Path) -> None:
    args, words = _case("key_file_missing", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ciba_harness.load", *args, "-t", "2s", "--csv", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ciba-harness load: "), result.stderr
    assert all(word in lines[0] for word in words)
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("run*"))


def test_load_against_an_unreachable_provider(tmp_path: Path) -> None:
    path = tmp_path / "unreachable.toml"
    port = _closed_port()
    path.write_text(MINIMAL.format(issuer=f"http://127.0.0.1:{port}").replace(
        'auth_method = "client_secret_basic"', 'auth_method = "client_secret_basic"\ndelivery_mode = "poll"'))
    result = subprocess.run(
        [sys.executable, "-m", "ciba_harness.load", "--ciba-config", str(path), "-u", "2", "-r", "2",
         "-t", "3s", "--csv", str(tmp_path / "run"), "--only-summary"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith("ciba-harness load: ")]
    assert ours and f"127.0.0.1:{port}" in ours[0] and "Connection refused" in ours[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_provider_port_in_use(busy_port: int, tmp_path: Path) -> None:
    result = _harness("provider", "--port", str(busy_port), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{busy_port}" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def _line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """1-based line number of the `occurrence`-th line of `path` starting with `text`."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith(text):
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{text!r} not in {path}")


def test_check_config_reports_every_mistake_at_once_with_file_and_line(tmp_path: Path) -> None:
    path = _profile(tmp_path, **{
        'auth_method = "client_secret_post"': 'auth_method = "magic"',
        "request_timeout = 5.0": 'request_timeout = "ten"',
        '[receiver]\n': '[receiver]\nbnid = "127.0.0.1:0"\n',
    })
    result = _harness("check-config", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    expected = {
        "clients[1].auth_method": _line_of(path, 'auth_method = "magic"'),
        "budgets.request_timeout": _line_of(path, "request_timeout"),
        "receiver.bnid": _line_of(path, "bnid"),
    }
    for key, line_number in expected.items():
        matching = [line for line in lines if f"key '{key}'" in line]
        assert len(matching) == 1, (key, lines)
        assert f"{path}:{line_number}:" in matching[0], (key, matching[0])
    assert "did you mean 'bind'" in " ".join(lines)
    assert "Traceback" not in result.stderr


def test_conformance_names_the_first_mistake_and_counts_the_others(tmp_path: Path) -> None:
    path = _profile(tmp_path, **{
        'auth_method = "client_secret_post"': 'auth_method = "magic"',
        "request_timeout = 5.0": 'request_timeout = "ten"',
    })
    result = _harness("conformance", "--ciba-config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = _one_clear_line(result.stderr, "budgets.request_timeout")
    assert "1 more" in line and "check-config" in line


def test_check_config_suggests_a_misspelled_required_key(tmp_path: Path) -> None:
    path = _profile(tmp_path, **{'issuer = "embedded"': 'isuer = "embedded"'})
    result = _harness("check-config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = _one_clear_line(result.stderr, "provider.issuer", "is required",
                           "did you mean 'issuer'", "'isuer'")
    assert f"{path}:{_line_of(path, 'isuer')}:" in line


@pytest.fixture(scope="module")
def reference_provider() -> Iterator[str]:
    from ciba_harness.provider import start_provider

    provider = start_provider(PROFILE)
    try:
        yield provider.issuer
    finally:
        provider.stop()


def test_check_config_warns_when_the_provider_cannot_reach_the_receiver(
    tmp_path: Path, reference_provider: str
) -> None:
    """A provider of its own (not embedded) with a ping client, the receiver on a random port
    with no public_url: ok, but say that callbacks will not arrive."""
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL.format(issuer=reference_provider) + (
        '[[clients]]\nclient_id = "c2"\nclient_secret = "s3cr3t-of-the-cli-test"\n'
        'auth_method = "client_secret_basic"\ndelivery_mode = "ping"\n'
        '[receiver]\nbind = "127.0.0.1:0"\n'))
    result = _harness("check-config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ": ok" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings and "port 0" in warnings[0] and "public_url" in warnings[0], result.stderr
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(path.read_text().replace(
        'bind = "127.0.0.1:0"', 'bind = "127.0.0.1:0"\npublic_url = "http://127.0.0.1:8999"'))
    result = _harness("check-config", str(fixed), cwd=tmp_path)
    assert result.returncode == 0 and "port 0" in result.stderr  # a random port stays a risk

"""No configured secret, private key, client assertion or issued token ever appears in a
report, a log or the console (a token may appear cut to its first characters).

The whole conformance suite (fuzz suites included) and a short load run go through a recording
front (the hostile provider with no misbehaviour: the reference provider behind it reads the
same profile, whose secrets are distinctive strings made for this run). The front remembers
every credential and token that crossed it: client secrets, Basic credentials, client
assertions, request objects, notification tokens, bearer tokens, access, refresh and ID
tokens. Then every file written by the runs, and their output, is searched for each of them,
in the encodings a report could use, for the private keys, and for any complete JWT.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from ciba_harness import default_profile_path
from ciba_harness.hostile import HostileProvider, start_hostile

REPO = Path(__file__).resolve().parents[1]
PROFILE = default_profile_path()
KEYS = PROFILE.parent.parent / "keys"
# A complete JWS: header, payload and a real signature. Reports may keep a 4-character
# prefix of a token, never this.
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}")
MIN_LENGTH = 8  # shorter values (e.g. a user code) are not secrets that a search can find


def _profile(directory: Path) -> tuple[Path, list[str]]:
    """The reference profile with absolute key paths and secrets made for this run."""
    text = PROFILE.read_text(encoding="utf-8").replace('"../keys/', f'"{KEYS}/')
    configured: list[str] = []

    def fresh(match: re.Match[str]) -> str:
        value = f"{match.group(1)}-Zq{secrets.token_hex(16)}"
        configured.append(value)
        return f'{match.group(0).split("=")[0]}= "{value}"'

    text, count = re.subn(r'(?m)^client_secret = "([a-z-]+?)-secret[^"]*"', fresh, text)
    assert count >= 6
    text, count = re.subn(r'(?m)^token = "(device)-api-test-token"', fresh, text)
    assert count == 1
    text, count = re.subn(r'(?m)^login_hint_token_hs256_key = "(login-hint-token)[^"]*"', fresh, text)
    assert count == 1
    text = re.sub(r"(?m)^request_timeout = \S+", "request_timeout = 3.0", text)
    text = re.sub(r"(?m)^max_wait = \S+", "max_wait = 6.0", text)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "reference.toml"  # the plugin registers its receiver with the provider
    path.write_text(text, encoding="utf-8")
    return path, configured


def _key_material() -> list[str]:
    """Each private key's PEM body (= base64 DER) and each of its lines."""
    found: list[str] = []
    for pem in sorted(KEYS.glob("*.pem")):
        lines = [
            line.strip()
            for line in pem.read_text().splitlines()
            if line.strip() and not line.startswith("-----")
        ]
        found.append("".join(lines))
        found += [line for line in lines if len(line) >= 40]
    assert found
    return found


def _variants(secret: str) -> set[bytes]:
    values = {
        secret,
        quote_plus(secret, safe=""),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        html.escape(secret),
        html.escape(json.dumps(secret)[1:-1]),
    }
    return {v.encode() for v in values}


def _written(directory: Path, skip: Iterable[Path]) -> Iterator[Path]:
    skipped = {p.resolve() for p in skip}
    for path in directory.rglob("*"):
        if path.is_file() and path.resolve() not in skipped:
            yield path


def _secret_like(value: str) -> bool:
    """Long and varied enough to be a credential (the fuzz suites also put junk such as
    '0000000000' into secret fields; it is no secret and appears elsewhere by chance)."""
    return len(value) >= MIN_LENGTH and len(set(value)) >= 6


def _leaks(blobs: dict[str, bytes], secret_values: Iterable[str]) -> list[str]:
    problems = []
    values = sorted({s for s in secret_values if _secret_like(s)})
    needles = [(value, variant) for value in values for variant in _variants(value)]
    for name, blob in blobs.items():
        for value, variant in needles:
            if variant in blob:
                position = blob.index(variant)
                context = blob[max(0, position - 60): position + 20].decode("utf-8", "replace")
                problems.append(f"{name}: contains {value[:6]}… (…{context}…)")
                break
        for match in JWT.finditer(blob):
            problems.append(f"{name}: a complete JWT {match.group(0)[:24].decode()}…")
            break
    return problems


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str], HostileProvider]]:
    directory = tmp_path_factory.mktemp("secrets")
    profile, configured = _profile(directory / "profile")
    with start_hostile({}, config=profile) as front:
        yield profile, configured, front


def test_the_suite_writes_no_secret(recorded, tmp_path: Path) -> None:
    profile, configured, front = recorded
    work = tmp_path / "work"  # the run's cwd: a fuzz example database lands here too
    work.mkdir()
    report = tmp_path / "report"
    process = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "conformance"), "-p", "no:locust",
         "-p", "no:cacheprovider", "-q", "--ciba-config", str(profile), "--ciba-issuer",
         front.issuer, "--ciba-report", str(report), "--ciba-fuzz-profile", "ciba-quick",
         "--ciba-fuzz-seconds", "3"],
        capture_output=True, timeout=900, cwd=work, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    results = json.loads((report / "results.json").read_text())
    assert results["summary"]["tests"]["passed"] > 100, process.stdout[-3000:]
    observed = set(front.observed)
    assert any(v.startswith("eyJ") for v in observed), "no token crossed the front"
    assert observed & set(configured), "no configured secret crossed the front"
    assert len(observed) > 50, len(observed)
    blobs = {str(p.relative_to(tmp_path)): p.read_bytes() for p in _written(tmp_path, [profile])}
    assert any(name.endswith("report.html") for name in blobs)
    blobs["stdout"] = process.stdout
    blobs["stderr"] = process.stderr
    problems = _leaks(blobs, [*configured, *_key_material(), *observed])
    assert not problems, "\n".join(problems[:40])


def test_a_load_run_writes_no_secret(recorded, tmp_path: Path) -> None:
    profile, configured, front = recorded
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    process = subprocess.run(
        [sys.executable, "-m", "ciba_harness.load", "--ciba-config", str(profile),
         "--ciba-issuer", front.issuer, "-u", "6", "-r", "6", "-t", "5s", "--ciba-time-scale",
         "0.1", "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html"),
         "--ciba-id-token-sample", "1"],
        capture_output=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert process.returncode in (0, 3), process.stderr[-3000:]
    observed = set(front.observed)
    blobs = {str(p.relative_to(tmp_path)): p.read_bytes() for p in _written(tmp_path, [profile])}
    assert any(name.endswith("_stats.csv") for name in blobs), sorted(blobs)
    blobs["stdout"] = process.stdout
    blobs["stderr"] = process.stderr
    problems = _leaks(blobs, [*configured, *_key_material(), *observed])
    assert not problems, "\n".join(problems[:40])


def test_the_search_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The search itself: a secret in any of its encodings, or any complete JWT, is found."""
    secret = "a/b+c=d-Zq" + secrets.token_hex(8)
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + base64.urlsafe_b64encode(
        os.urandom(40)).decode().rstrip("=")
    for blob in (secret.encode(), quote_plus(secret).encode(), json.dumps({"x": secret}).encode(),
                 html.escape(secret).encode()):
        assert _leaks({"f": b"..." + blob + b"..."}, [secret])
    assert _leaks({"f": token.encode()}, [])
    assert not _leaks({"f": b"eyJh*** and Basic ***"}, [secret])

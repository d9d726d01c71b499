"""'Never a 5xx', proven in-process: the fuzz suite runs (pytester) against a provider that
crashes on some inputs, and shrinks the crash to the minimal request.

The reference provider has no crash fault, so an httpx.MockTransport stands in front of it:
it answers 500 to a backchannel request whose binding_message holds a non-ASCII character
and forwards everything else to the real reference provider.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

pytest_plugins = ["pytester"]

FUZZ_SUITE = Path(__file__).resolve().parents[2] / "conformance" / "test_fuzz.py"

CONFTEST = '''
from urllib.parse import parse_qsl

import httpx
import pytest

from ciba_harness import CibaClient, HttpxTransport, NotificationInbox, default_profile_path, load_config
from ciba_harness.provider import start_provider
from ciba_harness.pytest_plugin import CibaSession

pytest_plugins = ["ciba_harness.pytest_plugin._fuzz"]
CRASHES = []


def crash_on_unicode_binding_message() -> httpx.MockTransport:
    upstream = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/backchannel"):
            fields = dict(parse_qsl(request.content.decode("utf-8", "replace")))
            if any(ord(ch) > 127 for ch in fields.get("binding_message", "")):
                CRASHES.append(fields["binding_message"])
                return httpx.Response(500, text="Internal Server Error")
        return upstream.handle_request(request)

    return httpx.MockTransport(handler)


@pytest.fixture(scope="session")
def ciba_session():
    config = load_config(default_profile_path())
    provider = start_provider(config.source)
    config = config.with_issuer(provider.issuer)
    transport = HttpxTransport(
        timeout=config.budgets.request_timeout, transport=crash_on_unicode_binding_message()
    )
    inbox = NotificationInbox()
    client = CibaClient(config, transport=transport, inbox=inbox)
    session = CibaSession(config, client, inbox, None, provider)
    yield session
    session.close()
'''


@pytest.fixture(autouse=True)
def _inner_runs_without_locust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:locust -p no:cacheprovider")


@pytest.fixture
def _fuzz_suite_not_yet_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another test of this process may have imported conformance/test_fuzz.py as `test_fuzz`
    (e.g. at collection): the in-process run's copy would then meet an "import file
    mismatch". Hide it during the run. (The suite's checks live in the package,
    ciba_harness.strategies._judging, so the copy registers none of its own.)"""
    monkeypatch.delitem(sys.modules, "test_fuzz", raising=False)


@pytest.mark.usefixtures("_fuzz_suite_not_yet_imported")
def test_a_crash_is_found_and_shrunk_to_one_non_ascii_character(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_fuzz=FUZZ_SUITE.read_text())
    report = pytester.path / "out"
    result = pytester.runpytest_inprocess(
        "-k", "backchannel", "--tb=short",
        # Derandomized, and no time budget however slow the machine: deterministic. About 1
        # in 100 drawn requests has a non-ASCII binding message, so 300 examples miss it
        # for some sequences (a strategy change picks another one): 3000 find it for any
        # (the run ends at the first crash, so the larger budget costs nothing).
        "--ciba-fuzz-profile", "ciba-ci", "--ciba-fuzz-seconds", "3600",
        "--ciba-fuzz-examples", "3000",
        "--ciba-report", str(report),
    )
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "[CIBA-AERR-01] Server error" in output
    assert "Reproduce with:" in output
    import json

    failure = json.loads((report / "results.json").read_text())["tests"][0]["failure"]
    assert failure["requirement"] == "CIBA-AERR-01"
    request = failure["exchanges"][-1]["request"]
    fields = dict(parse_qsl(request["body"], keep_blank_values=True))
    # Minimal: little besides a one-character non-ASCII binding message.
    assert "binding_message" in fields and set(fields) <= {"scope", "login_hint", "binding_message"}
    assert len(fields["binding_message"]) == 1 and ord(fields["binding_message"]) > 127

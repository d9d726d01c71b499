"""The plugin's command line: the `--ciba-*` options, the markers, and the selection they
drive (requirement IDs as keywords, mode markers from parameters, FAPI-CIBA tests only under
that profile)."""

from __future__ import annotations

import pytest

from ciba_harness.core._config import ProviderConfig, default_profile_path, load_config
from ciba_harness.core._errors import CibaHarnessError

__all__ = ["FAPI_NOT_SELECTED", "MARKERS", "configured", "register_markers"]

MARKERS = {
    "poll": "test of poll mode (CIBA §10.1)",
    "ping": "test of ping mode (CIBA §10.2)",
    "push": "test of push mode (CIBA §10.3)",
    "requirement(*ids)": "requirement IDs of the catalogue this test checks",
    "slow": "waits for expiry or intervals",
    "fapi": "FAPI-CIBA profile test",
}
FAPI_NOT_SELECTED = "FAPI-CIBA profile not selected"

_fapi_deselected_key = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ciba", "CIBA conformance (ciba-harness)")
    group.addoption(
        "--ciba-config",
        metavar="FILE",
        default=None,
        help="provider description (TOML); default: start the embedded reference provider",
    )
    group.addoption(
        "--ciba-issuer",
        metavar="URL",
        default=None,
        help="override the issuer of the config (e.g. a fault tenant of the reference provider)",
    )
    group.addoption(
        "--ciba-report",
        metavar="DIR",
        default=None,
        help="write results.json, junit.xml and report.html here (default reports/out)",
    )
    group.addoption(
        "--ciba-no-report", action="store_true", default=False, help="write no report files"
    )
    group.addoption(
        "--ciba-strict",
        action="store_true",
        default=False,
        help="treat warnings (SHOULD, tolerated deviations) as failures",
    )
    group.addoption(
        "--ciba-profile",
        choices=("ciba", "fapi-ciba"),
        default=None,
        help="override the config's profile",
    )
    group.addoption(
        "--ciba-fault",
        metavar="NAME",
        action="append",
        default=[],
        help="start the embedded provider with this fault (repeatable; self-tests)",
    )
    group.addoption(
        "--ciba-run-timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="wall-clock budget of the whole run (default [budgets] run_timeout, 300 s)",
    )
    group.addoption(
        "--ciba-no-early",
        action="store_true",
        default=False,
        help="run wait-bound tests (marker slow) in order, not started early in the background",
    )


def register_markers(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


def configured(pytest_config: pytest.Config) -> ProviderConfig | None:
    """The provider description of this run (None when it cannot be read)."""
    from ciba_harness.provider.pki import resolve_pki_path  # lazy: provider/ loads starlette

    try:
        config = load_config(
            pytest_config.getoption("ciba_config") or default_profile_path(),
            test_pki=resolve_pki_path,
        )
    except CibaHarnessError:
        return None
    return config


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect by the keywords and marks set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Requirement IDs become keywords (`-k CIBA-TOKEN-16`); a mode parameter (a `poll`,
    `ping` or `push` value of the test's parametrisation) becomes that mode's marker, so
    `-m ping` selects `test_status_200[ping]` and the report files it under ping. Tests
    marked `fapi` run only under the FAPI-CIBA profile (option or config file); otherwise
    they are deselected, with one line in the header."""
    for item in items:
        for marker in item.iter_markers("requirement"):
            item.extra_keyword_matches.update(str(arg) for arg in marker.args)
        _mark_mode_parameter(item)
    fapi_items = [item for item in items if item.get_closest_marker("fapi")]
    if not fapi_items:
        return
    profile = config.getoption("ciba_profile", None)
    if profile is None:
        loaded = configured(config)
        profile = loaded.profile if loaded is not None else "ciba"
    if profile != "fapi-ciba":
        deselected = set(fapi_items)
        items[:] = [item for item in items if item not in deselected]
        config.hook.pytest_deselected(items=fapi_items)
        config.stash[_fapi_deselected_key] = len(fapi_items)


def _mark_mode_parameter(item: pytest.Item) -> None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return
    modes = {value for value in callspec.params.values()
             if isinstance(value, str) and value in {"poll", "ping", "push"}}
    if len(modes) == 1:
        mode = modes.pop()
        if not item.get_closest_marker(mode):
            item.add_marker(getattr(pytest.mark, mode))


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    count = config.stash.get(_fapi_deselected_key, 0)
    if not count:
        return []
    return [f"ciba-harness: {count} FAPI-CIBA tests deselected: {FAPI_NOT_SELECTED} "
            "(--ciba-profile fapi-ciba, or profile = \"fapi-ciba\" in the config, runs them)"]

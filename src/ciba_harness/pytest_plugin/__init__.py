"""pytest plugin of ciba-harness (entry point `pytest11: ciba`).

Options are prefixed `--ciba-*`, fixtures `ciba_*`. Without `--ciba-config` the embedded
reference provider is started on a free loopback port. Every test's check outcomes and
exchanges (redacted) travel in `report.user_properties`, so results also come back from
pytest-xdist workers; the controller writes the JSON result at session end, also when the
run is interrupted.

This module is the one plugin pytest registers: it names every hook and fixture of the
parts below (pytest looks for them among this module's attributes), and runs their
start-up in order in `pytest_configure`.

* `_options`: the `--ciba-*` options, the markers and the selection they drive;
* `_session`: the preflight, the breakers and run budget, `CibaSession` and its start;
* `_fixtures`: the `ciba_*` fixtures and `require_client`;
* `_collector`: per-test records, results.json, report.html, junit.xml beside them;
* `_early`: wait-bound tests started early; `_fuzz`: the fuzz suites' plugin.
"""

from __future__ import annotations

import pytest

from ciba_harness.pytest_plugin._ast_guard import serialise_ast_parsing
from ciba_harness.pytest_plugin._collector import (
    pytest_report_header as pytest_report_header,
    pytest_runtest_makereport as pytest_runtest_makereport,
    pytest_terminal_summary as pytest_terminal_summary,
    register_collector,
)
from ciba_harness.pytest_plugin._early import EarlyStart
from ciba_harness.pytest_plugin._fixtures import (
    ciba as ciba,
    ciba_choices as ciba_choices,
    ciba_config as ciba_config,
    ciba_inbox as ciba_inbox,
    ciba_metadata as ciba_metadata,
    ciba_receiver as ciba_receiver,
    ciba_session as ciba_session,
    require_client as require_client,
)
from ciba_harness.pytest_plugin._options import (
    pytest_addoption as pytest_addoption,
    pytest_collection_modifyitems as pytest_collection_modifyitems,
    pytest_report_collectionfinish as pytest_report_collectionfinish,
    register_markers,
)
from ciba_harness.pytest_plugin._session import (
    PREFLIGHT_DONE as PREFLIGHT_DONE,
    CibaSession as CibaSession,
    configure_health,
    is_worker,
    pytest_configure_node as pytest_configure_node,
    pytest_runtest_setup as pytest_runtest_setup,
    pytest_unconfigure as pytest_unconfigure,
    stop_on_unusable_target,
)

__all__ = ["CibaSession", "require_client"]

# The fuzz suites' options, marker and fixture come with the harness (also when installed,
# where no conftest of the checkout is there to list them).
pytest_plugins = ["ciba_harness.pytest_plugin._fuzz"]


def pytest_configure(config: pytest.Config) -> None:
    # In this order: a bad provider description stops the run before breakers, early
    # starts or report files exist.
    serialise_ast_parsing()  # before any thread of ours starts
    register_markers(config)
    if not is_worker(config):
        stop_on_unusable_target(config)
    configure_health(config)
    if not is_worker(config) and not config.getoption("ciba_no_early", False):
        config.pluginmanager.register(EarlyStart(config), "ciba-early-start")
    if is_worker(config):
        return
    register_collector(config)

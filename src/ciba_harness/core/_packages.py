"""Where the installed suites, scenarios and fixtures are: the top-level folders of the
repository (conformance/, load/, fixtures/, client_conformance/) install as packages of their
own (setup.py), so they are found by the import system, in a checkout (editable install) and in a wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ciba_harness.core._errors import CibaHarnessError

__all__ = [
    "CLIENT_SUITES_PACKAGE",
    "FIXTURES_PACKAGE",
    "LOAD_PACKAGE",
    "SUITES_PACKAGE",
    "fixtures_folder",
    "locustfile_path",
    "package_folder",
    "suites_folder",
]

SUITES_PACKAGE = "ciba_harness_conformance"
CLIENT_SUITES_PACKAGE = "ciba_harness_client_conformance"
LOAD_PACKAGE = "ciba_harness_load"
FIXTURES_PACKAGE = "ciba_harness_fixtures"


def package_folder(name: str) -> Path:
    """The folder of the installed package `name`, found without importing it (pytest then
    imports the suites itself, with assertion rewriting)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise CibaHarnessError(
            f"the package {name} is not installed — reinstall ciba-harness "
            "(`pip install ciba-harness`, or `pip install -e .` in a checkout)"
        )
    folder = Path(locations[0])
    if not folder.is_dir():  # a zipped install: the suites need real files
        raise CibaHarnessError(f"the package {name} is not installed as files ({folder})")
    return folder


def suites_folder() -> Path:
    return package_folder(SUITES_PACKAGE)


def fixtures_folder() -> Path:
    return package_folder(FIXTURES_PACKAGE)


def locustfile_path() -> Path:
    return package_folder(LOAD_PACKAGE) / "locustfile.py"

"""The harness as a vendor gets it (issue 13, items 2 and 4): a wheel built from this
repository, installed into a fresh virtual environment, runs the conformance suites from an
empty folder (wrapper, `pytest --pyargs`, a config of one's own) and Locust finds the installed
scenarios. And `pytest .` at the repository root collects without errors.

The fresh environment gets the wheel alone; its dependencies come from the development
environment through a path file (no downloads, no build of the dependencies), so the harness
and its suites can only come from the wheel. Building the wheel needs setuptools from PyPI
(pip's build isolation), as any `pip install` of the repository does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the wheel is built from (client_conformance/ when helper work has created it).
BUILD_INPUTS = ("src", "conformance", "client_conformance", "load", "fixtures", "setup.py",
                "pyproject.toml", "README.md")
SHORT_SELECTION = ("-k", "test_discovery", "-p", "no:xdist")


def _run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=env)


def _ok(process: subprocess.CompletedProcess[str]) -> str:
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-4000:]
    return output


class Installed:
    def __init__(self, wheel: Path, venv: Path) -> None:
        self.wheel = wheel
        self.bin = venv / "bin"
        self.python = str(self.bin / "python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif path.is_file():
            shutil.copy2(path, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
              str(wheels), str(source)], cwd=source))
    (wheel,) = wheels.glob("ciba_harness-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv))
    purelib = Path(_ok(_run([str(venv / "bin" / "python"), "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            cwd=venv)).strip())
    # The dependencies, from the development environment (after the wheel on sys.path).
    (purelib / "zz_ciba_harness_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _ok(_run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
              "--quiet", "--no-deps", str(wheel)], cwd=venv))
    return Installed(wheel, venv)


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "vendor"
    folder.mkdir()
    return folder


def _my_profile(installed: Installed, folder: Path) -> Path:
    """A vendor's own file: the installed reference profile, keys by absolute path."""
    fixtures = Path(_ok(_run([installed.python, "-c", "from ciba_harness.core._packages import "
                              "fixtures_folder; print(fixtures_folder())"], cwd=folder)).strip())
    assert fixtures.is_relative_to(installed.bin.parent), fixtures
    text = (fixtures / "profiles" / "reference.toml").read_text(encoding="utf-8")
    path = folder / "my.toml"
    path.write_text(text.replace('"../keys/', f'"{fixtures / "keys"}/'), encoding="utf-8")
    return path


def _check_results(report: Path, prefix: str = "ciba_harness_conformance/") -> None:
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))
    nodeids = [t["nodeid"] for t in results["tests"]]
    assert nodeids and all(n.startswith(f"{prefix}test_discovery.py::") for n in nodeids), nodeids
    assert {r["id"]: r["verdict"] for r in results["requirements"]}["CIBA-DISC-01"] == "pass"


def test_the_wheel_ships_suites_scenarios_and_fixtures(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for expected in ("ciba_harness_conformance/test_discovery.py",
                     "ciba_harness_conformance/conftest.py",
                     "ciba_harness_load/locustfile.py", "ciba_harness_load/shapes.py",
                     "ciba_harness_fixtures/profiles/reference.toml",
                     "ciba_harness_fixtures/keys/client-rs256.pem",
                     "ciba_harness/requirements.json", "ciba_harness/py.typed"):
        assert expected in names, expected
    sources = {p.relative_to(REPO / "src").as_posix()
               for p in (REPO / "src" / "ciba_harness").rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    if (REPO / "client_conformance" / "__init__.py").is_file():
        assert "ciba_harness_client_conformance/__init__.py" in names


def test_the_harness_comes_from_the_wheel(installed: Installed, empty_folder: Path) -> None:
    where = _ok(_run([installed.python, "-c", "import ciba_harness, ciba_harness_conformance; "
                      "print(ciba_harness.__file__); print(ciba_harness_conformance.__file__)"],
                     cwd=empty_folder))
    for line in where.split():
        assert Path(line).is_relative_to(installed.bin.parent), line


def test_wrapper_runs_the_installed_suites_from_an_empty_folder(
    installed: Installed, empty_folder: Path
) -> None:
    output = _ok(_run([str(installed.bin / "ciba-harness"), "conformance", *SHORT_SELECTION],
                      cwd=empty_folder))
    _check_results(empty_folder / "reports" / "out")
    assert "PytestAssertRewriteWarning" not in output


def test_wrapper_with_a_config_of_ones_own(installed: Installed, empty_folder: Path) -> None:
    config = _my_profile(installed, empty_folder)
    _ok(_run([str(installed.bin / "ciba-harness"), "conformance", "--ciba-config", str(config),
              "--ciba-report", "out", *SHORT_SELECTION], cwd=empty_folder))
    _check_results(empty_folder / "out")


def test_plain_pytest_runs_the_suites_package(installed: Installed, empty_folder: Path) -> None:
    config = _my_profile(installed, empty_folder)
    _ok(_run([installed.python, "-m", "pytest", "--pyargs", "ciba_harness_conformance",
              "--ciba-config", str(config), "--ciba-report", "out", "-q", *SHORT_SELECTION],
             cwd=empty_folder))
    _check_results(empty_folder / "out", prefix="")  # pytest's rootdir: the package folder


def test_locust_loads_the_installed_scenarios(installed: Installed, empty_folder: Path) -> None:
    locustfile = _ok(_run([installed.python, "-c", "from ciba_harness.core._packages import "
                           "locustfile_path; print(locustfile_path())"], cwd=empty_folder)).strip()
    assert Path(locustfile).is_relative_to(installed.bin.parent)
    listing = _ok(_run([installed.python, "-m", "locust", "-f", locustfile, "--list"],
                       cwd=empty_folder, timeout=120))
    assert "BackchannelStorm" in listing and "TokenPolling" in listing


def test_pytest_at_the_repository_root_collects_without_errors() -> None:
    """`pytest .`: the root conftest.py holds `pytest_plugins` (refused below the root)."""
    process = _run([sys.executable, "-m", "pytest", ".", "--collect-only", "-q", "-p",
                    "no:cacheprovider"], cwd=REPO, timeout=300)
    tail = process.stdout[-3000:] + process.stderr[-2000:]
    assert process.returncode == 0, tail
    assert "error" not in process.stdout.splitlines()[-1], tail

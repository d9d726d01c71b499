"""The wheel's packages: the harness (src/ciba_harness) and the repository's top-level suite
folders, which keep their promised place here and install as importable packages of their own.
Everything else about the project is in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

# installed package name -> folder of this repository (shipped when the folder exists)
TOP_LEVEL_PACKAGES = {
    "ciba_harness_conformance": "conformance",
    "ciba_harness_client_conformance": "client_conformance",
    "ciba_harness_load": "load",
    "ciba_harness_fixtures": "fixtures",
}
PACKAGE_DATA = {
    "ciba_harness": ["py.typed", "requirements.json"],
    "ciba_harness.rp": ["client-requirements.json"],
    "ciba_harness_fixtures": ["profiles/*.toml", "keys/*.pem"],
}

present = {name: folder for name, folder in TOP_LEVEL_PACKAGES.items()
           if (HERE / folder / "__init__.py").is_file()}
setup(
    packages=[*find_packages("src"), *present],
    package_dir={"": "src", **present},
    package_data=PACKAGE_DATA,
    include_package_data=False,
)

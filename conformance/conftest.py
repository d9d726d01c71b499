"""The conformance suites. The ciba-harness pytest plugin (entry point) provides the fixtures:
`ciba` (the client of this test), `ciba_config`, `ciba_metadata`, `ciba_inbox`, `ciba_receiver`.
Run: pytest conformance [--ciba-config my-provider.toml], or wherever the harness is installed
pytest --pyargs ciba_harness_conformance. The fuzz plugin (ciba_harness._fuzz_plugin) comes
with the harness's plugin; pytest refuses `pytest_plugins` in a conftest below the root.
"""

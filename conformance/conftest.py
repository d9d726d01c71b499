"""The conformance suites. The ciba-harness pytest plugin (entry point) provides the fixtures:
`ciba` (the client of this test), `ciba_config`, `ciba_metadata`, `ciba_inbox`, `ciba_receiver`.
Run: pytest conformance [--ciba-config my-provider.toml]
"""

pytest_plugins = ["ciba_harness._fuzz_plugin"]

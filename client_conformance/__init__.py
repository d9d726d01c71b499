"""The client (RP) conformance plan: the harness plays the provider against a CIBA client.

Run: pytest client_conformance [--ciba-client-config client.toml], or where the harness is
installed, pytest --pyargs ciba_harness_client_conformance. The fixtures (`ciba_rp`,
`ciba_client_session`) come from the plugin ciba_harness.rp.pytest_plugin (entry point).
"""

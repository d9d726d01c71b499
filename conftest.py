"""The checkout's root conftest: plugins for every suite under this folder (`pytest .`,
`pytest conformance`, `pytest tests`). pytest accepts `pytest_plugins` only here, at the root.
An installed harness loads the same plugin through its entry point (ciba_harness.pytest_plugin)."""

pytest_plugins = ["ciba_harness.pytest_plugin._fuzz"]

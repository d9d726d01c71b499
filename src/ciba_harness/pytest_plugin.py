"""pytest plugin of ciba-harness (registered through the pytest11 entry point)."""

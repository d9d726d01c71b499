"""ciba-harness: conformance, fuzz and load testing for OpenID Connect CIBA providers."""
__version__ = "0.1.0"

"""Client (RP) conformance: the harness plays the provider against a CIBA client under test.

* `ClientTestProvider`: a real provider on loopback serving one test behaviour at a time,
  recording every request the client makes (``_provider``).
* client checks, one per `CIBA-RP-nn` requirement (``_checks``), the catalogue (``_catalogue``).
* client drivers: how the harness makes the client start a flow and learns its conclusion.
* `ReferenceClient`: a faithful poll / ping / push client with a catalogue of faults.
* the pytest plugin ``ciba_harness.rp.pytest_plugin`` (`--ciba-client-*` options) and the
  ``ciba-harness client`` command. See docs/client-conformance.md.
"""

from ciba_harness.rp._catalogue import ClientRequirement, client_catalogue

__all__ = ["ClientRequirement", "client_catalogue"]

"""The client-side requirement catalogue (`CIBA-RP-nn`), read from client-requirements.json.

IDs are stable: never renumber or reuse one. docs/client-requirements.md is rendered from the
same data (`python -m ciba_harness.rp.catalogue_markdown`), and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ciba_harness.core._errors import Severity
from ciba_harness.core._requirements import Requirement, read_catalogue

__all__ = ["ClientRequirement", "client_catalogue", "default_severity", "render_markdown"]


@dataclass(frozen=True)
class ClientRequirement(Requirement):
    """A catalogue row (the provider catalogue's fields) plus the spec sentence it restates;
    its own mandatory rule."""

    sentence: str

    @property
    def is_mandatory(self) -> bool:
        """MUST / REQUIRED / implied-from-a-MUST rows fail; SHOULD and descriptive rows warn."""
        level = self.level.upper()
        return level.startswith(("MUST", "REQUIRED"))


@cache
def client_catalogue() -> dict[str, ClientRequirement]:
    return read_catalogue("ciba_harness.rp", "client-requirements.json", ClientRequirement)


def default_severity(requirement_id: str) -> Severity:
    """The "Verdict severity" rule: MUST-type rows fail, the others warn."""
    entry = client_catalogue().get(requirement_id)
    return Severity.FAILURE if entry is None or entry.is_mandatory else Severity.WARNING


def render_markdown() -> str:
    """docs/client-requirements.md, from the catalogue data."""
    lines = [
        "# CIBA client (RP) requirement catalogue",
        "",
        "What a CIBA *client* must do, in a form the client test provider can observe. IDs are",
        "stable (`CIBA-RP-nn`): never renumbered or reused. The data file is",
        "`src/ciba_harness/rp/client-requirements.json`; this page is rendered from it",
        "(`python -m ciba_harness.rp.catalogue_markdown > docs/client-requirements.md`).",
        "",
        "Verdict severity follows the rule of the provider catalogue",
        "(shared/spec/ciba-requirements.md, \"Verdict severity\"): MUST / REQUIRED and implied rows",
        "fail; SHOULD and descriptive rows warn. Rows marked \"MUST (push) / MAY skip (token",
        "endpoint over TLS)\" fail for a pushed ID token and warn for one that came straight from",
        "the token endpoint (OIDC Core §3.1.3.7 step 6 lets TLS replace the signature check there:",
        "accepting it is security-relevant latitude). The spec sentences are short restatements;",
        "read the specifications for the exact wording.",
        "",
    ]
    group = None
    for requirement in client_catalogue().values():
        if requirement.group != group:
            group = requirement.group
            lines += [f"## {group}", "", "| ID | § | Level | Assertion | Spec sentence | Note |",
                      "|---|---|---|---|---|---|"]
        cells = [
            requirement.id, requirement.section, requirement.level, requirement.assertion,
            requirement.sentence, requirement.note,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        next_index = list(client_catalogue()).index(requirement.id) + 1
        rows = list(client_catalogue().values())
        if next_index >= len(rows) or rows[next_index].group != group:
            lines.append("")
    return "\n".join(lines)

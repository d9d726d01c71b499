"""The requirement catalogue (imported from shared/spec/ciba-requirements.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Requirement", "catalogue", "requirement_level"]


@dataclass(frozen=True)
class Requirement:
    id: str
    section: str
    level: str
    who: str
    assertion: str
    note: str
    group: str
    profile: str

    @property
    def is_mandatory(self) -> bool:
        """MUST-type rows: a broken one fails; the rest warn (SHOULD, MAY, undefined...)."""
        level = self.level.upper()
        return any(word in level for word in ("MUST", "REQUIRED", "IMPLIED")) and not (
            level.startswith(("SHOULD", "MAY"))
        )


@cache
def catalogue() -> dict[str, Requirement]:
    text = resources.files("ciba_harness").joinpath("requirements.json").read_text("utf-8")
    return {row["id"]: Requirement(**row) for row in json.loads(text)}


def requirement_level(requirement_id: str) -> str:
    entry = catalogue().get(requirement_id)
    return entry.level if entry else "unknown"

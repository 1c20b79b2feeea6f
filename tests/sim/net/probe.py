"""A message for network tests: it carries nothing but a kind and a size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Probe:
    """A test message of ``size`` bytes, counted under ``kind``."""

    kind: str
    size: int

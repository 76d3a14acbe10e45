"""What every check of the auditor returns: one `Finding` with one of four verdicts."""
from __future__ import annotations

from dataclasses import dataclass

CONSISTENT, INCONSISTENT, AMBIGUOUS, CIRCULAR = "consistent", "inconsistent", "ambiguous", "used for reconstruction"
# A printed one-decimal number agrees with another when within rounding.
ROUNDING_TOLERANCE = 0.051
CSV_COLUMNS = ["paper", "check", "id", "location", "quote", "cells", "computed", "stated", "verdict", "arithmetic"]


@dataclass
class Finding:
    paper: str
    check: str          # claim | ranking | internal | cross_paper | cross_paper_setting
    id: str
    location: str
    quote: str
    cells: str
    computed: str
    stated: str
    verdict: str
    arithmetic: str


def fmt(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}"
    return str(x)


def combine(outcomes: list[str]) -> str:
    """One verdict from the outcomes of a claim's readings: `inconsistent` only when every reading fails."""
    kinds = set(outcomes)
    if kinds == {CONSISTENT}:
        return CONSISTENT
    if kinds == {INCONSISTENT}:
        return INCONSISTENT
    return AMBIGUOUS

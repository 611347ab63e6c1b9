"""Named experiments, one per paper figure; the CLI, scripts and tests call the same code."""

from __future__ import annotations

from gradflow.errors import ArgumentError
from gradflow.experiments import cooccurrence, icl, ntp, regular
from gradflow.experiments.base import Experiment, Parameter

__all__ = ["REGISTRY", "Experiment", "Parameter", "get"]

REGISTRY: dict[str, Experiment] = {
    e.name: e
    for e in (cooccurrence.EXPERIMENT, ntp.EXPERIMENT, regular.EVEN_PAIRS, regular.PARITY_COT,
              icl.ICL_BALANCED, icl.ICL_IMBALANCED, icl.ICL_REPRESENTATIONS)
}


def get(name: str) -> Experiment:
    """The registered experiment ``name``."""
    if name not in REGISTRY:
        raise ArgumentError(f"unknown experiment {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]

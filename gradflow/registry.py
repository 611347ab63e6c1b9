"""Named experiments, one per paper figure; the CLI, sweeps, scripts and tests call the same
code. A paper registers its experiments with one line in :data:`REGISTRY`."""

from __future__ import annotations

from gradflow.errors import ArgumentError
from gradflow.experiment import Experiment
from gradflow.papers.cooccurrence import experiment as cooccurrence
from gradflow.papers.ntp import experiment as ntp
from gradflow.papers.regular import experiment as regular
from gradflow.papers.representation_icl import experiment as representation_icl
from gradflow.papers.softmax_icl import experiment as softmax_icl

__all__ = ["REGISTRY", "get"]

REGISTRY: dict[str, Experiment] = {
    e.name: e
    for e in (
        cooccurrence.EXPERIMENT,
        ntp.EXPERIMENT,
        *(regular.EVEN_PAIRS, regular.PARITY_COT),
        *(softmax_icl.ICL_BALANCED, softmax_icl.ICL_IMBALANCED),
        representation_icl.ICL_REPRESENTATIONS,
    )
}


def get(name: str) -> Experiment:
    """The registered experiment ``name``."""
    if name not in REGISTRY:
        raise ArgumentError(f"unknown experiment {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]

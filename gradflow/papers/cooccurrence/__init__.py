"""Word co-occurrence (Yang, Kailkhura, Wang, Liang, NeurIPS 2024, "Training Dynamics of
Transformers to Recognize Word Co-occurrence via Gradient Flow Analysis").

Derivation: ``docs/derivations/cooccurrence.md``; findings: ``docs/findings/cooccurrence.md``.
"""

from gradflow.papers.cooccurrence import protocol, theory
from gradflow.papers.cooccurrence.data import (
    MU1,
    MU2,
    MU3,
    N_SPECIAL,
    TYPE_LABELS,
    CooccurrenceData,
    make_dataset,
)
from gradflow.papers.cooccurrence.model import CooccurrenceTransformer, Forward
from gradflow.papers.cooccurrence.theory import balancing_ratios

__all__ = [
    "MU1",
    "MU2",
    "MU3",
    "N_SPECIAL",
    "TYPE_LABELS",
    "CooccurrenceData",
    "CooccurrenceTransformer",
    "Forward",
    "balancing_ratios",
    "make_dataset",
    "protocol",
    "theory",
]

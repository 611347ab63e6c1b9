"""In-context learning with one softmax attention layer on a finite feature dictionary (Huang,
Cheng, Liang, ICML 2024, "In-context convergence of transformers").

Derivation: ``docs/derivations/softmax_icl.md``; findings: ``docs/findings/icl.md``.
"""

from gradflow.papers.softmax_icl import protocol, theory
from gradflow.papers.softmax_icl.data import (
    MAX_COUNT_VECTORS,
    FeatureTask,
    count_vectors,
    make_task,
    n_count_vectors,
)
from gradflow.papers.softmax_icl.model import BalancedICL, FeatureICL
from gradflow.papers.softmax_icl.theory import fit_K_squared

__all__ = ["MAX_COUNT_VECTORS", "BalancedICL", "FeatureICL", "FeatureTask", "count_vectors",
           "fit_K_squared", "make_task", "n_count_vectors", "protocol", "theory"]

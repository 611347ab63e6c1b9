"""In-context learning with representations: multi-head softmax attention learns ridge
regression (Yang, Huang, Liang, Chi, NeurIPS 2024, "In-context learning with representations:
contextual generalization of trained transformers").

Derivation: ``docs/derivations/representation_icl.md``; findings: ``docs/findings/icl.md``.
"""

from gradflow.papers.representation_icl import protocol, theory
from gradflow.papers.representation_icl.data import RepresentationTask, make_task
from gradflow.papers.representation_icl.model import RepresentationTransformer
from gradflow.papers.representation_icl.theory import optimal_loss, ridge

__all__ = ["RepresentationTask", "RepresentationTransformer", "make_task", "optimal_loss",
           "protocol", "ridge", "theory"]

"""Attention as an SVM: the one-layer softmax attention whose (normalised) gradient flow
converges in direction to a max-margin token separator (Tarzanagh, Li, Zhang, Oymak,
NeurIPS 2023, "Max-margin token selection in attention mechanism"; Tarzanagh, Li,
Thrampoulidis, Oymak, "Transformers as support vector machines").

Derivation: ``docs/derivations/attention_svm.md``; the authors' protocol against the flow:
``scripts/compare_attention_svm.py``.
"""

from gradflow.papers.attention_svm import theory
from gradflow.papers.attention_svm.data import (
    ATTENTIONS,
    AttentionSVMData,
    make_dataset,
    random_instance,
)
from gradflow.papers.attention_svm.model import AttentionSVMModel

__all__ = ["ATTENTIONS", "AttentionSVMData", "AttentionSVMModel", "make_dataset",
           "random_instance", "theory"]

"""Masked vision pretraining: how one softmax-attention layer trained by masked-patch
reconstruction learns area-wide, diverse attention from feature-position correlations (Huang,
Wen, Chi, Liang, arXiv 2403.02233 v1/v2).

Status: the paper's body could not be read. The model class is high-confidence; the exact
parametrisation, the theorem constants and the phase definitions are **reconstructed**
(docs/derivations/masked.md, §Status), and every ambiguity is an option with a recommended
default. The reductions used (reduced coordinates, counts per area) are exact and tested against
the full-matrix model.
"""

from gradflow.papers.masked import theory
from gradflow.papers.masked.data import (
    MASKS,
    MaskedDesign,
    balanced,
    groups,
    imbalanced,
    make_design,
    query_masks,
    ring,
)
from gradflow.papers.masked.model import (
    MASK_TOKENS,
    SOFTMAX,
    MaskedAttention,
    MaskedFullQ,
    MaskedGrouped,
)

__all__ = ["MASKS", "MASK_TOKENS", "SOFTMAX", "MaskedAttention", "MaskedDesign", "MaskedFullQ",
           "MaskedGrouped", "balanced", "groups", "imbalanced", "make_design", "query_masks",
           "ring", "theory"]

"""Regular-language recognition with a one-layer transformer (Huang, Liang, Yang, ICML 2025,
"How Transformers Learn Regular Language Recognition"): even pairs and parity with
chain-of-thought.

Derivation: ``docs/derivations/regular.md``; findings: ``docs/findings/regular.md``; the
claims ledger: ``claims.py`` (``gradflow claims regular``).
"""

from gradflow.papers.regular import protocol, theory
from gradflow.papers.regular.data import (
    A_SYMBOL,
    B_SYMBOL,
    RegularData,
    all_strings,
    even_pairs,
    even_pairs_label,
    make_dataset,
    parity,
    parity_cot,
)
from gradflow.papers.regular.model import Forward, RegularTransformer
from gradflow.papers.regular.protocol import (
    cot_only_flow,
    first_separable_state,
    frozen_w_control,
    gradient_descent,
    parity_accuracy,
    parity_by_cot_generation,
    parity_by_truncated_cot,
    phase_rates,
    train,
)
from gradflow.papers.regular.theory import saturated_features, saturated_max_margin

__all__ = [
    "A_SYMBOL",
    "B_SYMBOL",
    "Forward",
    "RegularData",
    "RegularTransformer",
    "all_strings",
    "cot_only_flow",
    "even_pairs",
    "even_pairs_label",
    "first_separable_state",
    "frozen_w_control",
    "gradient_descent",
    "make_dataset",
    "parity",
    "parity_accuracy",
    "parity_by_cot_generation",
    "parity_by_truncated_cot",
    "parity_cot",
    "phase_rates",
    "protocol",
    "saturated_features",
    "saturated_max_margin",
    "theory",
    "train",
]

"""Next-token prediction with a one-layer transformer (Huang, Liang, Yang, NeurIPS 2024,
"Non-asymptotic convergence of training transformers for next-token prediction").

Derivation: ``docs/derivations/ntp.md``; findings: ``docs/findings/ntp.md``.
"""

from gradflow.papers.ntp import protocol, theory
from gradflow.papers.ntp.data import (
    FIXTURE_NAMES,
    NTPData,
    fixture,
    fixture_unseen,
    make_dataset,
    random_instance,
)
from gradflow.papers.ntp.model import Forward, NTPTransformer
from gradflow.papers.ntp.protocol import joint_flow, two_stage

__all__ = [
    "FIXTURE_NAMES",
    "Forward",
    "NTPData",
    "NTPTransformer",
    "fixture",
    "fixture_unseen",
    "joint_flow",
    "make_dataset",
    "protocol",
    "random_instance",
    "theory",
    "two_stage",
]

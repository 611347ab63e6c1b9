"""In-context linear regression with one linear self-attention layer (Zhang, Frei, Bartlett,
JMLR 2024, "Trained transformers learn linear models in-context").

Derivation: ``docs/derivations/linear_icl.md``; findings: ``docs/findings/icl.md``.
"""

from gradflow.papers.linear_icl import protocol, theory
from gradflow.papers.linear_icl.data import (
    LinearICLMixtureTask,
    LinearICLTask,
    PromptSample,
    exponential_spectrum_task,
    make_task,
    sample_prompts,
)
from gradflow.papers.linear_icl.model import LinearICLFull, LinearICLMixture, LinearICLReduced

__all__ = ["LinearICLFull", "LinearICLMixture", "LinearICLMixtureTask", "LinearICLReduced",
           "LinearICLTask", "PromptSample", "exponential_spectrum_task", "make_task", "protocol",
           "sample_prompts", "theory"]

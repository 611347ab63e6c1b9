"""In-context linear regression with one linear self-attention layer (Zhang, Frei, Bartlett,
JMLR 2024, "Trained transformers learn linear models in-context").

Derivation: ``docs/derivations/linear_icl.md``; findings: ``docs/findings/icl.md``.
"""

from gradflow.papers.linear_icl import theory
from gradflow.papers.linear_icl.data import LinearICLTask, PromptSample, make_task, sample_prompts
from gradflow.papers.linear_icl.model import LinearICLFull, LinearICLReduced

__all__ = ["LinearICLFull", "LinearICLReduced", "LinearICLTask", "PromptSample", "make_task",
           "sample_prompts", "theory"]

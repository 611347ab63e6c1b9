"""Small instances of every model, for tests that run over all of them (like diffrax's
``all_ode_solvers``): ``@pytest.mark.parametrize("case", ALL_MODELS)``.

Each entry of :data:`ALL_MODELS` is a ``pytest.param`` of a :class:`Case`, its id the model's
class name (with the dataset's for a class listed twice); calling the case builds
``(model, data, theta)`` afresh, and ``case.check_kwargs`` are the extra keyword arguments of
:func:`gradflow.testing.check_model` it needs. The paper modules are imported here and nowhere
else in the contract tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradflow.papers import attention_svm as asvm
from gradflow.papers import cooccurrence as cooc
from gradflow.papers import linear_icl as li
from gradflow.papers import masked, ntp
from gradflow.papers import regular as rg
from gradflow.papers import representation_icl as rp
from gradflow.papers import softmax_icl as sm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import attention_svm  # the out-of-tree example model, imported as tests/test_examples.py does

__all__ = ["ALL_MODELS", "Case"]


@dataclass(frozen=True)
class Case:
    """A small instance of one model: ``case()`` returns ``(model, data, theta)``."""

    build: Callable[[], tuple[Any, Any, np.ndarray]]
    check_kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> tuple[Any, Any, np.ndarray]:
        return self.build()


def _cooccurrence(reduced: bool = False) -> tuple[Any, Any, np.ndarray]:
    data = cooc.make_dataset(d=12, L=4, counts=(3, 1, 1, 1), rng=0)
    model = cooc.CooccurrenceTransformer(d=12, m=8, m1=6, L=4, rng=0, reduced=reduced)
    return model, data, model.init(rng=1)


def _ntp() -> tuple[Any, Any, np.ndarray]:
    data = ntp.fixture()
    model = ntp.NTPTransformer(data.d)
    return model, data, model.init(preset="zero")


def _even_pairs() -> tuple[Any, Any, np.ndarray]:
    data = rg.even_pairs(L_max=3)
    model = rg.RegularTransformer(data.d)
    return model, data, model.init(preset="zero")


def _parity_cot() -> tuple[Any, Any, np.ndarray]:
    data = rg.parity_cot(3)
    model = rg.RegularTransformer(data.d, lam=1.5)
    return model, data, model.init(rng=0, preset="normal")


LINEAR_TASK = {"reduced": (3, 10, 3), "full": (2, 4, 1)}
"""(d, N, seed) of the linear-ICL tasks. Their models' ``init`` needs ``task=`` (Assumption
3.3's bound on σ depends on Γ), so check_model gets it through ``init_kwargs``."""


def _linear_task(which: str) -> Any:
    d, N, seed = LINEAR_TASK[which]
    return li.make_task(d, N, "random", rng=seed)


def _linear_icl_reduced() -> tuple[Any, Any, np.ndarray]:
    task = _linear_task("reduced")
    model = li.LinearICLReduced(task.d)
    return model, task, model.init(rng=0, task=task)


def _linear_icl_full() -> tuple[Any, Any, np.ndarray]:
    task = _linear_task("full")
    model = li.LinearICLFull(task.d, task.N)
    return model, li.sample_prompts(task, 8, rng=2), model.init(rng=0, task=task)


def _linear_icl_mixture() -> tuple[Any, Any, np.ndarray]:
    task = li.exponential_spectrum_task(2, 10)
    model = li.LinearICLMixture(task.d)
    return model, task, model.init(rng=0, task=task)


def _feature_icl() -> tuple[Any, Any, np.ndarray]:
    model = sm.FeatureICL(3)
    return model, sm.make_task(3, 6, [0.5, 0.3, 0.2]), model.init(preset="zero")


def _balanced_icl() -> tuple[Any, Any, np.ndarray]:
    model = sm.BalancedICL(3, 12)
    return model, None, model.init()


def _representation_icl() -> tuple[Any, Any, np.ndarray]:
    model = rp.RepresentationTransformer(4, 6, 2)
    return model, rp.make_task(4, 6, 3, 3, rng=1), model.init(rng=0)


def _attention_svm() -> tuple[Any, Any, np.ndarray]:
    model = attention_svm.AttentionSVM(4)
    return model, attention_svm.make_instance(n=4, T=5, d=4, rng=0), model.init(rng=100)


def _attention_svm_paper(parametrization: str = "W", head: str = "fixed",
                         loss: str = "logistic", attention: str = "cross"
                         ) -> tuple[Any, Any, np.ndarray]:
    model = asvm.AttentionSVMModel(4, parametrization, head, loss)
    data = asvm.random_instance(4, 5, 4, attention=attention, rng=0)
    return model, data, model.init(rng=1)


def _masked_design():
    return masked.make_design([[0, 0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2, 0]], 0.4,
                              pi=[0.6, 0.4], z=[[1.0, 0.7, 1.3], [0.9, 1.1, 1.2]])


def _masked_reduced(**options: Any) -> tuple[Any, Any, np.ndarray]:
    design = _masked_design()
    model = masked.MaskedAttention.for_design(design, **options)
    return model, design, model.init(rng=0, preset="normal", scale=0.5)


def _masked_grouped() -> tuple[Any, Any, np.ndarray]:
    design = masked.balanced(3, 3, 0.4)
    model = masked.MaskedGrouped.for_query(design, 1)
    return model, design, np.random.default_rng(0).standard_normal(model.layout.size)


def _masked_full() -> tuple[Any, Any, np.ndarray]:
    design = masked.make_design([[0, 0, 1, 1, 1]], 0.5)
    model = masked.MaskedFullQ.for_design(design, mask_token="orthogonal", value_pos=True)
    return model, design, model.init(rng=0, preset="normal", scale=0.5)


SATURATED = {"allow_unresolved": {"100*random(seed=0)"}}
"""At the 100× point the loss's complex step is inexact where the attention saturates (the
read-out Σ φ_l a_l is written naively; ``gradflow.numerics.softmax_readout`` keeps it exact) and
check_gradient's references disagree: "unresolved", which is allowed there and only there (a
"mismatch" still fails). Measured against a 200-digit reference at that point: NTP's ∇W_kq is
exact to 1.6e-15 while its complex step is off by up to 3.9e-4; the regular model's ∇W is off by
4.0e-8 (cancellation in s − f) and its complex step by 1.1e-8."""


MASKED_SATURATED = SATURATED
"""MaskedGrouped at the 100× point: one group holds all but ~1e-6 of the attention and the
c-gradient is ~1e-30 (the loss 0.032); the complex step of the ratio rest/Z cancels in its
imaginary part (3.7e-28 where an 80-digit mpmath reference gives −6.0987e-30), while the closed
form, which never subtracts Z-sized terms, matches the reference to 1e-16 relative (measured for
docs/derivations/masked.md, §Counts per area)."""

ALL_MODELS = [
    pytest.param(Case(_cooccurrence), id="CooccurrenceTransformer"),
    pytest.param(Case(lambda: _cooccurrence(reduced=True)),
                 id="CooccurrenceTransformer-reduced"),
    pytest.param(Case(_ntp, SATURATED), id="NTPTransformer"),
    pytest.param(Case(_even_pairs), id="RegularTransformer-even_pairs"),
    pytest.param(Case(_parity_cot, SATURATED), id="RegularTransformer-parity_cot"),
    pytest.param(Case(_linear_icl_reduced, {"init_kwargs": {
        "task": _linear_task("reduced")}}), id="LinearICLReduced"),
    pytest.param(Case(_linear_icl_full, {"init_kwargs": {
        "task": _linear_task("full")}}), id="LinearICLFull"),
    pytest.param(Case(_linear_icl_mixture, {"init_kwargs": {
        "task": li.exponential_spectrum_task(2, 10)}}), id="LinearICLMixture"),
    pytest.param(Case(_feature_icl), id="FeatureICL"),
    pytest.param(Case(_balanced_icl), id="BalancedICL"),
    pytest.param(Case(_representation_icl), id="RepresentationTransformer"),
    pytest.param(Case(_attention_svm), id="AttentionSVM"),
    pytest.param(Case(_attention_svm_paper), id="AttentionSVMModel-W"),
    pytest.param(Case(lambda: _attention_svm_paper("KQ")), id="AttentionSVMModel-KQ"),
    pytest.param(Case(lambda: _attention_svm_paper("W", "trained", attention="self")),
                 id="AttentionSVMModel-W-trained-self"),
    pytest.param(Case(lambda: _attention_svm_paper("KQ", "trained", "correlation", "shared")),
                 id="AttentionSVMModel-KQ-trained-correlation-shared"),
    pytest.param(Case(_masked_reduced), id="MaskedAttention"),
    pytest.param(Case(lambda: _masked_reduced(softmax="unmasked", value_pos=True,
                                              mask_token="orthogonal")),
                 id="MaskedAttention-unmasked-value_pos-mask_token"),
    pytest.param(Case(_masked_grouped, MASKED_SATURATED), id="MaskedGrouped"),
    pytest.param(Case(_masked_full, {"init_kwargs": {"preset": "normal"}}), id="MaskedFullQ"),
]

"""The models' vectorised ``batched_grad`` overrides (contract rule 11) equal the per-member
``grad``, which is itself checked against the complex step in each paper's tests.

Every case draws B members (B = 1, 3, 7), every other one with weights ×10 (attention near
saturation), for data shared by all members and for per-member data, both where the datasets
stack (the vectorised path) and where they do not (the loop over members). The vectorised
path is shown to be taken: ``grad`` is called for none of the members at weights ×1 (one
member, and a member whose sums cancel badly, may go through ``grad``).

Tolerance: ``RTOL · max|g_b|`` per member and block, RTOL = 1e-13. The batched forms sum the
same terms in another order (sparse products, member-wide shifts of the softmax), so the two
agree to a few ulps of the largest term of a sum, which exceeds the block's largest entry by at
most 100× (the regular model computes a member whose sums cancel more by ``grad``; measured
worst 2e-14 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from gradflow.model import Model
from gradflow.papers import attention_svm as asvm
from gradflow.papers import cooccurrence as cooc
from gradflow.papers import ntp
from gradflow.papers import regular as rg
from gradflow.papers import softmax_icl as sm

RTOL = 1e-13
MEMBERS = (1, 3, 7)


@dataclass(frozen=True)
class Case:
    """A model, its shared data, per-member data (``stacking(B, rng)`` stacks, ``ragged(B,
    rng)`` does not; either may be None) and a scale of random weights."""

    model: Model
    shared: Any
    stacking: Callable[[int, np.random.Generator], list] | None = None
    ragged: Callable[[int, np.random.Generator], list] | None = None
    scale: float = 1.0
    complex_safe: bool = False


def _random_embedding_pairs(B: int, gen: np.random.Generator) -> list:
    positions = rg.even_pairs(3).max_position
    return [rg.even_pairs(3, embedding=gen.standard_normal((2 * positions + 1, 2 * positions)))
            for _ in range(B)]


def _ragged_strings(b: int) -> Any:
    """Datasets of one model (d = 8) with different strings: even pairs, parity, and
    even pairs of lengths ≤ 3 only (fewer strings)."""
    if b % 3 == 2:
        full = rg.even_pairs(4)
        short = full.lengths <= 3
        return rg.make_dataset([s[:n] for s, n in zip(full.symbols[short], full.lengths[short],
                                                       strict=True)],
                               full.y[short], full.weights[short], max_position=4)
    return (rg.even_pairs, rg.parity)[b % 3](4)


def _regular() -> Case:
    data = rg.even_pairs(4)
    return Case(rg.RegularTransformer(data.d, lam=2.0), data,
                stacking=lambda B, gen: [rg.even_pairs(4)] * B,
                ragged=lambda B, gen: [_ragged_strings(b) for b in range(B)])


def _regular_embedded() -> Case:
    positions = rg.parity_cot(3).max_position
    E = np.random.default_rng(5).standard_normal((2 * positions + 1, 2 * positions))
    data = rg.parity_cot(3, embedding=E)
    model = rg.RegularTransformer(data.d, lam=1.5)
    return Case(model, data)


def _regular_per_embedding() -> Case:
    data = _random_embedding_pairs(1, np.random.default_rng(0))[0]
    return Case(rg.RegularTransformer(data.d), data, stacking=_random_embedding_pairs)


def _ntp_instances(B: int, gen: np.random.Generator) -> list:
    """Random realizable instances: different numbers and lengths of sentences."""
    return [ntp.random_instance(gen, K=8, n_queries=2, n_sentences=8, lengths=(2, 5))
            for _ in range(B)]


def _ntp() -> Case:
    data = ntp.fixture()
    return Case(ntp.NTPTransformer(data.d), data, stacking=_ntp_instances)


def _embedded_instance(gen: np.random.Generator, K: int) -> Any:
    """A random instance with random embeddings E (10 × K)."""
    d = ntp.random_instance(gen, K=K, n_sentences=6)
    return ntp.make_dataset([d.sentence(i) for i in range(d.n)], d.y, d.collocation,
                            embedding=gen.standard_normal((10, K)))


def _ntp_embedded() -> Case:
    """Per-member embeddings stack; vocabularies of 8 and 9 tokens do not."""
    return Case(ntp.NTPTransformer(10), _embedded_instance(np.random.default_rng(7), 8),
                stacking=lambda B, gen: [_embedded_instance(gen, 8) for _ in range(B)],
                ragged=lambda B, gen: [_embedded_instance(gen, 8 + b % 2) for b in range(B)])


def _attention_svm(parametrization: str = "W", head: str = "fixed", loss: str = "logistic",
                   attention: str = "cross") -> Case:
    """Per-member instances of one shape stack; 4 and 5 sequences do not."""
    def instance(gen: np.random.Generator, n: int = 4) -> Any:
        return asvm.random_instance(n, 5, 4, attention=attention, rng=gen)

    return Case(asvm.AttentionSVMModel(4, parametrization, head, loss),
                instance(np.random.default_rng(0)),
                stacking=lambda B, gen: [instance(gen) for _ in range(B)],
                ragged=lambda B, gen: [instance(gen, 4 + b % 2) for b in range(B)])


def _priors(B: int, gen: np.random.Generator) -> np.ndarray:
    return gen.dirichlet(np.ones(3), size=B)


def _feature_icl(include_query: bool = False, mean_field: bool = False) -> Case:
    """Per-member priors p stack (one set of count vectors); N = 6 and 7 do not."""
    def task(p: Any, N: int = 6) -> Any:
        return sm.make_task(3, N, p, include_query=include_query, mean_field=mean_field)

    return Case(sm.FeatureICL(3), task([0.5, 0.3, 0.2]),
                stacking=lambda B, gen: [task(p) for p in _priors(B, gen)],
                ragged=lambda B, gen: [task(p, 6 + b % 2)
                                       for b, p in enumerate(_priors(B, gen))],
                complex_safe=True)


def _cooccurrence(reduced: bool = False) -> Case:
    """Per-member one-hot datasets of one shape stack; embedded (dense-path) ones do not."""
    def dataset(gen: Any, embedded: bool = False) -> Any:
        return cooc.make_dataset(d=12, L=4, counts=(3, 1, 1, 1), rng=gen,
                                 embedding="random_orthonormal" if embedded else None)

    model = cooc.CooccurrenceTransformer(d=12, m=8, m1=6, L=4, rng=0, reduced=reduced)
    return Case(model, dataset(0), stacking=lambda B, gen: [dataset(gen) for _ in range(B)],
                ragged=lambda B, gen: [dataset(gen, embedded=b % 2 == 1) for b in range(B)],
                complex_safe=True)


CASES = {
    "regular-even_pairs": _regular,
    "regular-parity_cot-embedded": _regular_embedded,
    "regular-per-member-embeddings": _regular_per_embedding,
    "ntp": _ntp,
    "ntp-embedded": _ntp_embedded,
    "cooccurrence": _cooccurrence,
    "cooccurrence-reduced": lambda: _cooccurrence(reduced=True),
    "feature_icl": _feature_icl,
    "feature_icl-query": lambda: _feature_icl(include_query=True),
    "feature_icl-mean_field": lambda: _feature_icl(mean_field=True),
    "balanced_icl": lambda: Case(sm.BalancedICL(3, 12), None,
                                 stacking=lambda B, gen: [None] * B, complex_safe=True),
    "attention_svm-W": _attention_svm,
    "attention_svm-KQ": lambda: _attention_svm("KQ"),
    "attention_svm-W-trained-self": lambda: _attention_svm("W", "trained", attention="self"),
    "attention_svm-KQ-trained-correlation-shared": lambda: _attention_svm(
        "KQ", "trained", "correlation", "shared"),
}


def _members(case: Case, B: int, gen: np.random.Generator) -> np.ndarray:
    """B random parameter vectors, odd members ×10."""
    size = case.model.layout.size
    scale = case.scale * np.where(np.arange(B) % 2 == 1, 10.0, 1.0)[:, None]
    return scale * gen.standard_normal((B, size))


def _per_member(case: Case, thetas: np.ndarray, data: Any) -> list[dict[str, np.ndarray]]:
    layout = case.model.layout
    return [case.model.grad(layout.unpack(theta), data[b] if isinstance(data, list) else data)
            for b, theta in enumerate(thetas)]


def _assert_rows_equal(got: dict[str, np.ndarray], rows: list[dict[str, np.ndarray]],
                       layout: Any) -> None:
    assert set(got) == set(layout.names)
    for name, shape in layout.shapes.items():
        assert got[name].shape == (len(rows), *shape)
        for b, row in enumerate(rows):
            scale = np.max(np.abs(row[name]))
            error = np.max(np.abs(got[name][b] - row[name]))
            assert error <= RTOL * scale, (name, b, error, scale)


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]()


def test_the_overrides_are_overrides(case):
    assert type(case.model).batched_grad is not Model.batched_grad


_BUILT = {name: build() for name, build in CASES.items()}
KINDS = [(name, kind) for name, built in _BUILT.items()
         for kind in ("shared", "stacking", "ragged")
         if kind == "shared" or getattr(built, kind) is not None]
"""The (model, data kind) pairs that exist: a model without stacking or ragged per-member data
has no such case (rather than a skipped one)."""
COMPLEX_SAFE = [name for name, built in _BUILT.items() if built.complex_safe]
"""The models whose ``grad`` takes complex θ (the others' docstrings say real θ only)."""


@pytest.mark.parametrize("B", MEMBERS)
@pytest.mark.parametrize(("name", "kind"), KINDS, ids=[f"{n}-{k}" for n, k in KINDS])
def test_batched_grad_equals_the_per_member_grad(name, kind, B, monkeypatch):
    case = CASES[name]()
    make = {"shared": lambda B, gen: case.shared, "stacking": case.stacking,
            "ragged": case.ragged}[kind]
    gen = np.random.default_rng(B)
    thetas = _members(case, B, gen)
    data = make(B, gen)
    layout = case.model.layout
    rows = _per_member(case, thetas, data)
    calls = []
    if kind != "ragged":
        grad = case.model.grad

        def counted(*args):
            calls.append(1)
            return grad(*args)

        monkeypatch.setattr(case.model, "grad", counted)
    got = case.model.batched_grad(layout.unpack_batch(thetas), data)
    _assert_rows_equal(got, rows, layout)
    if kind != "ragged" and B > 1:  # vectorised: grad at most for the members ×10 (a
        assert len(calls) <= B // 2  # saturated one may go to grad), never for all
    again = case.model.batched_grad(layout.unpack_batch(thetas), data)  # the cached stack
    _assert_rows_equal(again, rows, layout)


def _ntp_saturated(model: Model, data: Any, gen: np.random.Generator) -> np.ndarray:
    """θ = 1000·(W_kq*, W_ov*) (the max-margin solutions, margins 1) plus noise: attention one-
    hot on x* and logit margins ≈ 1000, so the plain gradient underflows to 0."""
    from gradflow.papers.ntp import theory

    W = {"W_kq": theory.max_margin_kq(data).w, "W_ov": theory.max_margin_ov(data).w}
    return model.layout.pack({k: 1000.0 * v + 0.1 * gen.standard_normal(v.shape)
                              for k, v in W.items()})


def _attention_saturated(model: Model, data: Any, gen: np.random.Generator) -> np.ndarray:
    """Weights ×1e5: the attention saturates and its pair weights φ_t φ_τ underflow."""
    return 1e5 * model.init(gen)


CHUNKED = {"regular-per-member-embeddings": "gradflow.papers.regular.model",
           "ntp": "gradflow.papers.ntp.model",
           "attention_svm-KQ": "gradflow.papers.attention_svm.model",
           "feature_icl": "gradflow.papers.softmax_icl.model",
           "feature_icl-mean_field": "gradflow.papers.softmax_icl.model"}
"""Overrides that split the members into chunks (sized to stay in cache), by module."""


@pytest.mark.parametrize("name", list(CHUNKED))
@pytest.mark.parametrize("kind", ["shared", "stacking"])
def test_members_in_chunks_equal_the_per_member_grad(name, kind, monkeypatch):
    """With a chunk of one member (the test sizes fit in one chunk otherwise), B = 7."""
    import importlib

    monkeypatch.setattr(importlib.import_module(CHUNKED[name]), "_CHUNK_ENTRIES", 1)
    case = CASES[name]()
    gen = np.random.default_rng(7)
    thetas = _members(case, 7, gen)
    data = case.shared if kind == "shared" else case.stacking(7, gen)
    rows = _per_member(case, thetas, data)
    got = case.model.batched_grad(case.model.layout.unpack_batch(thetas), data)
    _assert_rows_equal(got, rows, case.model.layout)


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("name", COMPLEX_SAFE)
def test_the_complex_step_of_batched_grad_is_the_per_member_one(name, B):
    """Where ``grad`` is complex-step safe, so is the override: Im g(θ + ihv)/h (the Hessian
    along v) equals member by member, to RTOL of its largest entry."""
    case = CASES[name]()
    gen = np.random.default_rng(B)
    thetas = _members(case, B, gen)
    v = gen.standard_normal(thetas.shape)
    h = 1e-20
    stepped = thetas + 1j * h * v
    layout = case.model.layout
    got = case.model.batched_grad(layout.unpack_batch(stepped), case.shared)
    rows = _per_member(case, stepped, case.shared)
    assert all(np.any(g.imag) for g in got.values())  # the step reached every block
    _assert_rows_equal({k: g.imag / h for k, g in got.items()},
                       [{k: g.imag / h for k, g in row.items()} for row in rows], layout,
                       )


SCALED = {"ntp": (_ntp, _ntp_saturated),
          "attention_svm-W": (_attention_svm, _attention_saturated),
          "attention_svm-KQ-trained": (lambda: _attention_svm("KQ", "trained"),
                                       _attention_saturated)}
"""Cases whose model has ``batched_scaled_grad`` (the normalised flows' gradient), with a
saturated member of given data."""


@pytest.mark.parametrize("name", list(SCALED))
@pytest.mark.parametrize("per_member", [False, True])
def test_batched_scaled_grad_equals_the_per_member_one_past_underflow(name, per_member):
    """For random members at weights ×1 and ×10 and saturated ones, whose plain gradient
    underflows to 0: log-scales to 1e-12 absolute (the same maxima of the same log-weights,
    added in another order: ulps of |log scale| ≲ 2e3), and blocks, brought to the
    reference's scale, to (RTOL + 8 ε |log scale|) of their largest entry: each weight is the
    exp of a sum of log-terms as large as the log-scale, rounded in another order, so it
    carries a relative error of a few ulps of |log scale| (1.1e-13 measured at 2e3)."""
    build, saturated = SCALED[name]
    case = build()
    gen = np.random.default_rng(11)
    B = 6
    data = case.stacking(B, gen) if per_member else case.shared
    layout = case.model.layout
    members = [data[b] if per_member else data for b in range(B)]
    thetas = np.stack([saturated(case.model, members[b], gen) if b % 3 == 2 else
                       (1.0 + 9.0 * (b % 3)) * gen.standard_normal(layout.size)
                       for b in range(B)])
    blocks, log_scales = case.model.batched_scaled_grad(layout.unpack_batch(thetas), data)
    underflows = 0
    for b, theta in enumerate(thetas):
        ref_blocks, ref_scales = case.model.scaled_grad(layout.unpack(theta), members[b])
        underflows += sum(not np.any(v) for v in case.model.grad(layout.unpack(theta),
                                                                 members[b]).values())
        for k in layout.names:
            assert log_scales[k][b] == pytest.approx(ref_scales[k], abs=1e-12)
            at_reference = blocks[k][b] * (np.exp(log_scales[k][b] - ref_scales[k])
                                           if np.isfinite(ref_scales[k]) else 1.0)
            scale = np.max(np.abs(ref_blocks[k]))
            rtol = RTOL + 8 * np.finfo(float).eps * (abs(ref_scales[k])
                                                     if np.isfinite(ref_scales[k]) else 0.0)
            assert np.max(np.abs(at_reference - ref_blocks[k])) <= rtol * scale, (k, b)
    assert underflows > 0  # the saturated members test the regime the scales exist for

"""Predictions of Huang, Liang, Yang (NeurIPS 2024) for next-token prediction: the two
max-margin limits, the predicted rates, and the extended partial order under dataset shift.

Derivations: ``docs/derivations/ntp.md`` (§Two-stage normalised flow, §Max-margin problems,
§Extended order under dataset shift). Under the normalised gradient flow (unit speed) the sharp
predictions are dist = ‖Ŵ − Ŵ*‖ ~ 1/t, 1 − cos ~ 1/t², and a loss excess decaying like
exp(−t/‖W*‖_F).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from gradflow.errors import ArgumentError, GradflowError
from gradflow.maxmargin import MaxMarginSolution, solve_max_margin
from gradflow.numerics import log_softmax
from gradflow.papers.ntp.data import NTPData

__all__ = [
    "COS_SLOPE",
    "DIST_SLOPE",
    "Prediction",
    "attention_vertex_gaps",
    "closure_constraints",
    "fitted_slope",
    "kq_constraints",
    "loss_floor_approximation",
    "loss_rate",
    "max_margin_kq",
    "max_margin_kq_tied",
    "max_margin_ov",
    "ov_constraints",
    "predict_unseen",
    "stage1_zero_init_loss",
    "strict_complementarity",
    "transitive_closure",
    "vertex_slopes",
    "vertex_ties",
]

COS_SLOPE = -2.0
"""log(1 − cos) against log t under NGF (docs/derivations/ntp.md, §Two-stage normalised flow)."""
DIST_SLOPE = -1.0
"""log ‖Ŵ − Ŵ*‖ against log t under NGF (docs/derivations/ntp.md, §Two-stage normalised flow)."""


def ov_constraints(data: NTPData) -> np.ndarray:
    """Rows of (P-ov): ⟨E(1_{n(x)} − 1_c) e_xᵀ, W⟩ ≥ 1 for each stage-1 token x and c ≠ n(x).

    Returns
    -------
    ndarray, shape (|stage1| · (K − 1), d, d)
    """
    E = data.embedding
    rows = []
    for x in data.stage1_tokens:
        target = data.collocation[x]
        for c in range(data.K):
            if c != target:
                rows.append(np.outer(E[:, target] - E[:, c], E[:, x]))
    return np.array(rows)


def kq_constraints(data: NTPData) -> np.ndarray:
    """Rows of (P-kq): ⟨(e_{x*} − e_x) e_qᵀ, W⟩ ≥ 1 for every sentence with query q and every
    distinct token x ≠ x* of it (the query included), deduplicated (a modelling choice of
    gradflow: docs/derivations/ntp.md, §Max-margin problems).

    Returns
    -------
    ndarray, shape (k, d, d)
    """
    E = data.embedding
    triples = sorted({(int(data.optimal[i]), x, int(data.query[i]))
                      for i in range(data.n) for x in set(data.sentence(i))
                      if x != data.optimal[i]})
    return np.array([np.outer(E[:, b] - E[:, x], E[:, q]) for b, x, q in triples])


def max_margin_ov(data: NTPData) -> MaxMarginSolution:
    """W_ov*: the certified solution of (P-ov)."""
    return solve_max_margin(ov_constraints(data))


def max_margin_kq(data: NTPData) -> MaxMarginSolution:
    """W_kq*: the certified solution of (P-kq)."""
    return solve_max_margin(kq_constraints(data))


def loss_rate(W_star: np.ndarray) -> float:
    """The predicted log-slope of the loss excess under NGF: −1/‖W*‖_F."""
    return -1.0 / float(np.linalg.norm(W_star))


def fitted_slope(x: np.ndarray, y: np.ndarray, *, log_x: bool = True) -> float:
    """Least-squares slope of log y against log x (or against x when ``log_x`` is False)."""
    x = np.log(np.asarray(x, dtype=float)) if log_x else np.asarray(x, dtype=float)
    return float(np.polyfit(x, np.log(np.asarray(y, dtype=float)), 1)[0])


def transitive_closure(data: NTPData) -> dict[int, set[tuple[int, int]]]:
    """Per query, every pair (x, x') with x <_q x' implied by the observed relations."""
    closure: dict[int, set[tuple[int, int]]] = {}
    for q, edges in data.order_edges().items():
        nodes = sorted({x for e in edges for x in e})
        index = {x: i for i, x in enumerate(nodes)}
        reach = np.zeros((len(nodes), len(nodes)), dtype=bool)
        for a, b in edges:
            reach[index[a], index[b]] = True
        for k in range(len(nodes)):  # Floyd–Warshall on booleans (tiny graphs)
            reach |= reach[:, [k]] & reach[[k], :]
        closure[q] = {(nodes[i], nodes[j]) for i, j in zip(*np.nonzero(reach), strict=True)}
    return closure


@dataclass(frozen=True)
class Prediction:
    """The predicted next token of one unseen sentence.

    Attributes
    ----------
    sentence : list of int
    by_closure : int or None
        n(x*) when the transitive closure of the observed order has a unique maximal token x*
        in the sentence; None ("undetermined") otherwise.
    by_score : int or None
        n(x^ext) with x^ext = arg max_x σ_q(x), σ_q(x) = e_xᵀ W_kq* e_q, when the arg max is
        unique (ties within 1e-9 are undetermined).
    note : str
        Why a prediction is undetermined: ``"unseen query"``, ``"tie"``, ``"not comparable"``,
        or ``"collocate of x not trained in stage 1"`` (the model cannot know n(x) then).
    model : int or None
        The trained model's arg-max prediction, with ``confidence`` its probability.
    """

    sentence: list[int]
    by_closure: int | None
    by_score: int | None
    note: str = ""
    model: int | None = None
    confidence: float | None = None


def _collocate(x: int, data: NTPData) -> tuple[int | None, str]:
    if x not in data.stage1_tokens:
        return None, f"collocate of {data.name(x)} not trained in stage 1"
    return int(data.collocation[x]), ""


def _closure_prediction(sentence, q, closure, data) -> tuple[int | None, str]:
    if q not in closure:
        return None, "unseen query"
    tokens = set(sentence)
    maximal = [x for x in tokens if all(x == o or (o, x) in closure[q] for o in tokens)]
    if len(maximal) != 1:
        return None, "not comparable"
    return _collocate(maximal[0], data)


def _score_prediction(sentence, q, W_kq_star, data) -> tuple[int | None, str]:
    if q not in set(data.query.tolist()):
        return None, "unseen query"
    tokens = sorted(set(sentence))
    E = data.embedding
    scores = np.array([E[:, x] @ W_kq_star @ E[:, q] for x in tokens])
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    if best.size != 1:
        return None, "tie"
    return _collocate(tokens[best[0]], data)


def predict_unseen(
    data: NTPData,
    sentences: Sequence[Sequence[int]],
    W_kq_star: np.ndarray,
    *,
    model: Any = None,
    params: dict[str, np.ndarray] | None = None,
) -> list[Prediction]:
    """Predictions for unseen sentences by the extended order (closure and score) and, when
    ``model`` and ``params`` are given, by the trained model with its confidence
    (docs/derivations/ntp.md, §Extended order under dataset shift)."""
    closure = transitive_closure(data)
    out = []
    for sentence in sentences:
        sentence = [int(t) for t in sentence]
        q = sentence[-1]
        by_closure, note_closure = _closure_prediction(sentence, q, closure, data)
        by_score, note_score = _score_prediction(sentence, q, W_kq_star, data)
        predicted = confidence = None
        if model is not None and params is not None:
            probe = NTPData(tokens=np.array([sentence]), lengths=np.array([len(sentence)]),
                            y=np.zeros(1, dtype=int), optimal=np.zeros(1, dtype=int),
                            collocation=data.collocation, embedding=data.embedding,
                            stage1_tokens=data.stage1_tokens, names=data.names)
            p = np.exp(model.forward(params, probe).log_p[0])
            predicted, confidence = int(np.argmax(p)), float(np.max(p))
        note = note_score or note_closure
        out.append(Prediction(sentence, by_closure, by_score, note, predicted, confidence))
    return out


# ------------------------------------ beyond the two-stage reading (docs/derivations/ntp.md)


def closure_constraints(data: NTPData) -> np.ndarray:
    """Rows of (P-kq) written on the transitive closure of the observed orders
    (docs/derivations/ntp.md, §Max-margin problems): ⟨(e_x' − e_x) e_qᵀ, W⟩ ≥ 1 for every pair
    x <_q x' of the closure; shape (k, d, d)."""
    E = data.embedding
    return np.array([np.outer(E[:, hi] - E[:, lo], E[:, q])
                     for q, pairs in sorted(transitive_closure(data).items())
                     for lo, hi in sorted(pairs)])


def stage1_zero_init_loss(t: Any, data: NTPData, W_ov_star: np.ndarray) -> np.ndarray:
    """L_0(t) of stage 1 from W_ov = 0 with one-hot E: log(1 + (K − 1) e^{−t/‖W_ov*‖}).

    From zero, every stage-1 column starts with the gradient −(1_{n(x)} − 1/K)/|S| (uniform
    p), i.e. along W_ov*; along W_ov* all columns have the same margins, so the gradient
    stays along it and the unit-speed flow is W_ov(t) = t W_ov*/‖W_ov*‖ exactly, with margin
    t/‖W_ov*‖ against each of the K − 1 other tokens.
    """
    if not np.array_equal(data.embedding, np.eye(data.K)):
        raise ArgumentError("the zero-init closed form assumes one-hot embeddings E = I")
    t = np.asarray(t, dtype=float)
    return np.log1p((data.K - 1) * np.exp(-t / float(np.linalg.norm(W_ov_star))))


def loss_floor_approximation(data: NTPData, W_ov: np.ndarray, W_ov_star: np.ndarray) -> float:
    """The approximation of the stage-2 floor (docs/derivations/ntp.md, §Two-stage normalised
    flow): L_∞ ≈ (K − 1)·exp(−‖W_ov‖/‖W_ov*‖)
    (valid when W_ov lies along W_ov* and every optimal token was trained in stage 1)."""
    return float((data.K - 1) * np.exp(-np.linalg.norm(W_ov) / np.linalg.norm(W_ov_star)))


def vertex_slopes(data: NTPData, W_ov: np.ndarray, i: int) -> np.ndarray:
    """a_k = ∂ℓ_i/∂φ on a copy of token k (a_k = e_kᵀ W_ovᵀ E r, r = p − 1_y) with the
    attention of sentence i one-hot on its optimal token; shape (K,)."""
    E = data.embedding
    logits = E.T @ W_ov @ E[:, int(data.optimal[i])]
    r = np.exp(log_softmax(logits[None, :], axis=1)[0])
    r[int(data.y[i])] -= 1.0
    return E.T @ W_ov.T @ E @ r


def attention_vertex_gaps(data: NTPData, W_ov: np.ndarray) -> np.ndarray:
    """For each sentence, min over its other tokens x of a_x − a_{x*}, a = ∂ℓ/∂φ at attention
    one-hot on x* (W_ov fixed): the slope of ℓ along the edge of the attention simplex from
    x* towards x.

    ℓ(φ) = −log softmax(Eᵀ W_ov X φ)_y is convex in φ, so attending to x* alone minimises
    the sentence's loss over all attention weights iff every gap is ≥ 0. When a gap is
    negative, a mixture of x* and x beats the vertex, the stage-2 loss has an infimum below
    L_∞(W_ov), and the flow need not approach W_kq* (which presumes attention one-hot on x*
    in every sentence). Returns the gaps, shape (N,) (+inf for a sentence of copies of x*).
    """
    gaps = np.full(data.n, np.inf)
    for i in range(data.n):
        a, star = vertex_slopes(data, W_ov, i), int(data.optimal[i])
        others = [x for x in set(data.sentence(i)) if x != star]
        if others:
            gaps[i] = min(a[x] - a[star] for x in others)
    return gaps


def vertex_ties(data: NTPData, W_ov: np.ndarray) -> list[tuple[int, int, int]]:
    """The (x*, x, q) of every sentence whose edge from x* to x has a negative vertex gap
    (:func:`attention_vertex_gaps`): the pairs a mixture ties instead of separating."""
    ties = set()
    for i in range(data.n):
        a, star = vertex_slopes(data, W_ov, i), int(data.optimal[i])
        ties |= {(star, x, int(data.query[i])) for x in set(data.sentence(i))
                 if x != star and a[x] < a[star]}
    return sorted(ties)


def max_margin_kq_tied(data: NTPData, ties: Sequence[tuple[int, int, int]]
                       ) -> MaxMarginSolution:
    """The max-margin problem (P-kq) with the pairs ``ties`` = [(x*, x, q), ...] tied instead
    of separated: min ½‖W‖² s.t. the other rows ≥ 1 and ⟨(e_x* − e_x) e_qᵀ, W⟩ = 0.

    Solved exactly by projection: with P the orthogonal projector onto the complement of the
    tied rows, the solution lies in that complement, where ⟨a, W⟩ = ⟨P a, W⟩; so it is the
    certified solution of the problem with rows P a (``solve_max_margin``).
    """
    E = data.embedding
    tied = np.array([np.outer(E[:, b] - E[:, x], E[:, q]).ravel() for b, x, q in ties])
    rows = kq_constraints(data)
    shape = rows.shape[1:]
    flat = rows.reshape(len(rows), -1)
    if tied.size == 0:
        return solve_max_margin(rows)
    basis, _ = np.linalg.qr(tied.T)
    keep = [i for i in range(len(flat))
            if not any(np.allclose(flat[i], t) for t in tied)]
    projected = flat[keep] - (flat[keep] @ basis) @ basis.T
    return solve_max_margin(projected.reshape(len(keep), *shape))


def strict_complementarity(data: NTPData, solution: MaxMarginSolution | None = None,
                           tol: float = 1e-9) -> dict[str, Any]:
    """Does (P-kq) have a dual solution positive on every tight constraint?

    The tight rows a_j (⟨a_j, W*⟩ ≤ 1 + ``tol``) and the LP max s s.t. Σ_j γ_j a_j = W*,
    γ_j ≥ s, γ ≥ 0 (HiGHS). Its value is the largest achievable smallest multiplier over all
    dual solutions (they are the γ ≥ 0 with Σ γ_j a_j = W*); > 0 means strict complementarity
    holds. The implicit-bias expansion W(s) = W* log s + W̃ + o(1) of gradient flow on an
    exponential-tailed loss needs a bounded W̃ with e^{−⟨a_j, W̃⟩} ∝ γ_j > 0 on every tight
    row (the non-degeneracy Soudry et al., JMLR 2018, assume); without such a dual solution
    the residual grows like log log s, i.e. a direction error ~ log t / t in NGF time instead
    of 1/t (``docs/derivations/ntp.md``).

    Returns
    -------
    dict
        ``rows``, ``tight``, ``support`` (multipliers > 0 in the solver's dual solution),
        ``rank`` (of the tight rows) and ``min_multiplier`` (the LP value).
    """
    rows = kq_constraints(data)
    solution = max_margin_kq(data) if solution is None else solution
    A = rows.reshape(len(rows), -1)
    w = solution.w.ravel()
    tight = np.flatnonzero(A @ w <= 1.0 + tol)
    k = tight.size
    c = np.zeros(k + 1)
    c[-1] = -1.0
    A_eq = np.hstack([A[tight].T, np.zeros((A.shape[1], 1))])
    A_ub = np.hstack([-np.eye(k), np.ones((k, 1))])
    lp = linprog(c, A_ub=A_ub, b_ub=np.zeros(k), A_eq=A_eq, b_eq=w,
                 bounds=[(0, None)] * k + [(None, None)], method="highs")
    if not lp.success:
        raise GradflowError(f"strict-complementarity LP failed: {lp.message}")
    return {"rows": len(rows), "tight": int(k), "support": int(solution.support.size),
            "rank": int(np.linalg.matrix_rank(A[tight])), "min_multiplier": float(lp.x[-1])}

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

from gradflow.maxmargin import MaxMarginSolution, solve_max_margin
from gradflow.papers.ntp.data import NTPData

__all__ = [
    "COS_SLOPE",
    "DIST_SLOPE",
    "Prediction",
    "fitted_slope",
    "kq_constraints",
    "loss_rate",
    "max_margin_kq",
    "max_margin_ov",
    "ov_constraints",
    "predict_unseen",
    "transitive_closure",
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

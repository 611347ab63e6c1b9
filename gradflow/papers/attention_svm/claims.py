"""Attention as an SVM (Tarzanagh, Li, Zhang, Oymak, NeurIPS 2023, "Max-margin token selection
in attention mechanism"; Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as support vector
machines")

The runs integrate the normalised flow of the one-layer attention model on instances drawn as
in the authors' local-convergence experiment (n = 6, T = 8, d = 10, their initialisation) to
t = 1e8, run the authors' normalised GD (step 0.1, eps 2.2e-16, 2000 iterations, rewritten from
its description) against the flow at t = 0.1·k, and follow the (K, Q) parametrisation on
small instances against the nuclear-norm SVM, solved and certified by weak duality with NumPy
and SciPy (``docs/derivations/attention_svm.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.claims import Claim, Equals, Ledger, Within
from gradflow.papers.attention_svm import protocol, theory
from gradflow.papers.attention_svm.data import random_instance
from gradflow.papers.attention_svm.model import AttentionSVMModel

__all__ = ["LEDGER"]

LOCAL_INSTANCES = 8
T_END = 1e8
PEER_INSTANCES = 3
PEER_ITERATIONS = (1, 10, 100, 500, 1000, 2000)
KQ_INSTANCES = 3
KQ_TIMES = (1e2, 1e3)


def _local(progress: bool) -> list[dict[str, Any]]:
    model = AttentionSVMModel(10)
    runs = []
    for i in range(LOCAL_INSTANCES):
        data = random_instance(6, 8, 10, rng=[0, i])
        traj = protocol.normalized_flow(model, data, T_END, theta0=model.init(rng=[0, i, 1]),
                                        per_decade=5, progress=progress)
        track = protocol.svm_track(model, data, traj)
        runs.append({"data": data, "traj": traj, "track": track,
                     "test": theory.local_optimality(data, track.final, track.final_solution)})
    return runs


def _peer(progress: bool) -> list[dict[str, Any]]:
    model = AttentionSVMModel(10)
    runs = []
    k = np.array(PEER_ITERATIONS)
    for i in range(PEER_INSTANCES):
        data = random_instance(6, 8, 10, rng=[0, i])
        theta0 = model.init(rng=[0, i, 1])
        gd = protocol.peer_gd(model, data, theta0)
        traj = protocol.normalized_flow(model, data, protocol.LR * k[-1], theta0=theta0,
                                        record_at=protocol.LR * k, progress=progress)
        reference = theory.max_margin(data, model.selection(
            model.layout.unpack(gd.theta[-1]), data)).w  # the authors' reference: GD's own
        cos_gd = [1 - theory.one_minus_cos(gd.theta[j].reshape(10, 10), reference) for j in k]
        cos_flow = [1 - theory.one_minus_cos(traj.theta[list(traj.t).index(protocol.LR * j)]
                                             .reshape(10, 10), reference) for j in k]
        runs.append({"gd": gd, "cos_gd": np.array(cos_gd), "cos_flow": np.array(cos_flow)})
    return runs


def _kq(progress: bool) -> list[dict[str, Any]]:
    model = AttentionSVMModel(4, "KQ")
    runs = []
    for i in range(KQ_INSTANCES):
        data = random_instance(3, 4, 4, rng=[0, i])
        traj = protocol.normalized_flow(model, data, KQ_TIMES[-1], theta0=model.init(
            rng=[0, i, 1]), record_at=np.array(KQ_TIMES), progress=progress)
        final = traj.observables["selected"][-1]
        nuclear = theory.max_margin_nuclear(theory.svm_rows(data, final))
        frobenius = theory.max_margin(data, final).w
        weights = [model.weight(model.layout.unpack(th)) for th in traj.theta[1:]]
        runs.append({"nuclear": [theory.one_minus_cos(W, nuclear.W) for W in weights],
                     "frobenius": [theory.one_minus_cos(W, frobenius) for W in weights],
                     "gap": nuclear.gap})
    return runs


def _kq_check(runs: list[dict[str, Any]]) -> float:
    """max over instances of 1 − cos to the nuclear-norm SVM at the last time, or inf unless it
    fell from the first time and is below 1 − cos to the Frobenius SVM on every instance."""
    ok = all(r["nuclear"][-1] < r["nuclear"][0] and r["nuclear"][-1] < r["frobenius"][-1]
             for r in runs)
    return max(r["nuclear"][-1] for r in runs) if ok else float("inf")


RUNS = {"local": _local, "peer": _peer, "kq": _kq}


def _at(track, t: float) -> float:
    return float(track.one_minus_cos[int(np.argmin(np.abs(track.t - t)))])


def _slopes(runs: list[dict[str, Any]]) -> list[float]:
    out = []
    for r in runs:
        tr = r["track"]
        window = (tr.t >= 1e4) & (tr.t <= T_END)
        out.append(theory.fitted_slope(tr.t[window], tr.one_minus_cos[window]))
    return [min(out), max(out)]


def _norm_rate(runs: list[dict[str, Any]]) -> float:
    """max over instances of |(‖W(1e8)‖ − ‖W(1e7)‖)/(1e8 − 1e7) − 1|."""
    worst = 0.0
    for r in runs:
        tr = r["track"]
        k7 = int(np.argmin(np.abs(tr.t - 1e7)))
        speed = (tr.norm[-1] - tr.norm[k7]) / (tr.t[-1] - tr.t[k7])
        worst = max(worst, abs(speed - 1.0))
    return worst


CLAIMS = (
    Claim(
        id="attention_svm.direction_to_svm",
        statement="The normalised flow converges in direction to the attention SVM W^mm of "
                  "the tokens it selects: max over 8 instances of 1 − cos(W(t), W^mm) at "
                  "t = 1e8.",
        source="NeurIPS 2023 paper, abstract (GD 'converges in direction to a max-margin "
               "solution that separates locally-optimal tokens from non-optimal ones')",
        status="reproduced", uses=("local",),
        check=lambda runs: max(_at(r["track"], T_END) for r in runs),
        expected=Within(high=1e-10, reason="1 − cos falls like t⁻² from the time the "
                        "selection settles: here 2.3e-15 to 1.2e-14 at t = 1e8; an instance that "
                        "settles late stays higher (the 100 instances of the experiment: median "
                        "5.3e-15, max 2.9e-12, settled at t ≈ 2e3; the field report: 5.4e-11 "
                        "after a change at t ≈ 4571), so 1e-10 allows a settling time of ~2e4"),
        experiment="attention_svm_local",
        from_summary=lambda s: s["one_minus_cos"]["1e+08"]["max"],
        config={"t_end": 1e8, "n": 6, "T": 8, "d": 10},
    ),
    Claim(
        id="attention_svm.rate_t_minus_2",
        statement="1 − cos to the SVM of the selection decays like t⁻²: range over instances "
                  "of the fitted log-log slope on [1e4, 1e8].",
        source="a prediction of gradflow: docs/derivations/attention_svm.md, §Rates of the "
               "normalised flow",
        status="reproduced", uses=("local",), check=_slopes,
        expected=Within(-2.05, -1.95, reason="W(t) = t Ŵ^mm + c + O(1/t): the O(1/t) "
                        "correction moves the slope by < 1e-3 on [1e4, 1e8] (measured −2.0005 "
                        "to −2.00002 here); an instance whose selection settles late is still in "
                        "its transient at 1e4 (the experiment's 100 instances: −2.014 to −1.971, "
                        "the extreme one settled at t ≈ 2e3, median slope −1.999)"),
        experiment="attention_svm_local",
        from_summary=lambda s: s["fitted"]["one_minus_cos_slope_range"],
        config={"t_end": 1e8, "fit_from": 1e4, "n": 6, "T": 8, "d": 10},
    ),
    Claim(
        id="attention_svm.norm_linear",
        statement="Under the normalised flow ‖W(t)‖ grows like t: max over instances of "
                  "|Δ‖W‖/Δt − 1| between t = 1e7 and 1e8.",
        source="a prediction of gradflow: docs/derivations/attention_svm.md, §Rates of the "
               "normalised flow",
        status="reproduced", uses=("local",), check=_norm_rate,
        expected=Within(high=1e-9, reason="unit speed along a path whose direction changes by "
                        "O(1/t): the speed of ‖W‖ differs from 1 by O(1/t²) ≈ 1e-14 late; the "
                        "solver's local errors (rtol 1e-6 of entries ~1e7) are what is left "
                        "(measured 1.7e-10)"),
    ),
    Claim(
        id="attention_svm.local_optimality",
        statement="Every limit selection of the flow is locally optimal: every support token "
                  "of its SVM scores below the selected token (instances, of 8, where this "
                  "fails).",
        source="NeurIPS 2023 paper, abstract ('locally-optimal tokens'); the test: "
               "docs/derivations/attention_svm.md, §Optimal and locally-optimal selections",
        status="reproduced", uses=("local",),
        check=lambda runs: sum(not r["test"].locally_optimal for r in runs),
        expected=Equals(0),
        experiment="attention_svm_local",
        from_summary=lambda s: s["selection"]["instances"] - s["selection"]["locally_optimal"],
        config={"t_end": 1e8},
    ),
    Claim(
        id="attention_svm.peer_gd_agrees",
        statement="The authors' normalised GD (step 0.1) and the flow agree iteration by "
                  "iteration under k ↔ t = 0.1k: max over 3 instances and k ≤ 1000 of "
                  "|corr_GD(k) − cos_flow(0.1k)| against the SVM of GD's selection.",
        source="the authors' protocol, as described in docs/derivations/attention_svm.md, "
               "§The authors' protocol",
        status="reproduced", uses=("peer",),
        check=lambda runs: max(float(np.abs(r["cos_gd"] - r["cos_flow"])[:-1].max())
                               for r in runs),
        expected=Within(high=5e-3, reason="GD is the explicit Euler scheme of the flow: its "
                        "error in W is O(η) = O(0.1) relative over the horizon (first order: "
                        "tests/test_attention_svm.py); measured 3.0e-3 (the field report: mean "
                        "differences < 2e-3 over 100 instances)"),
    ),
    Claim(
        id="attention_svm.gd_eps_stall",
        statement="The authors' normalised GD is read as moving at unit speed for its 2000 "
                  "iterations (‖W_k‖ ≈ 0.1k); its +eps freezes it instead: median iteration at "
                  "which ‖∇L‖ falls below eps = 2.2e-16, over 3 instances.",
        source="the authors' protocol, as described in docs/derivations/attention_svm.md, "
               "§The authors' protocol",
        status="discrepancy", uses=("peer",),
        check=lambda runs: float(np.median([r["gd"].stall for r in runs])),
        expected=Within(1000, 1500, reason="pinned to the measured stalls (1077, 1258, 1557; the "
                        "field report: median 1163 over 100 instances): a change of the GD "
                        "rewrite or of the gradient's numerics moves it"),
        note="The authors report GD's final correlation as the converged "
             "direction; their update W − η∇L/(‖∇L‖ + eps) stops moving once ‖∇L‖ < eps (from "
             "iteration 1077-1557 here), so ‖W_2000‖ ≈ 112-129 instead of 200 and the correlation "
             "plateaus (0.9915-0.9986), while the flow at t = 200 is at 0.9951-0.9994 and goes "
             "on to 1 − cos ≈ 2e-15 to 1.2e-14 at t = 1e8.",
        discussion="The stall is a property of the protocol, not of the paper's theorem: the "
                   "same loop without eps, or with the exact direction (protocol.peer_gd, "
                   "gradient='direction'), keeps unit speed. It matters where a selection "
                   "changes after GD's end (the field report: 5 of 100 instances, the flow "
                   "leaving GD's selection at t = 169-4571), which the stalled GD cannot show. "
                   "scripts/compare_attention_svm.py measures both on many instances.",
    ),
    Claim(
        id="attention_svm.kq_nuclear_norm",
        statement="The (K, Q) parametrisation's flow converges in direction to the nuclear-norm "
                  "SVM of its selection, not the Frobenius one: max over 3 small instances "
                  "(n = 3, T = 4, d = 4) of 1 − cos(KQᵀ, W*_nuc) at t = 1e3, which must have "
                  "fallen since t = 1e2 and be below 1 − cos to the Frobenius SVM.",
        source="'Transformers as support vector machines', abstract (for the regularisation "
               "path; gradflow tests the normalised flow)",
        status="reproduced", uses=("kq",), check=_kq_check,
        expected=Within(high=2e-3, reason="the reference is certified to a relative gap ≤ 1e-7 "
                        "(theory.max_margin_nuclear; measured 1e-12 to 3e-9); the flow's 1 − cos "
                        "falls 3-60× per decade from t = 1e2 (measured 3.7e-4, 7.5e-4 and "
                        "8.5e-7 at 1e3; 1.2e-4 to 1.8e-8 at 1e4), much more slowly than the W "
                        "flow's t⁻²; 2e-3 allows ~3× the slowest, while the Frobenius SVM stays "
                        "2.3e-3 to 0.12 away"),
        note="Slower than the W flow: one instance of six measured (rng [0, 5]) was still at "
             "1.9e-2 at t = 1e3 and 9.3e-3 at 1e4, and on the paper-size instance (d = 10) the "
             "flow needs 200,000 evaluations to reach t = 1.3e5.",
    ),
)

LEDGER = Ledger("attention_svm", CLAIMS, RUNS)

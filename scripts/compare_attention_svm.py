"""The authors' attention-SVM protocol against gradflow's normalised flow, on the same instances.

The authors' local-convergence experiment (Tarzanagh et al.; ``docs/derivations/attention_svm.md``,
§The authors' protocol), rewritten from its description: n = 6, T = 8, d = 10, cross-attention,
unit tokens, queries and head, ±1 labels, their ``nn.Linear`` initialisation, normalised GD
W ← W − 0.1·∇L/(‖∇L‖ + eps) with eps = 2.2e-16 for 2000 iterations, the gradient computed with
reverse-mode autodiff's numerics (``protocol.autograd_gradient``), and the correlation of W_k
with the Frobenius SVM of GD's final selection. gradflow's flow starts from the same W0;
iteration k is compared with time t = 0.1k. Printed (Markdown) and written to
``bench_results/compare_attention_svm.json``:

- the cosine table (mean and median over instances) at k = 1 … 2000 ↔ t = 0.1 … 200;
- the flow alone to t = 1e8: 1 − cos to the SVM of its own final selection, per decade;
- the eps stall (the first iteration with ‖∇L‖ < eps) and ‖W_2000‖;
- instances whose flow leaves GD's selection after GD's end, and whether GD's selection is
  locally optimal there;
- wall times per instance as ratios to GD's;
- with cvxpy installed (an optional extra: ``pip install -e '.[svm]'``): cvxpy's Frobenius SVM
  (the authors' ``W_svm_solver``) against ``solve_max_margin`` — norms, relative difference,
  KKT residuals, times — and cvxpy's nuclear-norm SVM against ``theory.max_margin_nuclear``
  and the (K, Q) flow (the nuclear part runs without cvxpy too).

    python scripts/compare_attention_svm.py [--instances 100] [--nuclear 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import numpy as np
from benchutil import markdown_table, write_json
from scipy import optimize

from gradflow.papers.attention_svm import AttentionSVMModel, protocol, random_instance, theory

ITERATIONS = (1, 10, 100, 500, 1000, 2000)
DECADES = (1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
HAS_CVXPY = importlib.util.find_spec("cvxpy") is not None


def kkt_residuals(rows: np.ndarray, W: np.ndarray, tight: float = 1e-6) -> dict[str, float]:
    """Residuals of a candidate Frobenius SVM solution W, computed the same way for every
    solver: primal violation max(0, 1 − min⟨A_k, W⟩), stationarity ‖W − Σα_k A_k‖/‖W‖ with NNLS
    multipliers on the constraints tight to ``tight``, complementarity max|α_k(⟨A_k, W⟩ − 1)|."""
    flat = rows.reshape(rows.shape[0], -1)
    values = flat @ W.ravel()
    active = np.flatnonzero(values <= 1 + tight)
    alpha = np.zeros(rows.shape[0])
    if active.size:
        alpha[active], _ = optimize.nnls(flat[active].T, W.ravel())
    return {"primal_violation": float(max(0.0, 1 - values.min())),
            "stationarity": float(np.linalg.norm(W.ravel() - alpha @ flat) / np.linalg.norm(W)),
            "complementarity": float(np.max(np.abs(alpha * (values - 1)))),
            "active": int(active.size)}


def cvxpy_frobenius(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """The authors' cvxpy W-SVM: min ‖W‖_F s.t. ⟨A_k, W⟩ ≥ 1 (cvxpy's default solver)."""
    import cvxpy as cp

    d = rows.shape[1]
    W = cp.Variable((d, d))
    constraints = [cp.sum(cp.multiply(A, W)) >= 1 for A in rows]
    start = time.perf_counter()
    cp.Problem(cp.Minimize(cp.norm(W, "fro")), constraints).solve()
    return np.asarray(W.value), time.perf_counter() - start


def cvxpy_nuclear(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """min ‖W‖_* s.t. ⟨A_k, W⟩ ≥ 1 (the (K, Q) parametrisation's SVM) with cvxpy."""
    import cvxpy as cp

    d = rows.shape[1]
    W = cp.Variable((d, d))
    constraints = [cp.sum(cp.multiply(A, W)) >= 1 for A in rows]
    start = time.perf_counter()
    cp.Problem(cp.Minimize(cp.normNuc(W)), constraints).solve()
    return np.asarray(W.value), time.perf_counter() - start


def one_instance(i: int) -> dict[str, Any]:
    model = AttentionSVMModel(10)
    data = random_instance(6, 8, 10, rng=[0, i])
    theta0 = model.init(rng=[0, i, 1])
    gd = protocol.peer_gd(model, data, theta0)
    gd_selection = model.selection(model.layout.unpack(gd.theta[-1]), data)
    svm = theory.max_margin(data, gd_selection)
    k = np.array(ITERATIONS)
    start = time.perf_counter()
    short = protocol.normalized_flow(model, data, protocol.LR * k[-1], theta0=theta0,
                                     record_at=protocol.LR * k)
    short_seconds = time.perf_counter() - start
    start = time.perf_counter()
    long = protocol.normalized_flow(model, data, DECADES[-1], theta0=theta0,
                                    record_at=protocol.record_grid(DECADES[-1], 10, DECADES))
    long_seconds = time.perf_counter() - start
    track = protocol.svm_track(model, data, long)
    times = list(short.t)
    cos_gd = [1 - theory.one_minus_cos(gd.theta[j].reshape(10, 10), svm.w) for j in k]
    cos_flow = [1 - theory.one_minus_cos(short.theta[times.index(protocol.LR * j)]
                                         .reshape(10, 10), svm.w) for j in k]
    after = track.t > protocol.LR * k[-1]
    leaves = np.flatnonzero(after & np.any(track.selected != gd_selection, axis=1))
    row: dict[str, Any] = {
        "instance": i, "cos_gd": cos_gd, "cos_flow": cos_flow,
        "same_selection": bool(np.all(track.final == gd_selection)),
        "leaves_gd_selection_at": float(track.t[leaves[0]]) if leaves.size else None,
        "gd_selection_locally_optimal": bool(theory.local_optimality(
            data, gd_selection, svm).locally_optimal),
        "one_minus_cos_flow": {f"{x:g}": float(track.one_minus_cos[int(np.argmin(np.abs(
            track.t - x)))]) for x in DECADES},
        "stall": gd.stall, "gd_norm_end": float(np.linalg.norm(gd.theta[-1])),
        "seconds": {"gd": gd.seconds, "flow_to_200": short_seconds, "flow_to_1e8": long_seconds,
                    "svm_gradflow": _timed(lambda: theory.max_margin(data, gd_selection))},
        "nfev": {"flow_to_200": short.stats["nfev"], "flow_to_1e8": long.stats["nfev"]},
    }
    if HAS_CVXPY:
        rows = theory.svm_rows(data, gd_selection)
        W_cvx, seconds = cvxpy_frobenius(rows)
        ours = kkt_residuals(rows, svm.w)
        theirs = kkt_residuals(rows, W_cvx)
        row["cvxpy"] = {
            "seconds": seconds, "norm_excess": float(np.linalg.norm(W_cvx) - svm.norm),
            "relative_difference": float(np.linalg.norm(W_cvx - svm.w) / svm.norm),
            "kkt": theirs, "kkt_gradflow": ours,
            "one_minus_cos_flow_vs_cvxpy_1e8": theory.one_minus_cos(
                model.weight(model.layout.unpack(long.final_theta)), W_cvx)}
    return row


def _timed(fn, rounds: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def nuclear_rows(count: int) -> list[dict[str, Any]]:
    """(K, Q) flows on small instances (n = 3, T = 4, d = 4) to t = 1e3 against the
    nuclear-norm SVM of their selection: gradflow's (``theory.max_margin_nuclear``, certified by
    weak duality) and, when installed, cvxpy's (certified by the same construction)."""
    model = AttentionSVMModel(4, "KQ")
    out = []
    for i in range(count):
        data = random_instance(3, 4, 4, rng=[0, i])
        start = time.perf_counter()
        traj = protocol.normalized_flow(model, data, 1e3, theta0=model.init(rng=[0, i, 1]),
                                        record_at=[1e2, 1e3])
        seconds = time.perf_counter() - start
        final = traj.observables["selected"][-1]
        rows = theory.svm_rows(data, final)
        W = model.weight(model.layout.unpack(traj.final_theta))
        nuclear = theory.max_margin_nuclear(rows)
        row = {"instance": i, "seconds": seconds, "nfev": traj.stats["nfev"],
               "flow_gap_1e3": theory.nuclear_certificate(rows, W).gap,
               "gradflow_gap": nuclear.gap, "gradflow_nuclear": nuclear.upper,
               "gradflow_seconds": _timed(lambda rows=rows: theory.max_margin_nuclear(rows)),
               "one_minus_cos_nuclear": theory.one_minus_cos(W, nuclear.W),
               "one_minus_cos_frobenius": theory.one_minus_cos(
                   W, theory.max_margin(data, final).w)}
        if HAS_CVXPY:
            W_cvx, cvx_seconds = cvxpy_nuclear(rows)
            theirs = theory.nuclear_certificate(rows, W_cvx)
            row.update({"cvxpy_seconds": cvx_seconds, "cvxpy_gap": theirs.gap,
                        "cvxpy_nuclear_excess": theirs.upper - nuclear.upper,
                        "relative_difference_cvxpy": float(
                            np.linalg.norm(theirs.W - nuclear.W) / np.linalg.norm(nuclear.W))})
        out.append(row)
    return out


def _stat(values: list[float]) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.5f} ({np.median(values):.5f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--nuclear", type=int, default=5, help="(K, Q) instances")
    args = parser.parse_args()
    rows = [one_instance(i) for i in range(args.instances)]
    same = [r for r in rows if r["same_selection"]]
    table = []
    for j, k in enumerate(ITERATIONS):
        table.append([f"k = {k} ↔ t = {protocol.LR * k:g}",
                      _stat([r["cos_gd"][j] for r in rows]),
                      _stat([r["cos_flow"][j] for r in rows]),
                      f"{max(abs(r['cos_gd'][j] - r['cos_flow'][j]) for r in rows):.1e}"])
    print(f"## The authors' GD against the flow ({len(rows)} instances; {len(same)} end with "
          "the same selection)\n")
    print(markdown_table(["iteration ↔ time", "GD corr mean (median)",
                          "flow cos mean (median)", "max |difference|"], table))
    print(f"\nsame selection only, k = 2000: GD {_stat([r['cos_gd'][-1] for r in same])}, "
          f"flow {_stat([r['cos_flow'][-1] for r in same])}")
    flow_rows = [[f"{x:g}", f"{np.median([r['one_minus_cos_flow'][f'{x:g}'] for r in rows]):.1e}",
                  f"{np.max([r['one_minus_cos_flow'][f'{x:g}'] for r in rows]):.1e}"]
                 for x in DECADES]
    print("\n## The flow alone: 1 − cos to the SVM of its own final selection\n")
    print(markdown_table(["t", "median", "max"], flow_rows))
    stalls = [r["stall"] for r in rows if r["stall"] is not None]
    print(f"\n## The eps stall\n\n‖∇L‖ < eps = {protocol.EPS:.2g} on {len(stalls)}/{len(rows)} "
          f"instances, first at iteration median {np.median(stalls):.0f} "
          f"(range {min(stalls)}-{max(stalls)}); ‖W_2000‖ median "
          f"{np.median([r['gd_norm_end'] for r in rows]):.1f} (200 at unit speed)")
    leaving = [r for r in rows if r["leaves_gd_selection_at"] is not None]
    print(f"\nflow leaves GD's selection after t = 200 on {len(leaving)} instances: " + ", ".join(
        f"#{r['instance']} at t = {r['leaves_gd_selection_at']:.3g} (GD's selection locally "
        f"optimal: {r['gd_selection_locally_optimal']})" for r in leaving))
    seconds = {k: np.median([r["seconds"][k] for r in rows]) for k in rows[0]["seconds"]}
    print("\n## Wall time per instance (median), as ratios to the authors' GD loop\n")
    print(markdown_table(["run", "ratio to GD", "evaluations (median)"], [
        ["authors' GD, 2000 iterations (NumPy rewrite)", "1", "2000"],
        ["flow to t = 200", f"{seconds['flow_to_200'] / seconds['gd']:.2f}",
         f"{np.median([r['nfev']['flow_to_200'] for r in rows]):.0f}"],
        ["flow to t = 1e8 (GD: 1e9 iterations)", f"{seconds['flow_to_1e8'] / seconds['gd']:.2f}",
         f"{np.median([r['nfev']['flow_to_1e8'] for r in rows]):.0f}"],
        ["solve_max_margin (one SVM)", f"{seconds['svm_gradflow'] / seconds['gd']:.4f}", "—"]]))
    if HAS_CVXPY:
        cvx = [r["cvxpy"] for r in rows]
        print("\n## cvxpy's Frobenius SVM against solve_max_margin (GD's selections)\n")
        print(markdown_table(["", "solve_max_margin", "cvxpy"], [
            ["‖W‖ excess over solve_max_margin (median / max)", "—",
             f"{np.median([c['norm_excess'] for c in cvx]):.1e} / "
             f"{np.max([c['norm_excess'] for c in cvx]):.1e}"],
            ["relative difference (median / max)", "—",
             f"{np.median([c['relative_difference'] for c in cvx]):.1e} / "
             f"{np.max([c['relative_difference'] for c in cvx]):.1e}"],
            *[[f"{key} (median / max)",
               f"{np.median([c['kkt_gradflow'][key] for c in cvx]):.1e} / "
               f"{np.max([c['kkt_gradflow'][key] for c in cvx]):.1e}",
               f"{np.median([c['kkt'][key] for c in cvx]):.1e} / "
               f"{np.max([c['kkt'][key] for c in cvx]):.1e}"]
              for key in ("primal_violation", "stationarity", "complementarity")],
            ["time ratio to solve_max_margin (median)", "1",
             f"{np.median([c['seconds'] for c in cvx]) / seconds['svm_gradflow']:.0f}"],
            ["flow's 1 − cos at 1e8 against it (median)", "see above",
             f"{np.median([c['one_minus_cos_flow_vs_cvxpy_1e8'] for c in cvx]):.1e}"]]))
    nuclear = nuclear_rows(args.nuclear)
    print("\n## (K, Q) flows to t = 1e3 (n = 3, T = 4, d = 4) against the nuclear-norm SVM\n")
    headers = ["instance", "1 − cos to W*_nuc", "1 − cos to W^mm (Frobenius)",
               "flow's own gap", "W*_nuc's gap", "evaluations"]
    if HAS_CVXPY:
        headers += ["cvxpy's gap", "cvxpy − gradflow ‖W‖_*", "relative difference",
                    "time ratio cvxpy / gradflow"]
    print(markdown_table(headers, [
        [r["instance"], f"{r['one_minus_cos_nuclear']:.1e}",
         f"{r['one_minus_cos_frobenius']:.1e}", f"{r['flow_gap_1e3']:.1e}",
         f"{r['gradflow_gap']:.1e}", r["nfev"],
         *([f"{r['cvxpy_gap']:.1e}", f"{r['cvxpy_nuclear_excess']:.1e}",
            f"{r['relative_difference_cvxpy']:.1e}",
            f"{r['cvxpy_seconds'] / r['gradflow_seconds']:.0f}"] if HAS_CVXPY else [])]
        for r in nuclear]))
    path = write_json("bench_results/compare_attention_svm.json",
                      {"instances": rows, "nuclear": nuclear, "cvxpy": HAS_CVXPY})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

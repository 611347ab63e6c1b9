"""How long do the in-context-learning flows take to their targets?

ZFB to its closed-form limit; balanced HCL (K = 16) to loss 1e-4 by the scalar flow and by the
full enumeration; YHLC to a gap of 1e-12. Prints a Markdown table, writes
``bench_results/bench_icl.json``; compare ratios, not absolute seconds.

    python scripts/bench_icl.py [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from benchutil import markdown_table, median_time, write_json

import gradflow
from gradflow.papers import linear_icl as li
from gradflow.papers import representation_icl as rp
from gradflow.papers import softmax_icl as sm
from gradflow.papers.linear_icl import theory as zfb


def zfb_case():
    task = li.make_task(4, 10, "random", rng=4)
    model = li.LinearICLReduced(4)
    theta0 = model.init(rng=1, task=task)
    U, u = zfb.limit(task)
    reference = model.layout.pack({"U": U, "u": np.array(u)})

    def run():
        return gradflow.simulate(model.objective(task), theta0, 200.0, method="LSODA",
                                 rtol=1e-10, atol=1e-12, record_at=[0.0, 200.0])

    def error(traj):
        return np.linalg.norm(traj.final_theta - reference) / np.linalg.norm(reference)

    return "ZFB d=4 to its limit (t = 200)", run, error


def hcl_case(scalar: bool):
    K = 16
    if scalar:
        model = sm.BalancedICL(K)
        objective, theta0, rates = model.objective(None), model.init(), {"A": model.rate}
    else:
        model = sm.FeatureICL(K)
        task = sm.make_task(K, 4 * K, mean_field=True)
        objective, theta0, rates = model.objective(task), model.init(), None
    stop = gradflow.Event("loss_1e-4", lambda th: objective.value(th) - 1e-4, terminal=True)

    def run():
        return gradflow.simulate(objective, theta0, 1e6, method="LSODA", rtol=1e-10,
                                 atol=1e-12, rates=rates, events=[stop], record_at=[0.0, 1e6])

    label = ("balanced HCL K=16 to loss 1e-4, scalar flow" if scalar else
             "HCL K=16, full S (mean-field counts N=4K) to loss 1e-4")
    return label, run, lambda traj: float(traj.t[-1])


def yhlc_case():
    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 8)
    gap = model.observables(task)["gap"]
    stop = gradflow.Event("gap_1e-12", lambda th: gap(th) - 1e-12, terminal=True)

    def run():
        return gradflow.simulate(model.objective(task), model.init(rng=1), 1e4, method="LSODA",
                                 rtol=1e-10, atol=1e-12, events=[stop], record_at=[0.0, 1e4])

    return "YHLC d=6 K=12 N=4 H=8 to gap 1e-12", run, lambda traj: float(traj.t[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench_results/bench_icl.json")
    args = parser.parse_args()
    rows = []
    for label, run, measure in (zfb_case(), hcl_case(True), hcl_case(False), yhlc_case()):
        seconds, traj = median_time(run, args.rounds)
        rows.append({"case": label, "seconds": seconds, "nfev": traj.stats["nfev"],
                     "result": measure(traj)})
    print("## In-context-learning flows (LSODA, rtol 1e-10)\n")
    print(markdown_table(["case", "evaluations", "seconds", "result (error or stop time)"],
                         [[r["case"], r["nfev"], f"{r['seconds']:.3f}", f"{r['result']:.3g}"]
                          for r in rows]))
    print(f"\nwrote {write_json(args.out, rows)}")


if __name__ == "__main__":
    main()

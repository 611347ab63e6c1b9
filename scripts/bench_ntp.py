"""How fast are the NTP fixture's two stages and the max-margin solver, per solver method?

Prints Markdown tables and writes ``bench_results/bench_ntp.json``; medians of several rounds
after a warm-up. Compare ratios, not absolute seconds.

    python scripts/bench_ntp.py [--rounds 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from benchutil import markdown_table, median_time, write_json

from gradflow.maxmargin import solve_max_margin
from gradflow.papers import ntp
from gradflow.papers.ntp import theory as theory


def two_stage_costs(rounds: int) -> list[dict]:
    data = ntp.fixture()
    kq = theory.max_margin_kq(data)
    model = ntp.NTPTransformer(8)
    rows = []
    for T in (300.0, 2e4):
        for method in ("LSODA", "RK45", "DOP853"):
            if method != "LSODA" and T > 1e3 and rounds > 1:
                use_rounds = 1  # explicit methods are stability-limited here: one round
            else:
                use_rounds = rounds

            def run(method=method, T=T):
                return ntp.two_stage(model, data, T0=30.0, T=T, references={"W_kq": kq.w},
                                     per_decade=5, method=method)

            seconds, (s1, s2) = median_time(run, use_rounds)
            rows.append({"T": T, "method": method, "seconds": seconds,
                         "nfev": s1.stats["nfev"] + s2.stats["nfev"],
                         "one_minus_cos_W_kq": float(s2.observables["one_minus_cos_W_kq"][-1])})
    return rows


def max_margin_costs(rounds: int) -> list[dict]:
    rows = []
    for k, p in ((100, 16), (1000, 64), (1000, 256)):
        gen = np.random.default_rng(k + p)
        X = gen.standard_normal((k, p))
        A = np.sign(X @ gen.standard_normal(p))[:, None] * X
        seconds, sol = median_time(lambda A=A: solve_max_margin(A), rounds)
        rows.append({"constraints": k, "dim": p, "seconds": seconds, "method": sol.method,
                     "support": int(sol.support.size), **sol.kkt})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="bench_results/bench_ntp.json")
    args = parser.parse_args()
    stages = two_stage_costs(args.rounds)
    margins = max_margin_costs(args.rounds)
    print("## Fixture: stage 1 to T0 = 30, stage 2 to T (rtol 1e-9, atol 1e-6)\n")
    lsoda = {r["T"]: r["seconds"] for r in stages if r["method"] == "LSODA"}
    print(markdown_table(
        ["T", "method", "evaluations", "seconds", "ratio to LSODA", "1 − cos(W_kq, W_kq*)"],
        [[f"{r['T']:g}", r["method"], r["nfev"], f"{r['seconds']:.3f}",
          f"{r['seconds'] / lsoda[r['T']]:.1f}", f"{r['one_minus_cos_W_kq']:.3e}"]
         for r in stages]))
    print("\n## Max-margin solver on random separable problems\n")
    print(markdown_table(
        ["constraints", "dim", "seconds", "route", "support", "primal violation",
         "stationarity"],
        [[r["constraints"], r["dim"], f"{r['seconds']:.4f}", r["method"], r["support"],
          f"{r['primal_violation']:.1e}", f"{r['stationarity']:.1e}"] for r in margins]))
    out = write_json(args.out, {"two_stage": stages, "max_margin": margins})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

"""Masked vision pretraining (Huang, Wen, Chi, Liang, arXiv 2403.02233 v1/v2, "How transformers
learn diverse attention correlations in masked vision pretraining")

**Status: reconstructed.** The paper's body could not be read (docs/derivations/masked.md,
§Status): its qualitative result — a masked patch's attention becomes area-wide, concentrated
on the unmasked patches of its own area in the image's cluster, diverse across clusters — is
the paper's (abstract, §4); the parametrisation, the rates, the phase definitions and the
scaling laws below are gradflow's reconstruction, and every claim's source says which. The
reference numbers come from an independent prototype (standalone NumPy/SciPy code, not part
of gradflow; its values are listed in docs/derivations/masked.md, §Reference values of an
independent prototype) and from closed forms; gradflow's flows reproduce them.

The runs integrate the exact population flow from Q(0) = 0: one query of the ring design
(P = 12, C = 4, K = 4, γ = ½, mask enumeration) to t = 1e6, variants of it to the first passage
of own-area mass ½, one query of each imbalanced and balanced one-cluster design (counts per
area), and the reductions against the full-matrix model.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gradflow.claims import Claim, Close, Each, Equals, Ledger, Within
from gradflow.papers.masked import protocol, theory
from gradflow.papers.masked.data import balanced, imbalanced, make_design, query_masks, ring
from gradflow.papers.masked.model import MaskedAttention, MaskedFullQ, MaskedGrouped

__all__ = ["CLAIMS", "LEDGER"]

RING_T_END = 1e6
IMBALANCED_ROWS = ((64, 40, 0.25), (64, 40, 0.5), (48, 24, 0.5), (40, 16, 0.5))
"""(P, C_global, γ) of the imbalanced table of docs/derivations/masked.md, §Phases (4 local
areas of 6 patches)."""
PROTOTYPE_IMBALANCED = {  # t_over, t_cross, t_half of the independent prototype
    (64, 40, 0.25): (17.5, 37.4, 63.1), (64, 40, 0.5): (11.1, 31.6, 54.4),
    (48, 24, 0.5): (2.15, 23.2, 45.8), (40, 16, 0.5): (0.0, 17.5, 41.1)}
SCALING_ROWS = ((0.5, 2, 8), (0.5, 4, 8), (0.5, 8, 8), (0.5, 16, 8), (0.5, 4, 4), (0.5, 4, 16),
                (0.25, 4, 8), (0.75, 4, 8))
"""(γ, N, C) of the balanced scaling table (docs/derivations/masked.md, §Phases)."""
SOURCE = "reconstructed: docs/derivations/masked.md, "


def _ring(progress: bool) -> dict[str, Any]:
    design = ring()
    traj, times, model = protocol.ring_flow(design, RING_T_END, progress=progress)
    params = model.layout.unpack(traj.final_theta)
    maps = protocol.ring_maps(model.attention_maps(params, design)[:, 0], design)
    maps0 = protocol.ring_maps(model.attention_maps(model.layout.unpack(model.init()),
                                                    design)[:, 0], design)
    return {"design": design, "traj": traj, "times": times, "model": model, "maps": maps,
            "maps0": maps0, "B": params["B"][0], "C": params["C"][0]}


def _variant(progress: bool, **options: Any) -> float | None:
    _, times, _ = protocol.ring_flow(ring(), 1e3, levels=(0.5,), stop_at=0.5,
                                     progress=progress, **options)
    return times.levels["t_half"]


def _variants(progress: bool) -> dict[str, float | None]:
    return {"pp_frozen": _variant(progress, rates={"C": 0.0}),
            "unmasked": _variant(progress, softmax="unmasked")}


def _imbalanced(progress: bool) -> dict[tuple, dict[str, Any]]:
    out = {}
    for P, C_global, gamma in IMBALANCED_ROWS:
        design = imbalanced(P, C_global, 4, 6, gamma)
        traj, times, model = protocol.grouped_flow(design, C_global, 300.0, stop_at=0.9,
                                                   levels=(0.5, 0.9), progress=progress)
        _, global_times, _ = protocol.grouped_flow(design, 0, 300.0, stop_at=0.9,
                                                   levels=(0.5, 0.9), progress=progress)
        v = theory.initial_fp_velocity(design, 0, C_global)
        v_model = model.velocities(model.layout.unpack(model.init()), design)
        out[(P, C_global, gamma)] = {
            "design": design, "p": C_global, "traj": traj, "times": times,
            "global": global_times,
            "velocity": v, "velocity_model": v_model, "t_area": int(design.areas[0, C_global]),
            "mean_field": theory.mean_field_fp_velocity(design, 0, C_global)}
    return out


def _scaling(progress: bool) -> dict[str, Any]:
    rows = []
    for gamma, N, C in SCALING_ROWS:
        design = balanced(N, C, gamma)
        _, times, _ = protocol.grouped_flow(design, 0, 1e3, levels=(0.5,), stop_at=0.5,
                                            progress=progress)
        rows.append({"N": N, "C": C, "gamma": gamma, "t_half": times.levels["t_half"],
                     "mean_field": theory.t_half_mean_field(design, 0, 0)})
    ring_rows = {K: _variant(progress) if K == 4 else protocol.ring_flow(
        ring(K=K), 1e3, levels=(0.5,), stop_at=0.5, progress=progress)[1].levels["t_half"]
        for K in (1, 2, 4)}
    return {"rows": rows, "ring": ring_rows}


def _value_pos(progress: bool) -> dict[str, Any]:
    design = balanced(2, 4, 0.5)
    model = MaskedAttention.for_design(design, queries=(0,), value_pos=True)
    traj = protocol.model_flow(model, design, 1e4, progress=progress)
    B = model.layout.unpack(traj.final_theta)["B"][0]
    return {"own_mass": float(traj.observables["own_mass"][-1].mean()),
            "grad_norm": float(traj.observables["grad_norm"][-1]), "b": B.tolist()}


def _reductions(progress: bool) -> dict[str, float]:
    """E1 against the full matrix at a random Q, every option combination; E2 against E1 along
    a flow (the prototype's K = 1 design with areas 3/5/4, γ = 0.45)."""
    z = [[1.0, 0.7, 1.3], [0.9, 1.1, 1.2, 0.8]]
    areas = [[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 2, 3, 3]]
    loss_err = grad_err = 0.0
    for softmax, mask, value_pos, token in itertools.product(
            ("all", "unmasked"), ("bernoulli", "fixed"), (False, True), ("zero", "orthogonal")):
        design = make_design(areas, 0.4, pi=[0.6, 0.4], z=z, mask=mask,
                             m=4 if mask == "fixed" else None)
        options = {"softmax": softmax, "value_pos": value_pos, "mask_token": token}
        full = MaskedFullQ.for_design(design, **options)
        reduced = MaskedAttention.for_design(design, **options)
        theta = full.init(rng=0, preset="normal", scale=1.0)
        rows = full.reduced(theta)
        theta_r = reduced.layout.pack({k: rows[k] for k in reduced.layout.names})
        fo, ro = full.objective(design), reduced.objective(design)
        loss_err = max(loss_err, abs(fo.value(theta) - ro.value(theta_r)))
        g_full = full.reduced(fo.gradient(theta))
        g_red = reduced.layout.unpack(ro.gradient(theta_r))
        grad_err = max(grad_err, max(float(np.max(np.abs(g_full[k] - g_red[k])))
                                     for k in reduced.layout.names))
    solver = {"method": "LSODA", "rtol": 1e-10, "atol": 1e-12}
    traj_err = 0.0
    # areas 3/5/4 (every group one area), and 3/3/3/3 (the three other areas one group of 3:
    # R4 and the √G scaling of the tied coordinates)
    for areas, p in (([0] * 3 + [1] * 5 + [2] * 4, 0), ([0] * 3 + [1] * 5 + [2] * 4, 4),
                     ([0] * 3 + [1] * 3 + [2] * 3 + [3] * 3, 0)):
        design = make_design([areas], 0.45)
        e1 = MaskedAttention.for_design(design, queries=(p,))
        e2 = MaskedGrouped.for_query(design, p)
        t1 = protocol.model_flow(e1, design, 1e4, progress=progress, **solver)
        t2 = protocol.model_flow(e2, design, 1e4, record_at=t1.t, progress=progress, **solver)
        for th1, th2 in zip(t1.theta, t2.theta, strict=True):
            B, C = e2.to_rows(th2, design)
            rows1 = e1.layout.unpack(th1)
            traj_err = max(traj_err, float(np.max(np.abs(B - rows1["B"][0]))),
                           float(np.max(np.abs(C - rows1["C"][0]))))
    return {"loss": loss_err, "gradient": grad_err, "trajectory": traj_err}


RUNS = {"ring": _ring, "variants": _variants, "imbalanced": _imbalanced, "scaling": _scaling,
        "value_pos": _value_pos, "reductions": _reductions}


def _floor_by_enumeration(design) -> float:
    """½ Pr(p ∈ M) Σ_k π_k Pr(own area hidden | p ∈ M) for query 0 (z ≡ 1), the probability
    summed over the enumerated masks."""
    U, mu = query_masks(design, (0,))
    hidden = [mu @ (U[0][:, [q for q in design.own_area(k, 0) if q != 0]].sum(axis=1) == 0)
              for k in range(design.K)]
    return 0.5 * design.masked_probability * float(design.pi @ np.array(hidden))


def _own_mean(run: dict[str, Any]) -> np.ndarray:
    return run["traj"].observables["own_mass"][:, 0, :].mean(axis=1)


def _slope_last_two_decades(run: dict[str, Any], y: np.ndarray) -> float | None:
    return theory.fitted_slope(run["traj"].t, y, RING_T_END / 100, RING_T_END)


def _per_log_t(run: dict[str, Any], y: np.ndarray) -> float:
    t = run["traj"].t
    k = int(np.argmin(np.abs(t - RING_T_END / 10)))
    return float((y[-1] - y[k]) / np.log(t[-1] / t[k]))


def _phase_row(r: dict[str, Any]) -> list:
    """[sign of Δ0 (closed form), crossings ḃ_t = |ḃ_g| located in the flow, phase order]."""
    gap = theory.information_gap(r["velocity"], r["t_area"],
                                 theory.dominant_area(r["design"], 0, r["p"]))
    times = r["times"]
    crossings = len(r["traj"].events.get("t_over", ()))
    ordered = times.t_over is not None and times.t_cross is not None and \
        times.levels["t_half"] is not None and \
        times.t_over < times.t_cross < times.levels["t_half"]
    return [int(np.sign(gap)), crossings, bool(ordered)]


def _imbalanced_times(runs: dict[tuple, dict[str, Any]]) -> dict[str, float | None]:
    out = {}
    for (P, C_global, gamma), r in runs.items():
        tag = f"P{P}_Cg{C_global}_g{gamma:g}"
        out[f"{tag}_t_over"] = r["times"].t_over
        out[f"{tag}_t_cross"] = r["times"].t_cross
        out[f"{tag}_t_half"] = r["times"].levels["t_half"]
    return out


def _imbalanced_expected() -> Each:
    parts = {}
    for key, (over, cross, half) in PROTOTYPE_IMBALANCED.items():
        P, C_global, gamma = key
        tag = f"P{P}_Cg{C_global}_g{gamma:g}"
        parts[f"{tag}_t_over"] = (Equals(0.0) if over == 0 else Close(over, rtol=0.02, reason=(
            "the prototype's value to its 3 printed digits; ±2% as recorded with it")))
        parts[f"{tag}_t_cross"] = Close(cross, rtol=0.02, reason="as t_over")
        parts[f"{tag}_t_half"] = Close(half, rtol=0.02, reason="as t_over")
    return Each(parts)


def _scaling_ratios(run: dict[str, Any]) -> list[float]:
    ratios = [r["t_half"] / r["mean_field"] for r in run["rows"]]
    return [min(ratios), max(ratios)]


def _exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _n_exponent(run: dict[str, Any]) -> float:
    rows = [r for r in run["rows"] if r["C"] == 8 and r["gamma"] == 0.5]
    return _exponent([r["N"] for r in rows], [r["t_half"] for r in rows])


RING_CONFIG = {"P": 12, "C": 4, "K": 4, "gamma": 0.5, "mask": "bernoulli", "softmax": "all",
               "value_pos": False, "normalize": "sum", "mask_token": "zero", "pp": "trained",
               "t_end": 1e6}

CLAIMS = (
    Claim(
        id="masked.area_wide_attention",
        statement="Area-wide attention: a masked patch's attention concentrates on the unmasked "
                  "patches of its own area, a different area in each cluster: the own-area mass "
                  "(given the area has an unmasked patch), mean over the 4 clusters of the ring, "
                  "at t = 1e6.",
        source="the paper (abstract; §4, 'area-wide' attention); the rate and the value at "
               "1e6: " + SOURCE + "§Reconstructed claims, T2",
        status="reproduced", uses=("ring",),
        check=lambda r: float(_own_mean(r)[-1]),
        expected=Close(0.9985, atol=3e-4, reason="the independent prototype's 0.9985 at "
                       "t = 1e6 (its tolerance ±3e-4: 1 − A_own ≈ 1.55/√t, so ±3e-4 is ±20% "
                       "of the deficit); measured 0.99845"),
        experiment="masked_ring", from_summary=lambda s: s["own_mass_final"]["mean"],
        config=RING_CONFIG,
    ),
    Claim(
        id="masked.own_mass_deficit_rate",
        statement="1 − A_own decays like t^{−1/2}: fitted log-log slope of the mean own-area "
                  "deficit on [1e4, 1e6] (ring).",
        source=SOURCE + "§Reconstructed claims, T2 (b_t ≈ ½ ln t near the limit)",
        status="reproduced", uses=("ring",),
        check=lambda r: _slope_last_two_decades(r, 1 - _own_mean(r)),
        expected=Close(-0.53, atol=0.03, reason="the prototype's −0.530 on the same window; "
                       "the asymptotic −1/2 is approached slowly (the off-target FP keeps "
                       "falling like ln t), so the window's slope is steeper by ~0.03"),
        experiment="masked_ring", from_summary=lambda s: s["fitted"]["own_mass_deficit_slope"],
        config=RING_CONFIG,
    ),
    Claim(
        id="masked.loss_rate_one_over_t",
        statement="Global convergence at rate 1/t: L(t) − L* = Θ(1/t); fitted log-log slope of "
                  "L − L* on [1e4, 1e6] (ring).",
        source="the paper (abstract: 'global convergence of the loss'); the rate: " + SOURCE
               + "§Reconstructed claims, T1",
        status="reproduced", uses=("ring",),
        check=lambda r: _slope_last_two_decades(r, r["traj"].observables["loss_gap"]),
        expected=Close(-0.977, atol=0.03, reason="the prototype's −0.977 (±0.03 as recorded "
                       "with it): (1 − A_t)² ∝ 1/t up to the slow drift of the "
                       "off-target FP; measured −0.975"),
        experiment="masked_ring", from_summary=lambda s: s["fitted"]["loss_gap_slope"],
        config=RING_CONFIG,
    ),
    Claim(
        id="masked.floor_is_an_infimum",
        statement="The loss decreases to the floor L* = Σ_p Pr(p∈M) Σ_k π_k γ^{C−1} ½ (1/32 "
                  "for a ring query) without reaching it: L* in closed form, t·(L − L*) at "
                  "t = 1e6, and whether L decreased at every record.",
        source=SOURCE + "§The floor and §Reconstructed claims, T1",
        status="reproduced", uses=("ring",),
        check=lambda r: {
            "floor": _floor_by_enumeration(r["design"]) / theory.floor(r["design"], (0,)),
            "t_times_gap": float(r["traj"].t[-1] * r["traj"].observables["loss_gap"][-1]),
            "monotone": bool(np.all(np.diff(r["traj"].observables["loss"]) <= 0))},
        expected=Each.of(
            floor=Close(1.0, rtol=1e-14, reason="the closed form (0.5 · 0.5³ · 0.5 = 1/32) over "
                        "the hidden-own-area probability summed over the 2,048 enumerated masks: "
                        "two routes to one number, rounding only"),
            t_times_gap=Close(2.70, rtol=0.01, reason="the prototype's 2.70 at t = 1e6 (3 "
                              "digits); a gap of 0 (the floor attained) or one not ∝ 1/t "
                              "fails"),
            monotone=Equals(True)),
    ),
    Claim(
        id="masked.ring_times",
        statement="Time scales of the ring: first passage of the own-area mass (mean over "
                  "clusters) through ½, 0.9 and 0.99.",
        source=SOURCE + "§Phases (the paper's phase definitions were not read)",
        status="reproduced", uses=("ring",),
        check=lambda r: dict(r["times"].levels),
        expected=Each.of(**{
            "t_half": Close(82.47, rtol=0.01, reason="the prototype's 82.47 (its ±1%); event "
                            "times are root-found on the dense output, so only the solver's "
                            "rtol 1e-9 separates the two"),
            "t_0.9": Close(616.2, rtol=0.02, reason="the prototype's 616.2 (its ±2%)"),
            "t_0.99": Close(2.91e4, rtol=0.02, reason="the prototype's 2.91e4 (±2%)")}),
        experiment="masked_ring", from_summary=lambda s: s["times"], config=RING_CONFIG,
    ),
    Claim(
        id="masked.pp_sum_conserved",
        statement="Σ_q C_pq is conserved (the softmax is shift invariant): max drift along the "
                  "ring flow to 1e6.",
        source=SOURCE + "§Reductions (invariants)",
        status="reproduced", uses=("ring",),
        check=lambda r: float(np.ptp(r["traj"].observables["pp_sum"])),
        expected=Within(high=1e-12, reason="the exact drift is 0; the solver's local errors on "
                        "12 entries of size ≤ 3 with rtol 1e-9 cancel in the sum to rounding "
                        "(measured 1.8e-14; prototype 1.1e-14)"),
        experiment="masked_ring", from_summary=lambda s: s["pp_sum_drift"], config=RING_CONFIG,
    ),
    Claim(
        id="masked.fp_dominates_pp",
        statement="The target FP correlation grows like ½ ln t and dominates; the PP "
                  "correlations grow far more slowly: d b_target/d ln t and d c(distance 1)/d "
                  "ln t over the last decade (ring).",
        source="the paper (abstract: FP and PP correlations learned jointly); the rates: "
               + SOURCE + "§Reconstructed claims, T3",
        status="reproduced", uses=("ring",),
        check=lambda r: {
            "fp_target": _per_log_t(r, r["traj"].observables["own_fp"][:, 0].mean(axis=1)),
            "pp_distance1": _per_log_t(r, r["traj"].theta[:, [12 + 1, 12 + 11]].mean(axis=1))},
        expected=Each.of(
            fp_target=Close(0.52, atol=0.02, reason="the prototype's 0.52; the limit slope ½ "
                            "(b_t ≈ ½ ln t) plus the drift it still has at 1e6"),
            pp_distance1=Within(0.1, 0.2, reason="the prototype's 0.165; the claim is that it "
                                "is well below the FP's 0.52 (measured 0.157)")),
    ),
    Claim(
        id="masked.pp_locality_prior",
        statement="PP correlations learn a cluster-averaged locality prior: C_0q at t = 1e6 by "
                  "ring distance 0 (self) … 6.",
        source=SOURCE + "§Reconstructed claims, T3",
        status="reproduced", uses=("ring",),
        check=lambda r: [float(r["C"][theory.ring_distance(12) == d].mean()) for d in range(7)],
        expected=Close([-0.70, 2.18, 1.52, 0.66, -1.50, -1.66, -1.70], atol=0.01, reason=(
            "the prototype's values to their 2 printed decimals (±0.005 rounding, and the "
            "flows agree to rtol 1e-9)")),
        experiment="masked_ring", from_summary=lambda s: s["pp_by_distance"], config=RING_CONFIG,
    ),
    Claim(
        id="masked.fp_cancels_pp_bonus",
        statement="FP makes the pattern cluster-specific: it drives the FP of a nearby but "
                  "different area far below that of a distant area, cancelling the PP bonus "
                  "(cluster 0, t = 1e6; and within the own area the attention is not uniform: "
                  "patches at distance 1/2/3).",
        source=SOURCE + "§Reconstructed claims, T3",
        status="reproduced", uses=("ring",),
        check=lambda r: {"adjacent": float(r["B"][r["design"].feature_index[0, 11]]),
                         "distant": float(r["B"][r["design"].feature_index[0, 5]]),
                         "within_area": r["maps"][0, 0, 1:4].tolist()},
        expected=Each.of(
            adjacent=Close(-4.43, atol=0.01, reason="the prototype's −4.43 (2 decimals)"),
            distant=Close(-1.60, atol=0.01, reason="the prototype's −1.60 (2 decimals)"),
            within_area=Close([0.43, 0.32, 0.21], atol=0.01, reason="the prototype's "
                              "0.43/0.32/0.21 (2 decimals)")),
    ),
    Claim(
        id="masked.diversity",
        statement="The attention-diversity metric rises from 0 (uniform attention at Q = 0) to "
                  "close to the value of exact area-wide attention, 1 − Σ_j C_j(C_j−2)/(P(P−1)) "
                  "= 9/11 ≈ 0.818 (ring, t = 1e6).",
        source="the paper (§6 introduces a diversity metric; its formula was not read); the "
               "metric: " + SOURCE + "§Diversity",
        status="reproduced", uses=("ring",),
        check=lambda r: {"initial": theory.diversity(r["maps0"]),
                         "final": theory.diversity(r["maps"]),
                         "ideal": theory.ideal_diversity(r["design"])},
        expected=Each.of(
            initial=Within(high=1e-12, reason="every query's map is uniform at Q = 0: "
                           "rounding only"),
            final=Close(0.808, atol=0.002, reason="the prototype's 0.808 (3 decimals); 0.010 "
                        "below exact area-wide attention: the maps are not uniform inside the "
                        "area (masked.fp_cancels_pp_bonus) and include the masks whose own area "
                        "is hidden"),
            ideal=Close(9 / 11, rtol=1e-14, reason="1 − 3·4·2/132, exactly")),
        experiment="masked_ring", from_summary=lambda s: {
            "initial": s["diversity"]["initial"], "final": s["diversity"]["final"],
            "ideal": s["diversity"]["ideal_area_wide"]}, config=RING_CONFIG,
    ),
    Claim(
        id="masked.pp_speeds_fp_learning",
        statement="The role of PP correlations: freezing them at 0 slows learning; t_half of "
                  "the ring with PP frozen, against 82.47 with PP trained.",
        source="the paper (abstract: the interplay of FP and PP correlations); the times: "
               + SOURCE + "§Phases",
        status="reproduced", uses=("variants",),
        check=lambda v: v["pp_frozen"],
        expected=Close(116.6, rtol=0.01, reason="the prototype's 116.6 (±1% as t_half); 1.41× "
                       "the trained t_half, so a frozen PP that did not slow learning fails"),
    ),
    Claim(
        id="masked.softmax_unmasked_faster",
        statement="Ambiguity 1 (softmax keys): over unmasked patches only, t_half of the ring "
                  "falls from 82.47 to 17.3 (the floor is higher).",
        source=SOURCE + "§Ambiguities, 1",
        status="reproduced", uses=("variants",),
        check=lambda v: v["unmasked"],
        expected=Close(17.32, rtol=0.01, reason="the prototype's 17.32 (±1% as t_half)"),
    ),
    Claim(
        id="masked.phases_by_sign_of_gap",
        statement="Small own area beside a dominant one: three phases (decoupling, target "
                  "growth, convergence) when Δ0 = |ḃ_g(0)| − ḃ_t(0) > 0, two when Δ0 < 0: per "
                  "imbalanced design, the sign of Δ0 from the closed-form velocities, the number "
                  "of times the flow's target FP velocity catches up with the dominant area's "
                  "(the end of a decoupling phase), and whether t_over < t_cross < t_half.",
        source="the v3 version (an 'information gap' decides the phases of FP learning); Δ0 "
               "and the phase definitions: " + SOURCE + "§Phases",
        status="reproduced", uses=("imbalanced",),
        check=lambda runs: [_phase_row(r) for r in runs.values()],
        expected=Equals([[1, 1, True], [1, 1, True], [1, 1, True], [-1, 0, True]]),
        experiment="masked_imbalanced", from_summary=lambda s: [
            [int(np.sign(r["delta0"])), None if r["phases"] is None else r["phases"] - 2,
             r["phases"] is not None and (r["t_over"] or 0) < r["t_cross"] < r["t_half"]]
            for r in s["rows"]],
        config={"C_globals": (40, 40, 24, 16), "gamma_percents": (25, 50, 50, 50),
                "n_local": 4, "C_local": 6},
    ),
    Claim(
        id="masked.imbalanced_phase_times",
        statement="Phase times of the four imbalanced designs (query in a local area): t_over "
                  "(ḃ_t ≥ |ḃ_g|), t_cross (A_own ≥ A_g), t_half.",
        source=SOURCE + "§Phases",
        status="reproduced", uses=("imbalanced",), check=_imbalanced_times,
        expected=_imbalanced_expected(),
    ),
    Claim(
        id="masked.t_over_mean_field",
        statement="The mean-field end of the decoupling phase, t_over ≈ (2γπ)⁻¹(A_g*⁻² − "
                  "a_g⁻²) with A_g*²(1 − A_g*) = a_t: measured over predicted t_over on the two "
                  "designs with Δ0 clearly positive.",
        source=SOURCE + "§Phases (scenario S2)",
        status="reproduced", uses=("imbalanced",),
        check=lambda runs: [runs[k]["times"].t_over / theory.t_over_mean_field(
            runs[k]["design"], 0, k[1]) for k in IMBALANCED_ROWS[:2]],
        expected=Within(1.0, 1.25, reason="the mean field underestimates by ~15% (the "
                        "prototype: 17.5/15.3, 11.1/9.6; measured 1.146, 1.153)"),
    ),
    Claim(
        id="masked.t_over_mean_field_near_zero_gap",
        statement="Where Δ0 ≈ 0⁺ (P = 48, C_g = 24, γ = ½) the mean-field estimate predicts no "
                  "decoupling phase: predicted and measured t_over.",
        source=SOURCE + "§Phases (scenario S2)",
        status="discrepancy", uses=("imbalanced",),
        check=lambda runs: {"predicted": theory.t_over_mean_field(
            runs[IMBALANCED_ROWS[2]]["design"], 0, 24),
            "measured": runs[IMBALANCED_ROWS[2]]["times"].t_over},
        expected=Each.of(
            predicted=Equals(0.0),
            measured=Close(2.15, rtol=0.02, reason="the prototype's 2.15 (±2% as the other "
                           "phase times)")),
        note="The estimate misses a short Phase I: A_g* ≥ a_g there, so it predicts none, while "
             "the flow's target FP is outrun by the dominant area's until t = 2.15.",
    ),
    Claim(
        id="masked.fp_monotone",
        statement="In every imbalanced design the dominant area's FP decreases and the target "
                  "FP increases monotonically (records to t_0.9).",
        source=SOURCE + "§Phases",
        status="reproduced", uses=("imbalanced",),
        check=lambda runs: all(
            bool(np.all(np.diff(r["traj"].observables["b"][:, 0]) >= 0)
                 and np.all(np.diff(r["traj"].observables["b"][:, 1]) <= 0))
            for r in runs.values()),
        expected=Equals(True),
    ),
    Claim(
        id="masked.initial_velocities_closed_form",
        statement="The initial FP velocities in closed form (binomial moments up to order 3) "
                  "equal the model's gradient at Q = 0, and the mean field approximates them: "
                  "max relative differences over the four imbalanced designs' target and "
                  "dominant-area FP.",
        source=SOURCE + "§Initial velocities",
        status="reproduced", uses=("imbalanced",),
        check=lambda runs: {
            "exact": max(float(np.max(np.abs(r["velocity_model"][:2] - r["velocity"][
                [r["t_area"], 0]]) / np.abs(r["velocity"][[r["t_area"], 0]])))
                for r in runs.values()),
            "mean_field": max(float(np.max(np.abs(r["mean_field"][[r["t_area"], 0]] - r[
                "velocity"][[r["t_area"], 0]]) / np.abs(r["velocity"][[r["t_area"], 0]])))
                for r in runs.values())},
        expected=Each.of(
            exact=Within(high=1e-12, reason="two exact routes (sum over 8,160-19,680 count "
                         "configurations against closed-form moments): rounding only"),
            mean_field=Within(high=0.03, reason="the prototype: 0.0164/0.0164 and −0.0336/"
                              "−0.0339 (1%); the neglected variance terms are O(1/P)")),
    ),
    Claim(
        id="masked.dominant_area_query",
        statement="A query inside the dominant area starts near ½ and reaches it fast: t_half "
                  "and t_0.9 for γ = 0.25 and 0.5 (P = 64, C_g = 40).",
        source=SOURCE + "§Phases",
        status="reproduced", uses=("imbalanced",),
        check=lambda runs: [[runs[k]["global"].levels["t_half"],
                             runs[k]["global"].levels["t_0.9"]] for k in IMBALANCED_ROWS[:2]],
        expected=Close([[4.5, 253], [11.3, 146]], rtol=0.02, reason="the prototype's values "
                       "to their printed digits (±2%, as the other phase times)"),
    ),
    Claim(
        id="masked.scaling_mean_field",
        statement="The time to half own-area attention against the mean-field estimate "
                  "(γπκ)⁻¹ ∫_{a_t}^{1/2} dA/(A²(1−A)³): range of t_half/estimate over the 8 "
                  "balanced designs (N, C, γ varied).",
        source=SOURCE + "§Phases (scenario S1)",
        status="reproduced", uses=("scaling",), check=_scaling_ratios,
        expected=Within(0.75, 1.02, reason="the prototype: the integral overestimates by "
                        "0-25% (PP and off-target FP also help); measured 0.79-0.9999"),
    ),
    Claim(
        id="masked.scaling_leading_order",
        statement="The leading-order law t_half ∝ K·N/(γ(1−γ)) for equal areas: fitted "
                  "exponents of t_half in N (C = 8, γ = ½, N = 2 … 16) and in K (ring, P = 12, "
                  "C = 4, γ = ½, K = 1, 2, 4), both 1 by the law, and t_half(γ = ¾)/t_half(γ = ¼), "
                  "which the law puts at 1.",
        source=SOURCE + "§Phases (scenario S1)",
        status="discrepancy", uses=("scaling",),
        check=lambda run: {"exponent_N": _n_exponent(run),
                           "exponent_K": _exponent(list(run["ring"]), list(run["ring"].values())),
                           "gamma_ratio": run["rows"][7]["t_half"] / run["rows"][6]["t_half"]},
        expected=Each.of(
            exponent_N=Within(0.78, 0.88, reason="pinned to the measured 0.83 (the law's "
                              "1/a_t term gives 1; the 3 ln(1/(2a_t)) term and κ lower it at "
                              "these sizes)"),
            exponent_K=Within(0.9, 0.98, reason="pinned to the measured 0.94 (t_half 22.45, "
                              "49.85, 82.47): the FP drive scales as π_k = 1/K, the PP drive, "
                              "shared by the clusters, does not"),
            gamma_ratio=Within(1.08, 1.18, reason="pinned to the measured 1.135 (the law: 1)")),
        note="At P ≤ 128 the leading-order law is not what the flow shows: t_half grows like "
             "N^0.83 and K^0.94, not N and K, and γ = ¾ is 13% slower than γ = ¼ where the law "
             "is symmetric in "
             "γ ↔ 1 − γ. The mean-field integral, with its logarithmic term and κ, is within "
             "25% on every design (claim masked.scaling_mean_field).",
    ),
    Claim(
        id="masked.value_pos_finite_minimiser",
        statement="Ambiguity 2 (value): with the value carrying the position, the flow "
                  "converges to a finite minimiser: own-area mass, gradient norm at t = 1e4 and "
                  "the FP correlations (P = 8, C = 4, K = 1).",
        source=SOURCE + "§Ambiguities, 2",
        status="reproduced", uses=("value_pos",),
        check=lambda r: {"own_mass": r["own_mass"], "grad_norm": r["grad_norm"], "b": r["b"]},
        expected=Each.of(
            own_mass=Close(0.657, atol=0.002, reason="the prototype's 0.657 (3 decimals)"),
            grad_norm=Within(high=1e-8, reason="geometric convergence (prototype 7.6e-10 at "
                             "1e4); a log-growth regime would keep it ~1/t ≈ 1e-4"),
            b=Close([1.83, -1.05], atol=0.01, reason="the prototype's values (2 decimals)")),
    ),
    Claim(
        id="masked.reductions_exact",
        statement="The reductions equal the full model: the reduced coordinates (B, C) against "
                  "the full matrix Q on explicit tokens (loss and gradient at a random Q, all 16 "
                  "option combinations), and the counts per area against mask enumeration along "
                  "a flow to t = 1e4.",
        source=SOURCE + "§Reductions",
        status="reproduced", uses=("reductions",),
        check=lambda r: r,
        expected=Each.of(
            loss=Within(high=1e-13, reason="two exact routes summing ~1,000 terms of size ≤ 1: "
                        "rounding (prototype 8.9e-16)"),
            gradient=Within(high=1e-13, reason="as the loss"),
            trajectory=Within(high=1e-9, reason="two flows with rtol 1e-10 on entries ≤ 5 "
                              "(the tolerance recorded with the prototype, which "
                              "measured 1.4e-11)")),
    ),
)

LEDGER = Ledger("masked", CLAIMS, RUNS)

"""Check a closed-form gradient against the complex step and central differences.

A gradient check can mislead in three ways, and :func:`check_gradient` is built so that none of
them reads as a pass:

* the *reference* can be wrong: the complex step is exact only for a loss whose imaginary part
  is computed without cancellation, which a saturated softmax breaks (``e_o/Σe``: relative
  error ~ε/Σ_{τ≠o} s_τ). Both references are therefore computed and must not contradict each
  other before a disagreement is blamed on the closed form ("mismatch") — otherwise the check
  is "unresolved";
* both sides can be *zero* (the gradient and ``Im L(θ + ihv)`` underflow together): a relative
  error 0/0 := 0 checked nothing, and the verdict says "zero", not "ok";
* a *NaN* compares false with every tolerance (``nan > tol`` is False): a non-finite gradient
  is a "mismatch" with relative error ``inf``, never ``nan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.objective import Objective

__all__ = ["VERDICTS", "GradientCheck", "check_gradient", "directional_derivative"]

COMPLEX_STEP = 1e-30
"""Complex step size: no subtraction happens, so any tiny h is exact to rounding."""

VERDICTS = ("ok", "zero", "unresolved", "mismatch")
"""The verdicts from best to worst; a summary verdict is the worst of its parts.

"zero" ranks above "ok" because nothing was compared (no evidence of correctness), and below
"unresolved" because nothing disagrees either; "mismatch" — the closed form against references
that agree with each other — is the only demonstrated error.
"""

DEFAULT_TOLERANCE = {"complex": 1e-8, "central": 1e-5}
"""Default relative tolerance per primary method.

complex: the complex step is exact to rounding; every registered experiment's closed form
agrees with it to ~1e-14 (``gradflow check-grad``), so 1e-8 leaves six orders of magnitude for
the rounding of long sums while any derivation error that moves a directional derivative by
more than 1e-8 of itself is caught. central: the central difference's own error is carried by
its error bar (see :func:`check_gradient`), not by the tolerance; 1e-5 is the precision to
which that bar must pin the derivative when the central difference is the only reference (a
loss that rejects complex input), and it is also the complex step's tolerance then.
"""

ROUNDING_FACTOR = 16.0
"""κ in the a-priori rounding error κ·ε·S/h of a central difference (S: loss scale).

Measured on the registered experiments and two co-occurrence test shapes (20 directions per
block), the central difference's error |D(h) − c| is rounding-dominated: median 0.2–0.45·ε·S/h,
but up to 39·ε·S/h where the loss cancels inside a sample, which S cannot see. The empirical
term |D(h) − D(2h)| of the error bar covers that; κ·ε·S/h is the floor under it for an
accidental near-equality of D(h) and D(2h). With κ = 16 the largest |D(h) − c|/u observed was
0.31 (κ = 4: 0.36), while u stays ~1e-8 of the derivative there.
"""


def _rank(verdict: str) -> int:
    return VERDICTS.index(verdict)


def _worst(verdicts: Any) -> str:
    return max(verdicts, key=_rank, default="ok")


@dataclass(frozen=True)
class GradientCheck:
    """Result of :func:`check_gradient`.

    Attributes
    ----------
    method : {"complex", "central"}
        The primary reference: the one whose relative errors fill ``block_errors``,
        ``overall_error`` and ``max_rel_error`` (the fields older code reads).
    block_errors : dict of str to float
        Per block, the largest relative error ``|a − n|/max(|a|, |n|)`` of the primary
        reference ``n`` over the directions supported on that block (0 when both are 0, ``inf``
        when either is not finite).
    overall_error : float
        The same over the random directions in all of θ.
    directions : list of dict
        One record per direction: ``block`` (or ``"*"``), ``analytic`` = ∇L·v, ``numeric``
        (the primary reference), ``rel_error``, ``complex`` and ``central`` (both references;
        ``nan`` if unavailable), ``central_error`` (the central difference's error bar),
        ``verdict`` and ``reason``.
    block_verdicts : dict of str to str
        Per block, the worst verdict of its directions (see :data:`VERDICTS`); "mismatch" if
        the block's gradient has a non-finite entry.
    overall_verdict : str
        The worst verdict of the all-blocks directions.
    tolerance : float
        The relative tolerance used.
    """

    method: str
    block_errors: dict[str, float]
    overall_error: float
    directions: list[dict[str, Any]] = field(repr=False)
    block_verdicts: dict[str, str]
    overall_verdict: str
    tolerance: float

    @property
    def max_rel_error(self) -> float:
        """The largest relative error of the primary reference (``inf`` if any is not finite)."""
        return max(self.overall_error, *self.block_errors.values())

    @property
    def verdict(self) -> str:
        """The worst of :attr:`block_verdicts` and :attr:`overall_verdict`.

        Order ``ok < zero < unresolved < mismatch`` (:data:`VERDICTS`): only "ok" is a pass.
        """
        return _worst([*self.block_verdicts.values(), self.overall_verdict])

    @property
    def ok(self) -> bool:
        """True only if every block and the all-blocks directions are "ok"."""
        return self.verdict == "ok"

    def _rows(self) -> list[tuple[str, str, float, float, float]]:
        """Per block: name, verdict, worst complex and central errors, worst relative bar."""
        nan = float("nan")
        rows = []
        for name, verdict in [*self.block_verdicts.items(), ("*", self.overall_verdict)]:
            recs = [r for r in self.directions if r["block"] == name]
            rows.append((
                "all blocks" if name == "*" else name,
                verdict,
                max((_relative_error(r["analytic"], r["complex"]) for r in recs), default=nan),
                max((_relative_error(r["analytic"], r["central"]) for r in recs), default=nan),
                max((_relative_bar(r) for r in recs), default=nan),
            ))
        return rows

    def __str__(self) -> str:
        other = "central" if self.method == "complex" else "complex"
        rows = self._rows()
        lines = [
            f"gradient check ({self.method}, cross-checked by {other}; tolerance "
            f"{self.tolerance:.0e}): {self.verdict}",
            f"  max relative error ({self.method}) {self.max_rel_error:.2e}, ({other}) "
            f"{max(row[3 if other == 'central' else 2] for row in rows):.2e}",
            f"  {'block':>12s}  {'verdict':<10s}  {'complex':>8s}  {'central':>8s}  "
            f"{'bar/|∇L·v|':>11s}",
        ]
        lines += [f"  {name:>12s}  {verdict:<10s}  {ec:8.2e}  {ed:8.2e}  {bar:11.2e}"
                  for name, verdict, ec, ed, bar in rows]
        reasons = {}
        for r in self.directions:
            if r["verdict"] != "ok":
                reasons.setdefault((r["block"], r["verdict"]), r["reason"])
        lines += [f"  {'all blocks' if block == '*' else block}: {verdict}: {reason}"
                  for (block, verdict), reason in reasons.items()]
        return "\n".join(lines)


def directional_derivative(
    objective: Objective,
    theta: np.ndarray,
    direction: np.ndarray,
    method: Literal["complex", "central"] = "complex",
    step: float | None = None,
) -> float:
    """The derivative of ``objective.value`` at ``theta`` along ``direction``.

    Parameters
    ----------
    objective : Objective
    theta, direction : ndarray, shape (P,)
    method : {"complex", "central"}
        ``"complex"``: ``Im L(θ + i h v)/h`` with h = 1e-30, exact to rounding for a
        real-analytic, complex-step-safe loss. ``"central"``:
        ``(L(θ + h v) − L(θ − h v))/(2h)``, error O(h²) plus round-off O(ε/h).
    step : float, optional
        ``h``; default 1e-30 (complex) or ``ε^{1/3}·max(1, ‖θ‖_∞)/‖v‖_∞`` (central).
    """
    if method == "complex":
        h = COMPLEX_STEP if step is None else step
        try:
            value = objective.value(theta + 1j * h * direction)
        except TypeError as exc:
            raise ArgumentError(
                f"objective.value does not accept complex input ({exc}); it is not "
                "complex-step safe: use gradflow.numerics"
            ) from exc
        return float(np.imag(value) / h)
    if method == "central":
        step = _central_step(theta, direction) if step is None else step
        plus = objective.value(theta + step * direction)
        minus = objective.value(theta - step * direction)
        return float(np.real(plus - minus) / (2 * step))
    raise ArgumentError(f"method must be 'complex' or 'central', got {method!r}")


def _central_step(theta: np.ndarray, direction: np.ndarray) -> float:
    """ε^{1/3}·max(1, ‖θ‖_∞)/‖v‖_∞: balances truncation O(h²) against round-off O(ε/h)."""
    scale = max(1.0, float(np.max(np.abs(theta))))
    return np.finfo(float).eps ** (1 / 3) * scale / float(np.max(np.abs(direction)))


def _relative_error(analytic: float, numeric: float) -> float:
    """``|a − n|/max(|a|, |n|)``; 0 when both are 0; ``inf`` (never nan) if either is not finite."""
    if not (np.isfinite(analytic) and np.isfinite(numeric)):
        return float("inf")
    scale = max(abs(analytic), abs(numeric))
    return 0.0 if scale == 0.0 else abs(analytic - numeric) / scale


def _relative_bar(record: dict[str, Any]) -> float:
    """The central difference's error bar relative to the derivative (> 1: it is blind)."""
    bar, scale = record["central_error"], max(abs(record["analytic"]), abs(record["central"]))
    if not (np.isfinite(bar) and np.isfinite(scale)):
        return float("inf")
    return 0.0 if bar == 0.0 else (float("inf") if scale == 0.0 else bar / scale)


def _loss_scale(objective: Objective, theta: np.ndarray) -> float:
    """S = max(|L(θ)|, Σ_n |w_n ℓ_n(θ)|): the magnitude the loss's rounding is relative to.

    ``Σ |w_n ℓ_n|`` exceeds ``|L|`` when weighted per-sample losses of both signs cancel in the
    sum (e.g. a signed read-out); losses that cancel *inside* a sample are not visible here, which
    is why the error bar also has an empirical part (see :func:`check_gradient`).
    """
    value = float(np.real(objective.value(theta)))
    scale = abs(value)
    weighted_losses = getattr(objective, "weighted_losses", None)  # optional (Objective notes)
    if weighted_losses is not None:
        terms = np.real(np.asarray(weighted_losses(theta)))
        if terms.size and np.all(np.isfinite(terms)):
            scale = max(scale, float(np.sum(np.abs(terms))))
    return scale


def _central_with_error(
    objective: Objective, theta: np.ndarray, direction: np.ndarray, step: float | None,
    loss_scale: float,
) -> tuple[float, float]:
    """The central difference D(h) and its error bar |D(h) − D(2h)| + κ·ε·S/h.

    D(2h) − D(h) = 3ch² + O(h⁴) when truncation dominates, three times the truncation error of
    D(h); when rounding dominates it is of the size of D(h)'s own noise. κ·ε·S/h is the
    a-priori rounding floor under it (a lucky near-equality of the two differences).
    """
    h = _central_step(theta, direction) if step is None else step
    d1 = directional_derivative(objective, theta, direction, "central", h)
    d2 = directional_derivative(objective, theta, direction, "central", 2 * h)
    bar = abs(d1 - d2) + ROUNDING_FACTOR * np.finfo(float).eps * loss_scale / h
    return d1, float(bar) if np.isfinite(d2) else float("inf")


def _agree(x: float, y: float, tol: float, bar: float) -> bool:
    """|x − y| ≤ tol·max(|x|, |y|) + bar (False if anything is not finite)."""
    return bool(abs(x - y) <= tol * max(abs(x), abs(y)) + bar)


def _decide(
    analytic: float, complex_: float, central: float, bar: float, tol: float, floor: float,
) -> tuple[str, str]:
    """The verdict and its reason for one direction (the rule of :func:`check_gradient`)."""
    a, c, d = analytic, complex_, central
    has_c, has_d = bool(np.isfinite(c)), bool(np.isfinite(d) and np.isfinite(bar))
    if not np.isfinite(a):
        return "mismatch", "the closed-form directional derivative is not finite"
    if not (has_c or has_d):
        return "unresolved", "no finite numerical reference (the loss is not finite here)"
    if abs(a) <= floor and (not has_c or abs(c) <= floor) and (not has_d or abs(d) <= bar):
        return "zero", (f"both sides are 0 or below the underflow floor {floor:.1e}: "
                        "nothing was checked")
    agree_c = has_c and _agree(a, c, tol, floor)
    agree_d = has_d and _agree(a, d, tol, bar)
    if not has_c:  # the central difference alone: its bar must pin the derivative to tol
        if agree_d and bar <= tol * max(abs(a), abs(d)):
            return "ok", "central differences agree (no complex step)"
        if agree_d:
            return "unresolved", ("the derivative is below the central difference's error bar "
                                  "and there is no complex step")
        return "unresolved", ("the central difference disagrees and there is no complex step "
                              "to cross-check it")
    if agree_c and (agree_d or not has_d):
        if has_d and bar >= max(abs(a), abs(c)):
            return "ok", "complex step agrees (below the central difference's resolution)"
        return "ok", "both references agree"
    if agree_c:
        return "unresolved", ("the complex step agrees but central differences disagree with "
                              "both beyond their error bar")
    if not has_d:
        return "unresolved", "the complex step disagrees and no central difference cross-checks it"
    if agree_d:
        if bar >= max(abs(a), abs(c)):
            return "unresolved", ("the complex step disagrees and the derivative is below the "
                                  "central difference's rounding level: the loss's complex "
                                  "step may be inexact here (a saturated softmax?)")
        return "unresolved", ("central differences agree with the closed form, the complex step "
                              "does not: the loss is not complex-step exact here")
    if _agree(c, d, tol, bar):
        return "mismatch", "the closed form disagrees with both references, which agree"
    return "unresolved", "the closed form and both references all disagree"


def check_gradient(
    objective: Objective,
    theta: np.ndarray,
    method: Literal["complex", "central"] = "complex",
    *,
    n_directions: int = 3,
    step: float | None = None,
    rng: Any = 0,
    tolerance: float | None = None,
) -> GradientCheck:
    """Compare ``objective.gradient`` with numerical directional derivatives and give verdicts.

    For every block, ``n_directions`` random unit directions supported on that block, and
    ``n_directions`` random directions over all of θ, compare a = ∇L(θ)·v with two references:
    the complex step c = Im L(θ + ihv)/h (h = 1e-30) and the central difference d = D(h) with
    an error bar u. Directions supported on one block check that block even when its gradient
    is many orders of magnitude smaller than another block's.

    Parameters
    ----------
    objective : Objective
    theta : ndarray, shape (P,)
        Real point at which to check.
    method : {"complex", "central"}
        The primary reference, whose relative errors are reported in ``block_errors`` /
        ``max_rel_error`` and which sets the default tolerance. With ``"complex"`` a loss that
        rejects complex input raises :class:`ArgumentError`; with ``"central"`` it is checked
        by central differences alone.
    n_directions : int
    step : float, optional
        The primary reference's step (see :func:`directional_derivative`); the other one uses
        its default.
    rng : int or numpy.random.Generator
        Seeds the random directions.
    tolerance : float, optional
        Relative tolerance; default :data:`DEFAULT_TOLERANCE` of ``method`` (1e-8 complex,
        1e-5 central).

    Returns
    -------
    GradientCheck
        Verdicts per block and overall, and the relative errors of the primary reference.

    Notes
    -----
    **Error bars.** The complex step has no subtraction; it is taken as exact down to its
    underflow floor ``tiny/h`` (≈ 2e-278 for h = 1e-30), below which ``Im L(θ + ihv) = h·a``
    leaves the normal range. Where it is *not* exact (a loss whose imaginary part cancels) no
    a-priori bound exists; that is what the central difference cross-checks. The central
    difference's bar is ``u = |D(h) − D(2h)| + κ·ε·S/h`` with ``S = max(|L|, Σ|w_n ℓ_n|)``
    (``objective.weighted_losses``), κ = :data:`ROUNDING_FACTOR`: the first term is three times
    D(h)'s truncation error when truncation dominates and of the size of its rounding noise
    when that dominates; the second is the rounding of L(θ ± hv) at the loss's scale, a floor
    for an accidental near-equality of D(h) and D(2h). "x agrees with y" below means
    ``|x − y| ≤ tol·max(|x|, |y|) + bar`` with bar = ``tiny/h`` for the complex step and ``u``
    for central differences.

    **Decision rule, per direction**, in order:

    1. *mismatch* if a is not finite (any NaN or inf in the gradient on the direction's
       support; its relative error is ``inf``).
    2. *unresolved* if neither reference is finite.
    3. *zero* if |a| and |c| are at most ``tiny/h`` and |d| ≤ u: both sides vanish, nothing was
       compared. Never a pass.
    4. *ok* if c agrees with a and d agrees with a (or is not finite). When u exceeds the
       derivative itself (it is below the loss's rounding level, e.g. a saturated softmax) d
       agrees with anything, and c alone confirms a: two independent routes agreeing to ``tol``
       is not a coincidence.
    5. *mismatch* if a agrees with neither reference while c and d agree with each other: the
       closed form disagrees with numerical references that agree with each other.
    6. *unresolved* otherwise: the references cannot decide — c agrees with a but d
       contradicts both; or c disagrees and d cannot tell (u covers a and c: the derivative is
       below the central difference's rounding level, as in the saturated softmax, whose
       complex step is wrong there) or d sides with a against c; or all three disagree.

    Without a complex step (``method="central"`` on a loss rejecting complex input, or a
    non-finite c), "ok" needs d to agree with a *and* u ≤ tol·|a|; a disagreement is
    "unresolved", never "mismatch", since nothing cross-checks d.

    A block's verdict is the worst of its directions, and "mismatch" if its gradient has a
    non-finite entry; :attr:`GradientCheck.verdict` is the worst over blocks and the
    all-blocks directions (:data:`VERDICTS`).
    """
    if method not in DEFAULT_TOLERANCE:
        raise ArgumentError(f"method must be 'complex' or 'central', got {method!r}")
    tol = DEFAULT_TOLERANCE[method] if tolerance is None else float(tolerance)
    if not tol >= 0:
        raise ArgumentError(f"tolerance must be >= 0, got {tolerance}")
    layout = objective.layout
    theta = np.asarray(layout.check_vector(theta), dtype=float)
    if not np.all(np.isfinite(theta)):
        raise ArgumentError("theta must be finite to check a gradient")
    if n_directions < 1:
        raise ArgumentError(f"n_directions must be >= 1, got {n_directions}")
    gen = np.random.default_rng(rng)
    grad = np.asarray(objective.gradient(theta))
    if grad.shape != (layout.size,):
        raise ArgumentError(
            f"objective.gradient returned shape {grad.shape}, expected ({layout.size},)"
        )
    complex_step = COMPLEX_STEP if (method == "central" or step is None) else step
    central_step = step if method == "central" else None
    floor = float(np.finfo(float).tiny / complex_step)
    loss_scale = _loss_scale(objective, theta)
    supports = {name: layout.slices[name] for name in layout.names}
    supports["*"] = slice(0, layout.size)
    records: list[dict[str, Any]] = []
    for name, support in supports.items():
        for _ in range(n_directions):
            direction = np.zeros(layout.size)
            direction[support] = gen.standard_normal(support.stop - support.start)
            direction /= np.linalg.norm(direction)
            # restricted to the support, so that a NaN elsewhere does not leak in as NaN·0; a
            # non-finite gradient is reported by the verdict, not by a warning
            with np.errstate(invalid="ignore", over="ignore"):
                analytic = float(grad[support] @ direction[support])
            try:
                c = directional_derivative(objective, theta, direction, "complex", complex_step)
            except ArgumentError:
                if method == "complex":
                    raise
                c = float("nan")  # a loss that rejects complex input: central alone
            d, bar = _central_with_error(objective, theta, direction, central_step, loss_scale)
            verdict, reason = _decide(analytic, c, d, bar, tol, floor)
            numeric = c if method == "complex" else d
            records.append({
                "block": name, "analytic": analytic, "numeric": numeric,
                "rel_error": _relative_error(analytic, numeric), "complex": c, "central": d,
                "central_error": bar, "verdict": verdict, "reason": reason,
            })
    finite = np.isfinite(grad)
    block_verdicts = {}
    for name in layout.names:
        verdicts = [r["verdict"] for r in records if r["block"] == name]
        if not finite[layout.slices[name]].all():
            verdicts.append("mismatch")
        block_verdicts[name] = _worst(verdicts)
    overall_verdict = _worst(
        [r["verdict"] for r in records if r["block"] == "*"] + ([] if finite.all() else
                                                                ["mismatch"]))
    block_errors = {
        name: max(r["rel_error"] for r in records if r["block"] == name) for name in layout.names
    }
    overall = max(r["rel_error"] for r in records if r["block"] == "*")
    return GradientCheck(method, block_errors, overall, records, block_verdicts,
                         overall_verdict, tol)

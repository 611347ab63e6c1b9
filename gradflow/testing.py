"""Check a model against the contract of :class:`gradflow.model.Model` in one call.

:func:`check_model` evaluates a model on its data at a few points and checks every rule of the
contract that can be checked by running the code (rules 1 and 3–11, and "no method may modify
its arguments"). Rule 2 (validated hyper-parameters) and the parts of the others that are about
documentation (derivations, the paper's names) are for a reviewer. A researcher's test is one
line::

    def test_my_model_meets_the_contract():
        gradflow.testing.check_model(MyModel(d=4), make_dataset(rng=0))

It raises :class:`AssertionError` listing every failed check, or returns a
:class:`ModelReport` of what was checked.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.gradcheck import COMPLEX_STEP, GradientCheck, check_gradient
from gradflow.layout import Layout
from gradflow.model import Model

__all__ = ["CHECKS", "ContractCheck", "ModelReport", "check_model"]

CHECKS: dict[str, str] = {
    "1.data_type": "data_type names the data's class, and the data is a frozen dataclass",
    "3.layout": "layout is a gradflow.Layout",
    "4.init": "init(rng) returns a reproducible finite float vector of shape (layout.size,)",
    "5.sample_losses": "sample_losses returns real, finite losses of shape (n,)",
    "5.loss": "loss = Σ w_n ℓ_n (sample_weights: None, a scalar or shape (n,))",
    "5.complex": "sample_losses takes complex params and returns complex losses",
    "6.grad_blocks": "grad returns exactly the layout's blocks and shapes, real floats",
    "6.gradient": "grad passes check_gradient (complex step and central differences)",
    "7.scaled_grad": "exp(log_scales[b]) * blocks[b] equals grad[b]",
    "8.observables": "observables(data) are callables returning numbers, without raising",
    "9.check_data": "check_data accepts the model's data and refuses foreign data",
    "10.content_hash": "content_hash is a stable 64-hex-digit hash",
    "11.batched_grad": "batched_grad equals grad member by member, data shared or per member",
    "no_mutation": "no method modifies its params or data arguments",
}
"""The checks of :func:`check_model`, by id (``"<contract rule>.<what>"``): the keys that
``known_failures`` accepts and that :attr:`ContractCheck.id` takes."""

SCALED_RTOL = 1e-8
"""Relative tolerance (block norm) of ``exp(log_scales[b]) * blocks[b]`` against ``grad[b]``.

Both are the same vector computed along two routes, so they differ by rounding: ~1e-16 relative
per operation, ~|s|·ε ≈ 2e-13 from ``exp(s)`` of a log-scale s near the underflow limit −745,
and more only where the plain route cancels. A wrong factor, a dropped term or a scale taken
from another block moves the block by far more than 1e-8 of its norm. It is also
:func:`gradflow.check_gradient`'s complex-step tolerance, the accuracy a gradient is held to.
"""

COMPLEX_RTOL = 1e-8
"""Relative tolerance of ``Re sample_losses(θ + i h v)`` against ``sample_losses(θ)``, relative
to the largest |ℓ_n|, plus h itself as an absolute floor: with h = 1e-30 the real parts differ by
−h²/2·vᵀ∇²ℓ v (1e-60 times the curvature: below h for any curvature under 1e30) and by the
rounding of complex against real arithmetic, a few ε per operation. A complex path computing
something else than the real one (a branch on the dtype, a dropped term) differs by far more."""

BATCHED_RTOL = 1e-10
"""Relative tolerance (block norm, per member) of ``batched_grad`` against ``grad``: the same
gradient computed with the members stacked, so they differ by the rounding of a different
summation order (einsum or a stacked matmul against a loop: a few ε per operation, ~1e-15
relative, more where terms cancel); a swapped member, a missing term or data of another member
moves a block by O(1) of its norm."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TINY = float(np.finfo(float).tiny)
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class ContractCheck:
    """One check of :func:`check_model`.

    Attributes
    ----------
    id : str
        A key of :data:`CHECKS`, e.g. ``"6.gradient"``; the part before the dot is the rule
        number in the docstring of :class:`gradflow.Model`.
    what : str
        What was checked, in one line.
    passed : bool
    details : tuple of str
        The measured numbers (on success a summary, on failure every failing case).
    known : str or None
        The reason given in ``known_failures`` if this check was expected to fail (and did).
    """

    id: str
    what: str
    passed: bool
    details: tuple[str, ...] = ()
    known: str | None = None

    @property
    def rule(self) -> str:
        """The contract rule: the part of :attr:`id` before the dot."""
        return self.id.split(".")[0]

    def __str__(self) -> str:
        status = "ok" if self.passed else ("KNOWN FAILURE" if self.known else "FAILED")
        label = f"rule {self.rule}" if self.rule.isdigit() else self.rule.replace("_", " ")
        lines = [f"{status:>13s}  [{label}] {self.id}: {self.what}"]
        if self.known:
            lines.append(f"{'':15s}known failure: {self.known}")
        lines += [f"{'':15s}{line}" for detail in self.details for line in detail.split("\n")]
        return "\n".join(lines)


@dataclass
class ModelReport:
    """What :func:`check_model` checked, returned when every check passed.

    Attributes
    ----------
    model : str
        ``repr`` of the model.
    checks : list of ContractCheck
        Every check, in the order of :data:`CHECKS`.
    points : dict of str to ndarray
        The points θ the gradient was checked at, by label (``"theta"``, ``"random(seed=0)"``,
        ``"10*random(seed=0)"``, ...).
    gradient_checks : dict of str to GradientCheck
        :func:`gradflow.check_gradient`'s result at each point.
    skipped : dict of str to str
        Generated points left out because the loss is not finite there, with the loss.
    notes : list of str
        Findings that fail no rule: non-finite observables, allowed "unresolved" verdicts,
        blocks never checked above the underflow floor, warnings raised by the model.
    """

    model: str
    checks: list[ContractCheck] = field(default_factory=list)
    points: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    gradient_checks: dict[str, GradientCheck] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[ContractCheck]:
        """The checks that failed and were not expected to."""
        return [c for c in self.checks if not c.passed and not c.known]

    @property
    def ok(self) -> bool:
        """True if no check failed unexpectedly."""
        return not self.failures

    def check(self, check_id: str) -> ContractCheck:
        """The check with this id (a key of :data:`CHECKS`)."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def __str__(self) -> str:
        failed = self.failures
        head = (f"check_model({self.model}): {len(failed)} of {len(self.checks)} contract "
                "checks failed" if failed else
                f"check_model({self.model}): all {len(self.checks)} contract checks passed")
        lines = [head, f"  points: {', '.join(self.points) or 'none'}"]
        lines += [f"  skipped {label}: {why}" for label, why in self.skipped.items()]
        # failures first, so that the top of a pytest report shows what is wrong
        ordered = failed + [c for c in self.checks if c not in failed]
        lines += [str(c) for c in ordered]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class _Bound:
    """The objective of (model, data) for check_gradient, without :meth:`Model.check_data`
    (whose own verdict is a separate check): ``ModelObjective`` minus the validation, on copies
    of θ so that a model writing into its params spoils the no-mutation check, not this one."""

    def __init__(self, model: Model, data: Any, layout: Layout):
        self.model, self.data, self.layout = model, data, layout

    def value(self, theta: np.ndarray) -> Any:
        return self.model.loss(self.layout.unpack(theta.copy()), self.data)

    def weighted_losses(self, theta: np.ndarray) -> np.ndarray:
        return self.model.weighted_losses(self.layout.unpack(theta.copy()), self.data)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.layout.pack(self.model.grad(self.layout.unpack(theta.copy()), self.data))


def _error(exc: BaseException) -> str:
    return f"raised {type(exc).__name__}: {exc}"


def _data_arrays(data: Any) -> dict[str, np.ndarray]:
    """The ndarray fields of a dataclass instance (nothing for anything else)."""
    if not (dataclasses.is_dataclass(data) and not isinstance(data, type)):
        return {}
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)
            if isinstance(getattr(data, f.name, None), np.ndarray)}


class _Guard:
    """Snapshots of θ, the params dict and the data's array fields, compared after each call:
    every modification is recorded as a no-mutation failure naming the method."""

    def __init__(self, data: Any):
        self.data = data
        self.fields = {k: (v, v.dtype, v.shape, v.tobytes()) for k, v in
                       _data_arrays(data).items()}
        self.failures: list[str] = []
        self.calls: set[str] = set()

    def call(self, name: str, fn: Callable[..., Any], theta: np.ndarray,
             params: dict[str, np.ndarray] | None, *args: Any) -> Any:
        """``fn(params, *args)`` (or ``fn(theta, *args)`` without params), checked."""
        before = theta.tobytes()
        views = None if params is None else dict(params)
        self.calls.add(name)
        try:
            return fn(theta if params is None else params, *args)
        finally:
            self._compare(name, theta, before, params, views)

    def _compare(self, name: str, theta: np.ndarray, before: bytes,
                 params: dict[str, np.ndarray] | None,
                 views: dict[str, np.ndarray] | None) -> None:
        what = "θ" if params is None else "params"
        if theta.tobytes() != before:
            changed = np.flatnonzero(np.frombuffer(before, dtype=theta.dtype) != theta)
            self.failures.append(f"{name} wrote into {what}: {changed.size} of {theta.size} "
                                 f"entries changed (first at flat index {changed[:1].tolist()})")
            theta[...] = np.frombuffer(before, dtype=theta.dtype)  # restore for what follows
        if params is not None and views is not None and (
                params.keys() != views.keys() or any(params[k] is not v for k, v in
                                                     views.items())):
            self.failures.append(f"{name} replaced entries of the params dict "
                                 f"(keys before {sorted(views)}, after {sorted(params)})")
            params.clear()
            params.update(views)
        for key, (array, dtype, shape, raw) in list(self.fields.items()):
            now = getattr(self.data, key, None)
            if now is not array:
                self.failures.append(f"{name} replaced data.{key}")
            elif array.dtype != dtype or array.shape != shape or array.tobytes() != raw:
                self.failures.append(f"{name} modified data.{key} in place")
            else:
                continue
            if isinstance(now, np.ndarray):  # report each change once: snapshot the new state
                self.fields[key] = (now, now.dtype, now.shape, now.tobytes())
            else:
                del self.fields[key]


def _foreign_copy(data: Any) -> Any | None:
    """A dataclass of another class with the same field values: duck-typed foreign data."""
    if not (dataclasses.is_dataclass(data) and not isinstance(data, type)):
        return None
    names = [f.name for f in dataclasses.fields(data) if f.init]
    cls = dataclasses.make_dataclass(f"Foreign{type(data).__name__}",
                                     [(n, Any) for n in names], frozen=True)
    return cls(**{n: getattr(data, n) for n in names})


def _as_known(known_failures: Mapping[str, str] | Collection[str] | None) -> dict[str, str]:
    if known_failures is None:
        return {}
    if isinstance(known_failures, str):
        known_failures = [known_failures]
    known = (dict(known_failures) if isinstance(known_failures, Mapping)
             else dict.fromkeys(known_failures, "listed in known_failures"))
    unknown = sorted(set(known) - set(CHECKS))
    if unknown:
        raise ArgumentError(f"known_failures: unknown check ids {unknown}; the ids are "
                            f"{list(CHECKS)}")
    return {k: str(v) for k, v in known.items()}


# --------------------------------------------------------------------------------------------
# check_model
# --------------------------------------------------------------------------------------------


def check_model(
    model: Model,
    data: Any,
    theta: np.ndarray | None = None,
    *,
    seeds: Sequence[int] = (0, 1),
    scales: Sequence[float] = (10.0, 100.0),
    random_scale: float = 1.0,
    init_kwargs: Mapping[str, Any] | None = None,
    foreign: Iterable[Any] = (),
    allow_unresolved: bool | Collection[str] = False,
    n_directions: int = 3,
    gradient_tolerance: float | None = None,
    known_failures: Mapping[str, str] | Collection[str] | None = None,
) -> ModelReport:
    """Check ``model`` on ``data`` against every runnable rule of the :class:`~gradflow.Model`
    contract; raise :class:`AssertionError` listing every failure.

    Parameters
    ----------
    model : Model
    data : the model's data
        Its dataset or task (``None`` for a model without data, such as a population flow that
        carries its own constants).
    theta : ndarray, shape (layout.size,), optional
        The main point; default ``model.init(seeds[0], **init_kwargs)``.
    seeds : sequence of int
        Each seeds a random point ``random_scale · z``, z ~ N(0, I) (and ``init``'s checks);
        the gradient's random directions are seeded too, so a report is reproducible.
    scales : sequence of float
        The large-weight points: these multiples of the first random point, where softmaxes
        saturate, losses reach their asymptotics and a plain gradient may underflow (what the
        complex step and :meth:`~gradflow.Model.scaled_grad` must survive).
    random_scale : float
        Standard deviation of the random points' entries.
    init_kwargs : mapping, optional
        Extra keyword arguments of ``model.init`` (e.g. ``task=`` when the initialisation's
        scale depends on the data).
    foreign : iterable, optional
        More objects :meth:`~gradflow.Model.check_data` must refuse, e.g. another model's
        dataset, besides the built-in ``object()``, ``None`` (unless the model's data is
        ``None``) and a duck-typed copy of ``data``.
    allow_unresolved : bool or collection of str
        Accept the gradient verdict "unresolved" (noted in :attr:`ModelReport.notes`): at
        every point (``True``) or at the points with these labels (e.g.
        ``{"100*random(seed=0)"}``). See Notes; by default it fails.
    n_directions : int
        Random directions per block (and over all of θ) of :func:`gradflow.check_gradient`.
    gradient_tolerance : float, optional
        Its relative tolerance; default its own (1e-8 for the complex step).
    known_failures : mapping of check id to reason, or collection of check ids, optional
        Checks (keys of :data:`CHECKS`) expected to fail: reported as known failures instead of
        raising. A listed check that *passes* raises, so that the list is emptied as the model
        is fixed.

    Returns
    -------
    ModelReport
        Every check with its measured numbers, the points, and notes.

    Raises
    ------
    AssertionError
        If a check failed: the message is the report, failed checks first, each naming its
        contract rule, what was checked and the numbers measured. The report is also the
        exception's ``report`` attribute.
    ArgumentError
        For arguments of ``check_model`` itself (a ``theta`` of the wrong shape or not finite,
        an unknown id in ``known_failures``, no seeds).

    Notes
    -----
    The checks (ids of :data:`CHECKS`; rule numbers as in :class:`~gradflow.Model`):

    * ``1.data_type``: :attr:`~gradflow.Model.data_type` is declared (not the default
      ``object``), ``data`` is an instance of it and a frozen dataclass (or ``None`` for a
      model whose ``data_type`` is ``type(None)``), and ``check_data_type(object())`` raises
      :class:`~gradflow.errors.ArgumentError`.
    * ``3.layout``, ``4.init``: ``init(seed)`` for every seed is a finite float vector of shape
      ``(layout.size,)``, and equal when drawn twice from the same seed.
    * ``5.sample_losses``, ``5.loss``, ``5.complex``: at every point, ``sample_losses`` has shape
      ``(n,)``, n ≥ 1, real float dtype, finite entries (at ``theta``; at a generated point a
      non-finite loss skips the point, see below); ``sample_weights`` is ``None``, a finite
      real scalar or a finite real array of shape ``(n,)``; ``loss`` and the sum of
      ``weighted_losses`` equal the exactly rounded ``Σ w_n ℓ_n`` (``math.fsum``) to
      ``2(n + 2)·ε·Σ|w_n ℓ_n|``, the a-priori error bound of a floating-point sum of n
      products (Higham's γ_n, doubled): only an actual difference of formula exceeds it.
      ``loss`` is final in :class:`~gradflow.Model`, so this catches weights of the wrong shape
      (``(n, 1)`` broadcasts to an (n, n) sum) and non-deterministic losses. At ``theta`` and
      the first random point ``sample_losses(θ + i h v)`` (h = 1e-30) must be complex, of shape
      ``(n,)``, with finite imaginary part and real part equal to the real losses to
      :data:`COMPLEX_RTOL`; that its imaginary part is the derivative is what
      ``6.gradient`` checks. A :class:`numpy.exceptions.ComplexWarning` raised by the model (a
      complex value cast to real) fails it too.
    * ``6.grad_blocks``, ``6.gradient``: ``grad`` returns exactly the layout's names and shapes
      in a real float dtype; :func:`gradflow.check_gradient` (complex step, cross-checked by
      central differences) gives every block and the all-blocks directions "ok" or "zero" at
      every point. "mismatch" (the closed form disagrees with two references that agree) always
      fails. "unresolved" (the references disagree with each other, so nothing decided) fails
      unless ``allow_unresolved``: for a complex-step-safe loss (rule 5, written with
      :mod:`gradflow.numerics`) it does not happen, and where it does — typically a naive
      softmax read-out at the large-weight points — the gradient is unverified there. Allow it
      only for a loss whose complex step is known to be inexact for a reason outside the
      model's control. "zero" (both sides below the complex step's underflow floor) passes,
      and a block that is "zero" at every point (never compared) is noted.
    * ``7.scaled_grad``: at every point ``scaled_grad`` returns the layout's blocks (finite)
      and ``log_scales`` with exactly the layout's names, each finite or ``−inf``, ``−inf``
      only for a block whose gradient is all zero, and
      ``‖exp(s_b)·blocks[b] − grad[b]‖ ≤`` :data:`SCALED_RTOL` ``· max(‖exp(s_b)·blocks[b]‖,
      ‖grad[b]‖) + √size_b·tiny/ε`` (block norms; the absolute term ≈ 1e-292 is the plain
      gradient's own underflow, which is what the hook is for).
    * ``8.observables``: ``observables(data)`` is a dict of str to callables; each returns a
      number or numeric array at ``theta`` and the first random point, of the same shape at
      both, without raising. A non-finite value (e.g. a cosine at a zero init) is noted, not
      failed.
    * ``9.check_data``: ``check_data(data)`` passes; ``object()``, ``None`` (unless the model's
      data is ``None`` or ``None`` is an instance of its declared ``data_type``), a dataclass
      of another class with the same field values (foreign data that a field-by-field check
      would accept), and every object of ``foreign`` raise
      :class:`~gradflow.errors.ArgumentError` — not a ``TypeError`` or ``AttributeError``.
    * ``10.content_hash``: ``content_hash(data)`` is 64 lowercase hex digits, equal when
      computed twice, after every evaluation above (lazily filled caches do not count), and
      for a ``copy.deepcopy`` of model and data.
    * ``11.batched_grad``: a model that overrides :meth:`~gradflow.Model.batched_grad`
      (the default loops over ``grad`` and is not re-checked), or
      :meth:`~gradflow.Model.batched_scaled_grad` (compared with ``scaled_grad`` after
      rescaling each member's blocks to its factor): on the stack of the evaluated
      points (members of very different scales), with the data shared and as a list of one
      dataset per member, every block has shape ``(B, *block_shape)`` and member b's equals
      ``grad`` at point b to :data:`BATCHED_RTOL` of its norm (plus the underflow floor of
      ``7.scaled_grad``).
    * ``no_mutation``: θ (hence the params views), the params dict and every ndarray field of
      ``data`` are byte-identical after each call of ``sample_losses``, ``sample_weights``,
      ``loss``, ``weighted_losses``, ``grad``, ``scaled_grad``, ``batched_grad``,
      ``observables``, each
      observable, ``check_data`` and ``content_hash``.

    **Points.** ``theta``; one random point per seed; the first random point times each of
    ``scales``. A generated point at which the loss is not finite (or raises) is skipped and
    listed in :attr:`ModelReport.skipped` with the value: the contract does not require a
    finite loss at arbitrary weights (an exponential may overflow at ×100), so this fails
    nothing; but a model whose loss overflows where training goes (weights growing along a
    max-margin direction) should be rewritten with :mod:`gradflow.numerics`. At ``theta`` a
    non-finite loss fails ``5.sample_losses``.
    """
    known = _as_known(known_failures)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ArgumentError("seeds must name at least one seed")
    init_kwargs = dict(init_kwargs or {})
    report = ModelReport(model=_repr(model))
    results: dict[str, list[str]] = {k: [] for k in CHECKS}  # failure lines per check
    summary: dict[str, list[str]] = {k: [] for k in CHECKS}  # what was measured
    guard = _Guard(data)

    foreign = list(foreign)
    for obj in foreign:
        if type(obj) is type(data):
            raise ArgumentError(f"foreign: a {type(obj).__name__} is of the type of the model's "
                                "own data, not foreign data")

    # ------------------------------------------------------------------ rule 3: layout
    try:
        layout = model.layout
    except Exception as exc:
        layout = None
        results["3.layout"].append(f"model.layout {_error(exc)}")
    if not isinstance(layout, Layout):
        if not results["3.layout"]:
            results["3.layout"].append(f"layout is a {type(layout).__name__}, not a Layout")
        report.checks = _finish(results, summary, {})
        _raise_if_failed(report)  # nothing else can be checked without the layout
    assert isinstance(layout, Layout)
    summary["3.layout"].append(f"{layout!r}")
    if theta is not None:
        theta = np.array(layout.check_vector(theta), dtype=float)
        if not np.all(np.isfinite(theta)):
            raise ArgumentError("theta must be finite")

    hash_before = _hash(model, data, guard, results)
    _check_data_type(model, data, results, summary)

    # ------------------------------------------------------------------ rule 4: init
    theta0 = _check_init(model, layout, seeds, init_kwargs, results, summary)
    if theta is None:
        theta = theta0
    if theta is None:  # init failed: the first random point stands in
        report.notes.append("init failed, so the main point is the first random point")

    # ------------------------------------------------------------------ the points
    points: dict[str, np.ndarray] = {}
    if theta is not None:
        points["theta"] = theta
    draws = {s: random_scale * np.random.default_rng(s).standard_normal(layout.size)
             for s in seeds}
    for s in seeds:
        points[f"random(seed={s})"] = draws[s]
    for c in scales:
        points[f"{float(c):g}*random(seed={seeds[0]})"] = float(c) * draws[seeds[0]]
    main = next(iter(points))
    unresolved_at: set[str] = set()
    if not isinstance(allow_unresolved, bool):
        unresolved_at = ({allow_unresolved} if isinstance(allow_unresolved, str)
                         else set(allow_unresolved))
        if unresolved_at - set(points):
            raise ArgumentError(f"allow_unresolved: no points {sorted(unresolved_at - set(points))}"
                                f"; the points are {list(points)}")

    objective = _Bound(model, data, layout)
    evaluated: dict[str, np.ndarray] = {}
    for k, (label, point) in enumerate(points.items()):
        point = point.copy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok = _check_point(model, data, layout, label, point, label == main, guard,
                              results, summary, report)
            if ok:
                evaluated[label] = point
                if label in (main, f"random(seed={seeds[0]})"):
                    _check_complex(model, data, layout, label, point, seeds[0], results,
                                   summary)
                allowed = (allow_unresolved if isinstance(allow_unresolved, bool)
                           else label in unresolved_at)
                _check_gradient_at(objective, label, point, seeds[0] + k, n_directions,
                                   gradient_tolerance, allowed, results, report)
        _warnings(caught, label, results, report)
    report.points = evaluated
    _summarise_gradient(report, summary)
    _never_checked(report, layout)

    # ------------------------------------------------------------------ rule 8: observables
    obs_points = [lb for lb in (main, f"random(seed={seeds[0]})") if lb in evaluated]
    _check_observables(model, data, {lb: evaluated[lb] for lb in obs_points}, guard, results,
                       summary, report)

    # ------------------------------------------------------------------ rule 9: check_data
    _check_foreign(model, data, foreign, guard, results, summary)

    # ------------------------------------------------------------------ rule 11: batched_grad
    _check_batched(model, data, layout, evaluated, guard, results, summary)

    # ------------------------------------------------------------------ rule 10: hash
    _check_hash(model, data, hash_before, guard, results, summary)

    results["no_mutation"] += guard.failures
    summary["no_mutation"].append(f"checked after every call of {', '.join(sorted(guard.calls))}"
                                  f"; data arrays: {', '.join(guard.fields) or 'none'}")
    report.checks = _finish(results, summary, known)
    _raise_if_failed(report)
    return report


def _check_batched(model: Model, data: Any, layout: Layout, points: dict[str, np.ndarray],
                   guard: _Guard, results: dict[str, list[str]],
                   summary: dict[str, list[str]]) -> None:
    """Rule 11: an overriding ``batched_grad`` equals ``grad`` row by row, on the stack of the
    evaluated points (members of very different scales), with the data shared and as a list
    of one dataset per member; the default loops over ``grad`` and is not re-checked."""
    own_grad = type(model).batched_grad is not Model.batched_grad
    own_scaled = type(model).batched_scaled_grad is not Model.batched_scaled_grad
    if not (own_grad or own_scaled):
        summary["11.batched_grad"].append("the defaults (loops over grad and scaled_grad): "
                                          "nothing to check")
        return
    if not points:
        results["11.batched_grad"].append("no point where the loss is finite to check it at")
        return
    labels = list(points)
    stack = np.stack([points[k] for k in labels])
    if len(labels) == 1:  # at least two members: a swap or a broadcast must show
        stack = np.stack([stack[0], 0.5 * stack[0]])
        labels.append(f"0.5*{labels[0]}")
    out = results["11.batched_grad"]
    rows = []
    for i in range(stack.shape[0]):
        try:
            rows.append(model.grad(layout.unpack(stack[i].copy()), data))
        except Exception as exc:
            out.append(f"grad at {labels[i]} {_error(exc)}")
            return
    worst = 0.0
    if own_scaled:
        worst = _check_batched_scaled(model, data, layout, stack, labels, guard, out)
    for kind, arg in (("shared data", data), ("a list of per-member data",
                                               [data] * stack.shape[0])):
        if not own_grad:
            break
        thetas = stack.copy()
        params = layout.unpack_batch(thetas)
        try:
            batched = guard.call("batched_grad", model.batched_grad, thetas, params, arg)
        except Exception as exc:
            out.append(f"with {kind}: batched_grad {_error(exc)}")
            continue
        if not isinstance(batched, Mapping) or set(batched) != set(layout.names):
            out.append(f"with {kind}: batched_grad returned "
                       f"{sorted(batched) if isinstance(batched, Mapping) else type(batched)}"
                       f", expected the blocks {list(layout.names)}")
            continue
        for name, shape in layout.shapes.items():
            value = np.asarray(batched[name])
            if value.shape != (stack.shape[0], *shape):
                out.append(f"with {kind}: block {name!r} has shape {value.shape}, expected "
                           f"{(stack.shape[0], *shape)} (members first)")
                continue
            for i, row in enumerate(rows):
                ref = np.asarray(row[name], dtype=float)
                diff = float(np.linalg.norm(value[i] - ref))
                scale = max(float(np.linalg.norm(ref)), float(np.linalg.norm(value[i])))
                floor = math.sqrt(ref.size) * _TINY / _EPS
                if not diff <= BATCHED_RTOL * scale + floor:
                    out.append(f"with {kind}: block {name!r} of member {i} ({labels[i]}) "
                               f"differs from grad by {diff:.3g} (norm {scale:.3g})")
                elif scale > 0:
                    worst = max(worst, diff / scale)
    if not out:
        checked = " and ".join(name for name, own in (("batched_grad", own_grad),
                                                       ("batched_scaled_grad", own_scaled))
                               if own)
        summary["11.batched_grad"].append(
            f"{checked}: {stack.shape[0]} members, shared and per-member data: largest "
            f"relative difference {worst:.2g} (tolerance {BATCHED_RTOL:g})")


def _check_batched_scaled(model: Model, data: Any, layout: Layout, stack: np.ndarray,
                          labels: list[str], guard: _Guard, out: list[str]) -> float:
    """An overriding ``batched_scaled_grad`` against ``scaled_grad`` member by member. The
    two may factor out different positive factors, so member b's blocks are compared after
    rescaling to the per-member factor: ``blocks_b · exp(s_b − s)`` against ``scaled_grad``'s
    blocks (a block that is exactly zero, log-scale −inf, on one side must be on both)."""
    try:
        rows = [model.scaled_grad(layout.unpack(stack[i].copy()), data)
                for i in range(stack.shape[0])]
    except Exception as exc:
        out.append(f"scaled_grad {_error(exc)}")
        return 0.0
    worst = 0.0
    for kind, arg in (("shared data", data), ("a list of per-member data",
                                               [data] * stack.shape[0])):
        thetas = stack.copy()
        params = layout.unpack_batch(thetas)
        try:
            blocks, scales = guard.call("batched_scaled_grad", model.batched_scaled_grad,
                                        thetas, params, arg)
        except Exception as exc:
            out.append(f"with {kind}: batched_scaled_grad {_error(exc)}")
            continue
        for name, shape in layout.shapes.items():
            value = np.asarray(blocks.get(name) if isinstance(blocks, Mapping) else None)
            s_b = np.asarray(scales.get(name) if isinstance(scales, Mapping) else None,
                             dtype=float)
            if value.shape != (stack.shape[0], *shape) or s_b.shape != (stack.shape[0],):
                out.append(f"with {kind}: batched_scaled_grad block {name!r} has shape "
                           f"{value.shape} and log-scales {s_b.shape}, expected "
                           f"{(stack.shape[0], *shape)} and ({stack.shape[0]},)")
                continue
            for i, (ref_blocks, ref_scales) in enumerate(rows):
                ref, s = np.asarray(ref_blocks[name], dtype=float), float(ref_scales[name])
                if np.isneginf(s) or np.isneginf(s_b[i]):
                    if not (np.isneginf(s) and np.isneginf(s_b[i])):
                        out.append(f"with {kind}: block {name!r} of member {i} "
                                   f"({labels[i]}) has log-scale {s_b[i]:g}, scaled_grad "
                                   f"{s:g}: one says the block is exactly zero")
                    continue
                with np.errstate(over="ignore", invalid="ignore"):
                    rescaled = value[i] * np.exp(s_b[i] - s)
                diff = float(np.linalg.norm(rescaled - ref))
                scale = max(float(np.linalg.norm(ref)), float(np.linalg.norm(rescaled)))
                floor = math.sqrt(ref.size) * _TINY / _EPS
                if not diff <= BATCHED_RTOL * scale + floor:
                    out.append(f"with {kind}: batched_scaled_grad block {name!r} of member "
                               f"{i} ({labels[i]}) differs from scaled_grad by {diff:.3g} "
                               f"(norm {scale:.3g}) after rescaling")
                elif scale > 0:
                    worst = max(worst, diff / scale)
    return worst


def _repr(model: Any) -> str:
    text = repr(model)
    if " object at 0x" in text:  # the default repr: the address says nothing
        text = type(model).__qualname__
    return text


def _finish(results: dict[str, list[str]], summary: dict[str, list[str]],
            known: dict[str, str]) -> list[ContractCheck]:
    checks = []
    for check_id, what in CHECKS.items():
        failures = results[check_id]
        if failures:
            checks.append(ContractCheck(check_id, what, False, tuple(failures),
                                        known.get(check_id)))
        elif check_id in known:
            checks.append(ContractCheck(
                check_id, what, False,
                (f"listed in known_failures ({known[check_id]!r}) but passed: remove it from "
                 "the list", *summary[check_id])))
        else:
            checks.append(ContractCheck(check_id, what, True, tuple(summary[check_id])))
    return checks


def _raise_if_failed(report: ModelReport) -> None:
    if report.failures:
        error = AssertionError(str(report))
        error.report = report  # type: ignore[attr-defined]
        raise error


def _hash(model: Model, data: Any, guard: _Guard, results: dict[str, list[str]]) -> str | None:
    try:
        return guard.call("content_hash", lambda _, d: model.content_hash(d), np.zeros(0), None,
                          data)
    except Exception as exc:
        results["10.content_hash"].append(f"content_hash(data) {_error(exc)}")
        return None


def _check_data_type(model: Model, data: Any, results: dict[str, list[str]],
                     summary: dict[str, list[str]]) -> None:
    out = results["1.data_type"]
    data_type = getattr(type(model), "data_type", object)
    kinds = data_type if isinstance(data_type, tuple) else (data_type,)
    names = " or ".join(getattr(k, "__name__", repr(k)) for k in kinds)
    if data_type is object:
        here = "type(None)" if data is None else type(data).__name__
        out.append(f"{type(model).__name__}.data_type is not declared (the default `object`); "
                   f"set it to the data's class, here {here}")
    elif not all(isinstance(k, type) for k in kinds):
        out.append(f"data_type must be a class or a tuple of classes, got {data_type!r}")
        return
    elif not isinstance(data, data_type):
        out.append(f"data is a {type(data).__name__}, not an instance of data_type {names}")
    if data is not None:
        if not (dataclasses.is_dataclass(data) and not isinstance(data, type)):
            out.append(f"data is a {type(data).__name__}, not a dataclass")
        elif not type(data).__dataclass_params__.frozen:  # type: ignore[attr-defined]
            out.append(f"data's dataclass {type(data).__name__} is not frozen")
    elif data_type is not object and type(None) not in kinds:
        out.append(f"data is None but data_type is {names}")
    if data_type is not object:
        try:
            model.check_data_type(object())
        except Exception as exc:  # an ArgumentError is the refusal rules 1 and 9 require
            if not isinstance(exc, ArgumentError):
                out.append(f"check_data_type(object()) {_error(exc)} instead of ArgumentError")
        else:
            out.append("check_data_type(object()) accepted it")
    frozen = "frozen dataclass" if data is not None else "None"
    summary["1.data_type"].append(f"data_type {names}; data is a {type(data).__name__} "
                                  f"({frozen})")


def _check_init(model: Model, layout: Layout, seeds: list[int], init_kwargs: dict[str, Any],
                results: dict[str, list[str]],
                summary: dict[str, list[str]]) -> np.ndarray | None:
    out = results["4.init"]
    first = None
    for s in seeds:
        try:
            theta = model.init(s, **init_kwargs)
        except Exception as exc:
            extra = f", **{init_kwargs}" if init_kwargs else ""
            out.append(f"init({s}{extra}) {_error(exc)}")
            continue
        arr = np.asarray(theta)
        if arr.shape != (layout.size,):
            out.append(f"init({s}) has shape {arr.shape}, expected ({layout.size},)")
            continue
        if arr.dtype.kind != "f":
            out.append(f"init({s}) has dtype {arr.dtype}, expected a real float")
            continue
        if not np.all(np.isfinite(arr)):
            out.append(f"init({s}) has {int(np.sum(~np.isfinite(arr)))} non-finite entries")
            continue
        if first is None:
            first = np.array(arr, dtype=float)
            try:
                again = np.asarray(model.init(s, **init_kwargs))
                if again.shape != arr.shape or not np.array_equal(again, arr):
                    out.append(f"init({s}) is not reproducible: two draws from seed {s} differ")
            except Exception as exc:
                out.append(f"init({s}) a second time {_error(exc)}")
    if not out:
        summary["4.init"].append(f"init(seed) for seeds {seeds}: shape ({layout.size},), "
                                 "finite floats, reproducible")
    return first


def _check_point(model: Model, data: Any, layout: Layout, label: str, point: np.ndarray,
                 is_main: bool, guard: _Guard, results: dict[str, list[str]],
                 summary: dict[str, list[str]], report: ModelReport) -> bool:
    """Rules 5 (real part), 6 (blocks) and 7 at one point; False if the point is skipped."""
    params = layout.unpack(point)
    out = results["5.sample_losses"]
    try:
        losses = guard.call("sample_losses", model.sample_losses, point, params, data)
    except Exception as exc:
        if is_main:
            out.append(f"at {label}: sample_losses {_error(exc)}")
        else:
            report.skipped[label] = f"sample_losses {_error(exc)}"
        return False
    losses = np.asarray(losses)
    if losses.ndim != 1 or losses.shape[0] < 1:
        out.append(f"at {label}: sample_losses has shape {losses.shape}, expected (n,) with "
                   "n >= 1")
        return False
    if losses.dtype.kind != "f":
        out.append(f"at {label}: sample_losses has dtype {losses.dtype}, expected a real float "
                   "for real params")
        return False
    bad = ~np.isfinite(losses)
    if bad.any():
        text = (f"{int(bad.sum())} of {losses.size} per-sample losses are not finite "
                f"(first: ℓ[{int(np.argmax(bad))}] = {losses[bad][0]})")
        if is_main:
            out.append(f"at {label}: {text}")
        else:
            report.skipped[label] = text
        return False
    n = losses.shape[0]
    if is_main:
        summary["5.sample_losses"].append(f"n = {n}, real and finite at every point")

    # ------------------------------------------------ rule 5: L = Σ w ℓ
    out = results["5.loss"]
    try:
        weights = guard.call("sample_weights", lambda _, d: model.sample_weights(d), point,
                             None, data)
        value = guard.call("loss", model.loss, point, params, data)
        terms = guard.call("weighted_losses", model.weighted_losses, point, params, data)
    except Exception as exc:
        out.append(f"at {label}: {_error(exc)}")
        weights = value = terms = None
    if value is not None:
        w = None if weights is None else np.asarray(weights)
        if w is not None and (w.dtype.kind not in "fiu" or w.shape not in ((), (n,))
                              or not np.all(np.isfinite(w))):
            out.append(f"sample_weights has shape {w.shape}, dtype {w.dtype}"
                       f"{'' if np.all(np.isfinite(w)) else ', non-finite entries'}; expected "
                       f"None, a finite real scalar or a finite real array of shape ({n},)")
        else:
            reference = losses / n if w is None else w * losses
            exact = math.fsum(reference.tolist())
            scale = math.fsum(np.abs(reference).tolist())
            tol = 2 * (n + 2) * _EPS * scale
            arr = np.asarray(value)
            if arr.shape != () or arr.dtype.kind != "f":
                out.append(f"at {label}: loss has shape {arr.shape} and dtype {arr.dtype}, "
                           "expected a real scalar")
            elif not abs(float(arr) - exact) <= tol:
                out.append(f"at {label}: loss = {float(arr)!r} but Σ w_n ℓ_n = {exact!r} "
                           f"(difference {abs(float(arr) - exact):.3e}, tolerance {tol:.3e})")
            t = np.asarray(terms)
            if t.shape != (n,):
                out.append(f"at {label}: weighted_losses has shape {t.shape}, expected ({n},)")
            elif not abs(math.fsum(np.real(t).tolist()) - exact) <= tol:
                out.append(f"at {label}: Σ weighted_losses = {math.fsum(t.tolist())!r} but "
                           f"Σ w_n ℓ_n = {exact!r} (tolerance {tol:.3e})")
            if is_main:
                kind = ("None (the mean)" if w is None else
                        f"a scalar {float(w):g}" if w.shape == () else f"an array ({n},)")
                summary["5.loss"].append(f"sample_weights is {kind}; at {label} loss = "
                                         f"{float(arr):.6g}, |loss − fsum(w ℓ)| = "
                                         f"{abs(float(arr) - exact):.1e} ≤ {tol:.1e}")

    # ------------------------------------------------ rule 6: the blocks
    out = results["6.grad_blocks"]
    try:
        grad = guard.call("grad", model.grad, point, params, data)
    except Exception as exc:
        out.append(f"at {label}: grad {_error(exc)}")
        grad = None
    if grad is not None:
        problems = _block_problems("grad", grad, layout)
        out += [f"at {label}: {p}" for p in problems]
        if problems:
            grad = None
    if is_main and grad is not None:
        summary["6.grad_blocks"].append(
            "blocks " + ", ".join(f"{k} {v}" for k, v in layout.shapes.items()))

    # ------------------------------------------------ rule 7: the scaled hook
    _check_scaled(model, data, layout, label, point, params, grad, guard, results, summary,
                  report)
    return True


def _block_problems(what: str, blocks: Any, layout: Layout) -> list[str]:
    if not isinstance(blocks, Mapping):
        return [f"{what} returned a {type(blocks).__name__}, not a dict of blocks"]
    problems = []
    if set(blocks) != set(layout.names):
        problems.append(f"{what} has blocks {sorted(blocks)}, the layout "
                        f"{sorted(layout.names)}")
    for name, shape in layout.shapes.items():
        if name not in blocks:
            continue
        value = np.asarray(blocks[name])
        if value.shape != shape:
            problems.append(f"{what}[{name!r}] has shape {value.shape}, the layout {shape}")
        if value.dtype.kind != "f":
            problems.append(f"{what}[{name!r}] has dtype {value.dtype}, expected a real float")
    return problems


def _check_scaled(model: Model, data: Any, layout: Layout, label: str, point: np.ndarray,
                  params: dict[str, np.ndarray], grad: Mapping[str, Any] | None, guard: _Guard,
                  results: dict[str, list[str]], summary: dict[str, list[str]],
                  report: ModelReport) -> None:
    out = results["7.scaled_grad"]
    try:
        result = guard.call("scaled_grad", model.scaled_grad, point, params, data)
        blocks, log_scales = result
    except Exception as exc:
        out.append(f"at {label}: scaled_grad {_error(exc)}")
        return
    problems = _block_problems("scaled_grad blocks", blocks, layout)
    if not isinstance(log_scales, Mapping):
        problems.append(f"log_scales is a {type(log_scales).__name__}, not a dict")
    elif set(log_scales) != set(layout.names):
        problems.append(f"log_scales has names {sorted(log_scales)}, the layout "
                        f"{sorted(layout.names)}")
    if problems:
        out += [f"at {label}: {p}" for p in problems]
        return
    worst, uncompared = 0.0, []
    for name in layout.names:
        B = np.asarray(blocks[name], dtype=float)
        try:
            s = float(log_scales[name])
        except (TypeError, ValueError) as exc:
            out.append(f"at {label}: log_scales[{name!r}] = {log_scales[name]!r} is not a "
                       f"real number ({exc})")
            continue
        if not np.all(np.isfinite(B)):
            out.append(f"at {label}: scaled_grad block {name!r} has "
                       f"{int(np.sum(~np.isfinite(B)))} non-finite entries")
            continue
        if math.isnan(s) or s == math.inf:
            out.append(f"at {label}: log_scales[{name!r}] = {s}; it must be finite, or −inf "
                       "for an all-zero block")
            continue
        if grad is None:
            continue
        g = np.asarray(grad[name], dtype=float)
        if s == -math.inf:
            if np.any(g != 0):
                out.append(f"at {label}: log_scales[{name!r}] = −inf but grad[{name!r}] has "
                           f"{int(np.count_nonzero(g))} non-zero entries (max |g| = "
                           f"{float(np.max(np.abs(g))):.3e})")
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            expected = math.exp(s) * B if s < 709.7 else np.exp(s) * B
        if not np.all(np.isfinite(expected)):
            out.append(f"at {label}: exp(log_scales[{name!r}] = {s:.6g}) * block overflows")
            continue
        ne, ng = float(np.linalg.norm(expected)), float(np.linalg.norm(g))
        diff = float(np.linalg.norm(expected - g))
        floor = math.sqrt(max(g.size, 1)) * _TINY / _EPS
        scale = max(ne, ng)
        if 0 < scale <= floor:
            uncompared.append(name)
            continue
        rel = diff / scale if scale > 0 else 0.0  # both exactly zero: consistent
        worst = max(worst, rel)
        if not diff <= SCALED_RTOL * scale + floor:
            out.append(f"at {label}: block {name!r}: ‖exp(s)·blocks − grad‖/‖grad‖ = {rel:.3e}"
                       f" > {SCALED_RTOL:.0e} (log_scale {s:.6g}, ‖exp(s)·blocks‖ = {ne:.6e}, "
                       f"‖grad‖ = {ng:.6e})")
    summary["7.scaled_grad"].append(f"at {label}: worst relative difference {worst:.1e}"
                                    + (f"; not compared (both below the underflow floor): "
                                       f"{', '.join(uncompared)}" if uncompared else ""))
    if uncompared:
        report.notes.append(f"at {label} the gradient of {', '.join(uncompared)} is below the "
                            "underflow floor: scaled_grad was not compared with grad there")


def _check_complex(model: Model, data: Any, layout: Layout, label: str, point: np.ndarray,
                   seed: int, results: dict[str, list[str]],
                   summary: dict[str, list[str]]) -> None:
    out = results["5.complex"]
    v = np.random.default_rng([seed, 7]).standard_normal(layout.size)
    v /= np.linalg.norm(v)
    z = point + 1j * COMPLEX_STEP * v
    try:
        real = np.asarray(model.sample_losses(layout.unpack(point), data))
        losses = np.asarray(model.sample_losses(layout.unpack(z), data))
    except Exception as exc:
        out.append(f"at {label}: sample_losses on complex params {_error(exc)}")
        return
    if losses.dtype.kind != "c":
        out.append(f"at {label}: sample_losses on complex params returned dtype "
                   f"{losses.dtype}: the imaginary part (the complex step) is lost")
        return
    if losses.shape != real.shape:
        out.append(f"at {label}: sample_losses on complex params has shape {losses.shape}, on "
                   f"real params {real.shape}")
        return
    if not np.all(np.isfinite(losses.imag)):
        out.append(f"at {label}: sample_losses on complex params has "
                   f"{int(np.sum(~np.isfinite(losses.imag)))} non-finite imaginary parts")
        return
    scale = float(np.max(np.abs(real))) if real.size else 0.0
    diff = float(np.max(np.abs(losses.real - real))) if real.size else 0.0
    if not diff <= COMPLEX_RTOL * scale + COMPLEX_STEP:
        out.append(f"at {label}: Re sample_losses(θ + ihv) differs from sample_losses(θ) by "
                   f"{diff:.3e} (max |ℓ_n| = {scale:.3e}, tolerance {COMPLEX_RTOL:.0e} relative)")
        return
    summary["5.complex"].append(f"at {label}: complex losses, |Re ℓ(θ + ihv) − ℓ(θ)| ≤ "
                                f"{diff:.1e}")


def _check_gradient_at(objective: _Bound, label: str, point: np.ndarray, seed: int,
                       n_directions: int, tolerance: float | None, allow_unresolved: bool,
                       results: dict[str, list[str]], report: ModelReport) -> None:
    out = results["6.gradient"]
    try:
        check = check_gradient(objective, point, n_directions=n_directions, rng=seed,
                               tolerance=tolerance)
    except Exception as exc:
        out.append(f"at {label}: check_gradient {_error(exc)}")
        return
    report.gradient_checks[label] = check
    verdicts = {**check.block_verdicts, "all blocks": check.overall_verdict}
    failing = [b for b, v in verdicts.items() if v == "mismatch"
               or (v == "unresolved" and not allow_unresolved)]
    if failing:
        names = ", ".join(f"{b}: {verdicts[b]}" for b in failing)
        body = "\n".join("  " + line for line in str(check).split("\n"))
        hint = ""
        if any(verdicts[b] == "unresolved" for b in failing):
            hint = ("\n  (unresolved: the complex step and central differences disagree, so the "
                    "closed form was not verified here; usually the loss's complex step is "
                    "inexact, i.e. sample_losses is not complex-step safe at this point, rule 5: "
                    "see gradflow.numerics, e.g. softmax_readout)")
        out.append(f"at {label}: {names}\n{body}{hint}")
    zero = [b for b, v in check.block_verdicts.items() if v == "zero"]
    if zero:
        report.notes.append(f"at {label} the gradient check of {', '.join(zero)} is 'zero' (the "
                            "gradient and the complex step both below the underflow floor "
                            "tiny/h: nothing compared there)")
    unresolved = [b for b, v in verdicts.items() if v == "unresolved"]
    if unresolved and allow_unresolved:
        report.notes.append(f"at {label} the gradient check is unresolved for "
                            f"{', '.join(unresolved)} (allowed by allow_unresolved)")


def _never_checked(report: ModelReport, layout: Layout) -> None:
    """Note the blocks whose gradient was "zero" (nothing compared) at every point."""
    checks = report.gradient_checks.values()
    if not checks:
        return
    never = [b for b in layout.names if all(c.block_verdicts.get(b) == "zero" for c in checks)]
    if never:
        report.notes.append(f"the gradient of {', '.join(never)} was 'zero' (below the complex "
                            "step's underflow floor) at every point: never compared")


def _summarise_gradient(report: ModelReport, summary: dict[str, list[str]]) -> None:
    for label, check in report.gradient_checks.items():
        verdicts = ", ".join(f"{b} {v}" for b, v in check.block_verdicts.items())
        summary["6.gradient"].append(f"at {label}: {check.verdict} ({verdicts}); max relative "
                                     f"error {check.max_rel_error:.1e}")


def _warnings(caught: list[warnings.WarningMessage], label: str,
              results: dict[str, list[str]], report: ModelReport) -> None:
    seen = set()
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if key in seen:
            continue
        seen.add(key)
        if issubclass(w.category, np.exceptions.ComplexWarning):
            results["5.complex"].append(f"at {label}: the model cast a complex value to real "
                                        f"({w.category.__name__}: {w.message})")
        else:
            report.notes.append(f"at {label} the model warned: {w.category.__name__}: "
                                f"{w.message}")


def _check_observables(model: Model, data: Any, points: dict[str, np.ndarray], guard: _Guard,
                       results: dict[str, list[str]], summary: dict[str, list[str]],
                       report: ModelReport) -> None:
    out = results["8.observables"]
    if not points:
        out.append("no point with a finite loss to evaluate the observables at")
        return
    first = next(iter(points.values()))
    try:
        observables = guard.call("observables", lambda _, d: model.observables(d), first, None,
                                 data)
    except Exception as exc:
        out.append(f"observables(data) {_error(exc)}")
        return
    if not isinstance(observables, Mapping):
        out.append(f"observables(data) returned a {type(observables).__name__}, not a dict")
        return
    shapes: dict[str, tuple[int, ...]] = {}
    non_finite = []
    for name, fn in observables.items():
        if not isinstance(name, str) or not callable(fn):
            out.append(f"observables[{name!r}] is a {type(fn).__name__}: expected str → "
                       "callable θ ↦ value")
            continue
        for label, point in points.items():
            theta = point.copy()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    value = np.asarray(guard.call(f"observable {name!r}", fn, theta, None))
            except Exception as exc:
                out.append(f"observable {name!r} at {label} {_error(exc)}")
                continue
            if value.dtype.kind not in "biufc":
                out.append(f"observable {name!r} at {label} returned dtype {value.dtype}: not "
                           "a number or numeric array")
                continue
            expected = shapes.setdefault(name, value.shape)
            if value.shape != expected:
                out.append(f"observable {name!r} has shape {value.shape} at {label} but "
                           f"{expected} at the first point (simulate refuses that)")
            if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
                non_finite.append(f"{name} = {value.ravel()[:3].tolist()} at {label}")
    summary["8.observables"].append(f"{len(observables)} observables at {', '.join(points)}"
                                    + (f": {', '.join(map(str, observables))}" if observables
                                       else ""))
    if non_finite:
        report.notes.append("non-finite observables (allowed): " + "; ".join(non_finite))


def _check_foreign(model: Model, data: Any, foreign: list[Any], guard: _Guard,
                   results: dict[str, list[str]], summary: dict[str, list[str]]) -> None:
    out = results["9.check_data"]
    try:
        guard.call("check_data", lambda _, d: model.check_data(d), np.zeros(0), None, data)
    except Exception as exc:
        out.append(f"check_data(data) refused the model's own data: {_error(exc)}")
    data_type = getattr(type(model), "data_type", object)
    candidates: list[tuple[str, Any]] = [("object()", object())]
    none_is_data = data is None or (data_type is not object and isinstance(None, data_type))
    if not none_is_data:
        candidates.append(("None", None))
    duck = _foreign_copy(data)
    if duck is not None:
        candidates.append((f"a {type(duck).__name__} (another dataclass with the same fields "
                           "and values)", duck))
    candidates += [(f"a {type(obj).__name__}", obj) for obj in foreign]
    for label, obj in candidates:
        try:
            model.check_data(obj)
        except Exception as exc:  # an ArgumentError is the refusal rule 9 requires
            if not isinstance(exc, ArgumentError):
                out.append(f"check_data({label}) {_error(exc)}, not ArgumentError")
        else:
            out.append(f"check_data accepted {label}")
    summary["9.check_data"].append("own data accepted; refused with ArgumentError: "
                                   + "; ".join(label for label, _ in candidates))


def _check_hash(model: Model, data: Any, before: str | None, guard: _Guard,
                results: dict[str, list[str]], summary: dict[str, list[str]]) -> None:
    out = results["10.content_hash"]
    if before is None:
        return
    if not isinstance(before, str) or not _HEX64.fullmatch(before):
        out.append(f"content_hash(data) = {before!r} is not 64 lowercase hex digits")
        return
    try:
        again = guard.call("content_hash", lambda _, d: model.content_hash(d), np.zeros(0),
                           None, data)
    except Exception as exc:
        out.append(f"content_hash(data) a second time {_error(exc)}")
        return
    if again != before:
        out.append("content_hash(data) changed after evaluating the loss, gradient and "
                   f"observables ({before[:12]}… → {again[:12]}…): a lazily filled cache is "
                   "hashed; make it a functools.cached_property or list it in hash_exclude")
    try:
        twin_model, twin_data = copy.deepcopy((model, data))
    except Exception as exc:
        summary["10.content_hash"].append(f"(no deepcopy comparison: deepcopy {_error(exc)})")
    else:
        try:
            twin = twin_model.content_hash(twin_data)
        except Exception as exc:
            out.append(f"content_hash of a deepcopy of model and data {_error(exc)}")
        else:
            if twin != before:
                out.append("a deepcopy of model and data hashes differently "
                           f"({before[:12]}… vs {twin[:12]}…): the hash depends on identity")
    summary["10.content_hash"].append(f"{before[:16]}…, stable across evaluations and copies")

"""The claims ledger: every measurable claim of a paper, as a record with its check.

A paper's ``papers/<paper>/claims.py`` declares

- ``RUNS``: ``{name: function(progress) -> anything}``, the protocol runs its claims read (each
  computed once per ledger, shared by every claim that names it), and
- ``CLAIMS``: a tuple of :class:`Claim`.

A claim's ``check`` receives the runs it ``uses`` (in that order) and returns the measured
value; its ``expected`` (:class:`Close`, :class:`Within`, :class:`Equals`) decides ``passed`` and
carries the tolerance's reason. A ``discrepancy`` pins what the flow does (so a change is
noticed) and says in ``note`` what the paper claims and what the flow does; a
``not-simulated`` claim is outside the flow and says why, with no check.

:func:`evaluate` runs a paper's ledger; ``gradflow claims`` writes ``claims.json`` and
``claims.md`` (:func:`write_ledger`).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.files import write_atomic, write_json
from gradflow.flow import BUDGET_KEYS
from gradflow.trajectory import to_jsonable

__all__ = [
    "STATUSES",
    "Claim",
    "Close",
    "Each",
    "Equals",
    "Expectation",
    "Ledger",
    "Result",
    "Within",
    "evaluate",
    "evaluate_summary",
    "ledger_markdown",
    "write_ledger",
]

Status = Literal["reproduced", "discrepancy", "not-simulated"]
STATUSES: tuple[str, ...] = ("reproduced", "discrepancy", "not-simulated")


def _reason(reason: str, kind: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ArgumentError(f"{kind}: a tolerance needs its reason (rounding, the solver's "
                            "tolerance, a transient with its measured decay), got none")
    return reason


class Expectation(ABC):
    """What a claim's measured value must satisfy, with the reason for its tolerance."""

    reason: str

    @abstractmethod
    def passes(self, measured: Any) -> bool:
        """Whether ``measured`` meets the expectation (False for a value of the wrong kind)."""

    @abstractmethod
    def describe(self) -> str:
        """The expected value or band, short."""

    @abstractmethod
    def tolerance(self) -> str:
        """The tolerance with its reason."""


@dataclass(frozen=True)
class Close(Expectation):
    """``|measured − value| ≤ atol + rtol·|value|`` (elementwise for arrays).

    Parameters
    ----------
    value : float or array
    rtol, atol : float
    reason : str
        Why this tolerance (required).
    """

    value: Any
    rtol: float = 0.0
    atol: float = 0.0
    reason: str = ""

    def __post_init__(self) -> None:
        _reason(self.reason, "Close")
        if not (self.rtol >= 0 and self.atol >= 0):
            raise ArgumentError(f"Close: rtol and atol must be >= 0, got {self.rtol}, {self.atol}")

    def passes(self, measured: Any) -> bool:
        try:
            got = np.asarray(measured, dtype=float)
            want = np.asarray(self.value, dtype=float)
            return bool(got.shape == want.shape or want.ndim == 0) and bool(
                np.all(np.abs(got - want) <= self.atol + self.rtol * np.abs(want)))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return _short(self.value)

    def tolerance(self) -> str:
        parts = [f"rtol {self.rtol:g}" if self.rtol else "", f"atol {self.atol:g}" if self.atol
                 else ""]
        return (", ".join(p for p in parts if p) or "exact") + f": {self.reason}"


@dataclass(frozen=True)
class Within(Expectation):
    """``low ≤ measured ≤ high`` (every entry of an array); ``None`` leaves a side open."""

    low: float | None = None
    high: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        _reason(self.reason, "Within")
        if self.low is None and self.high is None:
            raise ArgumentError("Within: give low, high or both")
        if self.low is not None and self.high is not None and not self.low <= self.high:
            raise ArgumentError(f"Within: low {self.low} > high {self.high}")

    def passes(self, measured: Any) -> bool:
        try:
            got = np.asarray(measured, dtype=float)
        except (TypeError, ValueError):
            return False
        if got.size == 0 or not np.all(np.isfinite(got) | np.isinf(got)):
            return False
        ok = np.ones(got.shape, dtype=bool)
        if self.low is not None:
            ok &= got >= self.low
        if self.high is not None:
            ok &= got <= self.high
        return bool(np.all(ok))

    def describe(self) -> str:
        low = "−∞" if self.low is None else f"{self.low:g}"
        high = "∞" if self.high is None else f"{self.high:g}"
        return f"[{low}, {high}]"

    def tolerance(self) -> str:
        return f"band: {self.reason}"


@dataclass(frozen=True)
class Equals(Expectation):
    """``measured == value`` exactly (a count, a boolean, a label)."""

    value: Any
    reason: str = "a count, a boolean or a label: no rounding enters"

    def __post_init__(self) -> None:
        _reason(self.reason, "Equals")

    def passes(self, measured: Any) -> bool:
        return bool(to_jsonable(measured) == to_jsonable(self.value))

    def describe(self) -> str:
        return _short(self.value)

    def tolerance(self) -> str:
        return f"exact: {self.reason}"


@dataclass(frozen=True)
class Each(Expectation):
    """A measurement with several named parts (a dict), each against its own expectation
    with its own reason; it passes when the measured dict has exactly these parts (a misnamed
    part is a failure, not an unchecked value) and every one passes.

    ``Each({"norm": Close(...), "monotone": Equals(True)})`` or
    ``Each.of(norm=Close(...), monotone=Equals(True))``; parts may nest.
    """

    parts: Any
    reason: str = "each part against its own expectation, with its own reason"

    def __post_init__(self) -> None:
        parts = tuple(self.parts.items()) if isinstance(self.parts, Mapping) else tuple(
            self.parts)
        if not parts or not all(isinstance(e, Expectation) for _, e in parts):
            raise ArgumentError("Each: give at least one part, each an Expectation")
        object.__setattr__(self, "parts", parts)

    @classmethod
    def of(cls, **parts: Expectation) -> Each:
        return cls(tuple(parts.items()))

    def passes(self, measured: Any) -> bool:
        if not isinstance(measured, Mapping) or set(measured) != {n for n, _ in self.parts}:
            return False
        return all(e.passes(measured[name]) for name, e in self.parts)

    def describe(self) -> str:
        return "{" + ", ".join(f"{name}: {e.describe()}" for name, e in self.parts) + "}"

    def tolerance(self) -> str:
        grouped: dict[str, list[str]] = {}  # parts with one tolerance are named together
        for name, e in self.parts:
            grouped.setdefault(e.tolerance(), []).append(name)
        return "; ".join(f"{', '.join(names)}: {text}" for text, names in grouped.items())


@dataclass(frozen=True)
class Claim:
    """One measurable claim of a paper.

    Attributes
    ----------
    id : str
        Stable, ``<paper>.<name>`` (e.g. ``regular.thm4_4``).
    statement : str
        The claim, in one or two sentences.
    source : str
        Where the paper makes it (section, theorem, equation, figure); where the paper could not
        be read, the derivation page that holds gradflow's reading (``"a modelling choice of
        gradflow: docs/derivations/<paper>.md, §<heading>"``).
    status : {"reproduced", "discrepancy", "not-simulated"}
    check : callable, optional
        ``check(*runs) -> measured`` for the runs named in ``uses``; ``None`` only for
        ``not-simulated``.
    expected : Expectation, optional
        What ``measured`` must satisfy; ``None`` only for ``not-simulated``.
    uses : tuple of str
        Names of the paper's ``RUNS`` the check reads.
    note : str
        For a discrepancy: what the paper claims and what the flow does, in one sentence; for
        not-simulated: why; otherwise optional context.
    discussion : str
        For a discrepancy: the evidence, what would settle it, and whether it contradicts the
        theorem or only a sharper reading (the findings page prints it).
    figure : callable, optional
        ``figure(*runs, path) -> Path``: the figure that shows a discrepancy.
    ledger : str
        The fidelity review's id of the claim (e.g. ``N19``), if it has one.
    experiment : str
        The experiment whose run also measures the claim (``gradflow run <experiment>`` then
        prints and saves this claim's row), with :attr:`from_summary`.
    from_summary : callable, optional
        ``from_summary(summary) -> measured``: the same measurement read from that
        experiment's ``summary.json``.
    config : dict
        The experiment parameters the claim is asserted at, where they differ from the
        defaults (e.g. ``{"s1_mult": 1.0}`` for the paper's own initialisation); a run with
        other values reports the row as not applicable.
    """

    id: str
    statement: str
    source: str
    status: Status
    check: Callable[..., Any] | None = None
    expected: Expectation | None = None
    uses: tuple[str, ...] = ()
    note: str = ""
    discussion: str = ""
    figure: Callable[..., Path] | None = None
    ledger: str = ""
    experiment: str = ""
    from_summary: Callable[[Mapping[str, Any]], Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ArgumentError(f"claim {self.id!r}: status must be one of {STATUSES}, got "
                                f"{self.status!r}")
        if "." not in self.id:
            raise ArgumentError(f"claim id {self.id!r} must be '<paper>.<name>'")
        simulated = self.status != "not-simulated"
        if simulated and (self.check is None or self.expected is None):
            raise ArgumentError(f"claim {self.id!r}: a {self.status} claim needs a check and "
                                "an expected value")
        if not simulated and not self.note:
            raise ArgumentError(f"claim {self.id!r}: a not-simulated claim says why in note")
        if self.status == "discrepancy" and not self.note:
            raise ArgumentError(f"claim {self.id!r}: a discrepancy says in note what the paper "
                                "claims and what the flow does")

    @property
    def paper(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass
class Result:
    """A claim evaluated: the measured value, whether it passed, and the time it took."""

    claim: Claim
    measured: Any = None
    passed: bool | None = None
    error: str = ""
    seconds: float = 0.0
    figure: str = ""

    def record(self) -> dict[str, Any]:
        """The JSON object of ``claims.json``."""
        c = self.claim
        return to_jsonable({
            "id": c.id, "paper": c.paper, "ledger": c.ledger, "statement": c.statement,
            "source": c.source, "status": c.status,
            "expected": None if c.expected is None else c.expected.describe(),
            "measured": self.measured,
            "tolerance": None if c.expected is None else c.expected.tolerance(),
            "passed": self.passed, "note": c.note, "error": self.error,
            "figure": self.figure, "seconds": round(self.seconds, 3),
        })


def evaluate(claims: Sequence[Claim], runs: Mapping[str, Callable[[bool], Any]], *,
             progress: bool = False, figures: Path | None = None,
             cache: dict[str, Any] | None = None) -> list[Result]:
    """Evaluate ``claims``: each run they use is computed once (in ``cache``), then each check.

    A check that raises is a failed claim with the error recorded (the others still run); a
    run that raises fails every claim that uses it.
    """
    cache = {} if cache is None else cache
    failed_runs: dict[str, str] = {}
    results = []
    bar = _bar(len(claims), progress)
    for claim in claims:
        result = Result(claim)
        start = time.perf_counter()
        if claim.status != "not-simulated":
            try:
                values = []
                for name in claim.uses:
                    if name not in runs:
                        raise ArgumentError(f"claim {claim.id!r} uses run {name!r}, which the "
                                            f"paper does not declare (runs: {sorted(runs)})")
                    if name in failed_runs:
                        raise RuntimeError(f"run {name!r} failed: {failed_runs[name]}")
                    if name not in cache:
                        try:
                            cache[name] = runs[name](progress)
                        except Exception as exc:
                            failed_runs[name] = f"{type(exc).__name__}: {exc}"
                            raise
                    values.append(cache[name])
                result.measured = to_jsonable(claim.check(*values))
                result.passed = claim.expected.passes(result.measured)
                if figures is not None and claim.figure is not None:
                    figures.mkdir(parents=True, exist_ok=True)
                    path = claim.figure(*values, figures / f"{claim.id}.png")
                    result.figure = str(Path(path).name)
            except Exception as exc:
                result.passed = False
                result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        results.append(result)
        bar(claim.id)
    return results


def evaluate_summary(claims: Sequence[Claim], summary: Mapping[str, Any],
                     defaults: Mapping[str, Any]) -> list[Result]:
    """The rows of ``claims`` measured from an experiment's ``summary`` (their
    :attr:`Claim.from_summary`). A claim is asserted at the experiment's defaults updated with
    ``claim.config``; on a run with other values (work limits and checkpointing aside) it is
    not applicable: ``passed`` None, and ``error`` says which values it needs."""
    config = summary.get("config", {})
    results = []
    for claim in claims:
        if claim.from_summary is None:
            continue
        result = Result(claim)
        # the claim holds at the defaults with its own overrides; work limits and where the
        # run is checkpointed do not change the flow, every other parameter may
        wanted = {k: v for k, v in {**defaults, **claim.config}.items()
                  if k not in (*BUDGET_KEYS, "checkpoint")}
        differ = {k: v for k, v in wanted.items() if to_jsonable(config.get(k)) != to_jsonable(v)}
        if differ:
            result.error = "not applicable: asserted at " + ", ".join(
                f"{k}={v!r}" for k, v in differ.items())
        else:
            try:
                result.measured = to_jsonable(claim.from_summary(summary))
                result.passed = claim.expected.passes(result.measured)
            except Exception as exc:
                result.passed, result.error = False, f"{type(exc).__name__}: {exc}"
        results.append(result)
    return results


def _bar(total: int, progress: bool) -> Callable[[str], None]:
    if not progress:
        return lambda label: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="claims", unit="claim")

    def step(label: str) -> None:
        bar.set_postfix_str(label)
        bar.update(1)
        if bar.n == total:
            bar.close()

    return step


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(to_jsonable(value), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ledger_markdown(results: Sequence[Result]) -> str:
    """A table a referee can read: one row per claim, then the notes of the discrepancies."""
    lines = ["| id | claim | source | status | expected | measured | tolerance | passed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, rec = r.claim, r.record()
        passed = {True: "yes", False: "**no**", None: "—"}[r.passed]
        lines.append("| " + " | ".join(_cell(x) for x in (
            c.id, c.statement, c.source, c.status, rec["expected"] or "—",
            r.error or _short(r.measured), rec["tolerance"] or c.note, passed)) + " |")
    notes = [r for r in results if r.claim.status == "discrepancy"]
    if notes:
        lines += ["", "**Discrepancies.**", ""]
        lines += [f"- `{r.claim.id}`: {r.claim.note}"
                  + (f" (figure: `{r.figure}`)" if r.figure else "") for r in notes]
    return "\n".join(lines) + "\n"


def write_ledger(results: Sequence[Result], out: str | Path) -> tuple[Path, Path]:
    """Write ``claims.json`` (``{"claims": [...]}``) and ``claims.md`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = [r.record() for r in results]
    counts = {s: sum(r["status"] == s for r in records) for s in STATUSES}
    summary = {"claims": records, "counts": counts,
               "passed": sum(bool(r["passed"]) for r in records),
               "failed": [r["id"] for r in records if r["passed"] is False]}
    json_path = write_json(out / "claims.json", summary)
    md_path = write_atomic(out / "claims.md", lambda fh: fh.write(ledger_markdown(results)),
                           mode="w")
    return json_path, md_path


@dataclass(frozen=True)
class Ledger:
    """A paper's ledger: its claims and the runs they read (``papers/<paper>/claims.py``)."""

    paper: str
    claims: tuple[Claim, ...]
    runs: Mapping[str, Callable[[bool], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [c.id for c in self.claims]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ArgumentError(f"ledger {self.paper!r}: duplicated claim ids {duplicated}")
        foreign = [c.id for c in self.claims if c.paper != self.paper]
        if foreign:
            raise ArgumentError(f"ledger {self.paper!r}: claims of another paper {foreign}")
        unknown = sorted({u for c in self.claims for u in c.uses} - set(self.runs))
        if unknown:
            raise ArgumentError(f"ledger {self.paper!r}: claims use undeclared runs {unknown}")

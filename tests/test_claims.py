"""The claims ledger: the engine (expectations, records, shared runs, failures recorded) and one
test per claim of every paper's ledger, each asserting that the claim passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradflow import registry
from gradflow.claims import Claim, Close, Each, Equals, Ledger, Within, evaluate, write_ledger
from gradflow.cli import main
from gradflow.errors import ArgumentError

# ------------------------------------------------------------------------------- the engine


def test_expectations_pass_and_fail_where_they_should():
    assert Close(1.0, rtol=1e-3, reason="r").passes(1.0009)
    assert not Close(1.0, rtol=1e-3, reason="r").passes(1.0011)
    assert Close([0.0, 1.0], atol=1e-9, reason="r").passes(np.array([1e-10, 1.0]))
    assert not Close([0.0, 1.0], atol=1e-9, reason="r").passes([0.0, 1.0, 2.0])  # shapes
    assert not Close(1.0, rtol=1.0, reason="r").passes(float("nan"))
    assert not Close(1.0, rtol=1.0, reason="r").passes("a string")
    assert Within(-2.1, -1.9, reason="r").passes(-2.0)
    assert not Within(-2.1, -1.9, reason="r").passes(-1.8)
    assert Within(high=1e-8, reason="r").passes(0.0) and not Within(high=1e-8, reason="r").passes(1)
    assert not Within(0, 1, reason="r").passes(float("nan"))
    assert not Within(0, 1, reason="r").passes([])
    assert Equals(16).passes(16) and not Equals(16).passes(15)
    assert Equals(["a", "b"]).passes(("a", "b"))  # JSON-equal


def test_each_checks_every_part_and_names_them():
    each = Each.of(a=Close(1.0, atol=0.1, reason="r1"), b=Equals(True), c=Within(high=0.0,
                                                                            reason="r3"))
    assert each.passes({"a": 1.05, "b": True, "c": -1.0})
    assert not each.passes({"a": 1.2, "b": True, "c": -1.0})
    assert not each.passes({"a": 1.0, "b": False, "c": -1.0})
    assert not each.passes({"a": 1.0, "b": True})  # a part missing
    assert not each.passes({"a": 1.0, "b": True, "c": -1.0, "d": 0})  # an extra entry
    assert not each.passes([1.0, True, -1.0])
    assert "a: rtol" not in each.tolerance() and "a: atol 0.1: r1" in each.tolerance()
    assert each.describe().startswith("{a: 1.0")
    nested = Each.of(x=Each.of(y=Equals(1)))
    assert nested.passes({"x": {"y": 1}}) and not nested.passes({"x": {"y": 2}})
    with pytest.raises(ArgumentError, match="at least one part"):
        Each(())


def test_a_tolerance_needs_its_reason_and_a_claim_its_parts():
    for build in (lambda: Close(1.0, rtol=0.1), lambda: Within(0, 1), lambda: Within(0, 1,
                  reason="  ")):
        with pytest.raises(ArgumentError, match="reason"):
            build()
    with pytest.raises(ArgumentError, match="low 2 > high 1"):
        Within(2, 1, reason="r")
    with pytest.raises(ArgumentError, match="needs a check"):
        Claim("p.x", "s", "Thm 1", "reproduced")
    with pytest.raises(ArgumentError, match="says why"):
        Claim("p.x", "s", "Thm 1", "not-simulated")
    with pytest.raises(ArgumentError, match="what the paper"):
        Claim("p.x", "s", "Thm 1", "discrepancy", check=lambda: 1,
              expected=Equals(1))
    with pytest.raises(ArgumentError, match="status"):
        Claim("p.x", "s", "Thm 1", "holds", check=lambda: 1, expected=Equals(1))
    with pytest.raises(ArgumentError, match=r"<paper>\.<name>"):
        Claim("x", "s", "Thm 1", "reproduced", check=lambda: 1, expected=Equals(1))


def test_a_ledger_refuses_duplicates_foreign_claims_and_undeclared_runs():
    claim = Claim("p.a", "s", "Thm 1", "reproduced", check=lambda r: r, expected=Equals(1),
                  uses=("r",))
    with pytest.raises(ArgumentError, match="duplicated"):
        Ledger("p", (claim, claim), {"r": lambda progress: 1})
    with pytest.raises(ArgumentError, match="another paper"):
        Ledger("q", (claim,), {"r": lambda progress: 1})
    with pytest.raises(ArgumentError, match="undeclared runs"):
        Ledger("p", (claim,), {})


def test_runs_are_shared_and_failures_are_recorded_not_raised(tmp_path):
    calls = []

    def run(progress):
        calls.append(1)
        return 2.0

    def broken(progress):
        raise RuntimeError("the solver stalled")

    claims = (
        Claim("p.a", "a", "Thm 1", "reproduced", check=lambda r: r, expected=Equals(2.0),
              uses=("run",)),
        Claim("p.b", "b", "Thm 2", "discrepancy", check=lambda r: 3 * r,
              expected=Close(6.0, rtol=1e-12, reason="rounding"), uses=("run",),
              note="the paper says 5; the flow gives 6"),
        Claim("p.c", "c", "Lemma 3", "reproduced", check=lambda r: r, expected=Equals(1),
              uses=("broken",)),
        Claim("p.d", "d", "Thm 4", "reproduced", check=lambda r: 1 / 0, expected=Equals(1),
              uses=("run",)),
        Claim("p.e", "e", "§5 (real ViTs)", "not-simulated", note="a real-image experiment"),
        Claim("p.f", "f", "Thm 6", "reproduced", check=lambda r: r, expected=Equals(1.0),
              uses=("run",)),
    )
    results = evaluate(claims, {"run": run, "broken": broken})
    assert calls == [1]  # one run for four claims
    assert [r.passed for r in results] == [True, True, False, False, None, False]
    assert "the solver stalled" in results[2].error
    assert "ZeroDivisionError" in results[3].error
    json_path, md_path = write_ledger(results, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["failed"] == ["p.c", "p.d", "p.f"]
    assert data["counts"] == {"reproduced": 4, "discrepancy": 1, "not-simulated": 1}
    first = data["claims"][0]
    assert {"id", "paper", "statement", "source", "status", "expected", "measured",
            "tolerance", "passed"} <= set(first)
    assert first["paper"] == "p" and first["measured"] == 2.0
    table = md_path.read_text()
    assert "| p.b |" in table and "the paper says 5; the flow gives 6" in table


def test_the_cli_runs_a_ledger_and_names_a_bad_paper(tmp_path, capsys):
    assert main(["claims", "linear_icl", "--out", str(tmp_path), "--no-progress"]) == 0
    data = json.loads((tmp_path / "claims.json").read_text())
    assert data["claims"] and all(c["passed"] or (c["passed"] is None and c["status"] ==
                                                  "not-simulated") for c in data["claims"])
    assert (tmp_path / "claims.md").is_file()
    assert main(["claims", "nosuchpaper", "--out", str(tmp_path / "x")]) == 2
    assert "no claims ledger for paper 'nosuchpaper'" in capsys.readouterr().err


# ------------------------------------------------------------------------ every paper's claims

LEDGERS = {paper: registry.ledger(paper) for paper in registry.ledger_papers()}
CASES = [(paper, claim) for paper, ledger in LEDGERS.items() for claim in ledger.claims]
RUN_CACHE: dict[str, dict] = {}


def test_every_paper_with_experiments_has_a_ledger():
    assert "linear_icl" in LEDGERS


@pytest.mark.parametrize(("paper", "claim"), CASES, ids=[c.id for _, c in CASES])
def test_claim(paper, claim):
    """The claim passes: a reproduction within its stated tolerance, or a discrepancy still
    doing what the ledger pins. Each paper's runs are computed once for all its claims."""
    if claim.status == "not-simulated":
        pytest.skip(f"not simulated: {claim.note}")
    (result,) = evaluate([claim], LEDGERS[paper].runs, cache=RUN_CACHE.setdefault(paper, {}))
    assert result.passed, (f"{claim.id} ({claim.source}): measured {result.measured!r}, "
                           f"expected {claim.expected.describe()} "
                           f"({claim.expected.tolerance()}) {result.error}")


def test_rows_from_a_run_summary_and_parameters_that_do_not_apply():
    from gradflow.claims import evaluate_summary

    claims = (
        Claim("p.a", "a", "Thm 1", "reproduced", check=lambda r: r, expected=Equals(3),
              uses=("run",), experiment="e", from_summary=lambda s: s["n"]),
        Claim("p.b", "b", "Thm 2", "reproduced", check=lambda r: r, expected=Equals(3),
              uses=("run",), experiment="e", from_summary=lambda s: s["n"],
              config={"init": "paper"}),
        Claim("p.c", "c", "Thm 3", "reproduced", check=lambda r: r, expected=Equals(3),
              uses=("run",)),  # no from_summary: not a row of the run
    )
    summary = {"n": 3, "config": {"init": "tuned", "seed": 0, "max_nfev": 10}}
    defaults = {"init": "tuned", "seed": 0, "max_nfev": 200_000}
    rows = evaluate_summary(claims, summary, defaults)
    assert [(r.claim.id, r.passed) for r in rows] == [("p.a", True), ("p.b", None)]
    assert rows[1].error == "not applicable: asserted at init='paper'"
    other_seed = {**summary, "config": {**summary["config"], "seed": 1}}
    (row, _) = evaluate_summary(claims, other_seed, defaults)
    assert row.passed is None and row.error == "not applicable: asserted at seed=0"


def test_the_findings_pages_are_generated_from_the_ledgers():
    """No hand-typed findings: each page of a paper with a ledger is the output of
    scripts/write_findings.py (its marker and one section per paper), and every discrepancy of
    the ledger is discussed on it."""
    from pathlib import Path

    findings = Path(__file__).resolve().parents[1] / "docs" / "findings"
    pages = {"linear_icl": "icl", "softmax_icl": "icl", "representation_icl": "icl"}
    for paper, ledger in LEDGERS.items():
        text = (findings / f"{pages.get(paper, paper)}.md").read_text(encoding="utf-8")
        assert "Generated by `scripts/write_findings.py`" in text, paper
        assert f"`gradflow/papers/{paper}/claims.py`" in text, paper
        for claim in ledger.claims:
            if claim.status == "discrepancy":
                assert f"`{claim.id}`" in text, f"{claim.id} is not on the findings page"

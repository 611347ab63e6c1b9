"""Every model meets the contract of gradflow.Model (gradflow.testing.check_model), and
check_model itself fails each purpose-built broken model, naming the rule."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import ALL_MODELS

import gradflow
from gradflow.numerics import logistic_loss, sigmoid
from gradflow.testing import CHECKS, ModelReport, check_model

# ------------------------------------------------------------------------------- every model


@functools.cache
def _all_data() -> tuple:
    """One dataset of every case, to offer each model the others' data as foreign data."""
    return tuple(param.values[0]()[1] for param in ALL_MODELS)


@pytest.mark.parametrize("case", ALL_MODELS)
def test_model_meets_the_contract(case):
    model, data, theta = case()
    foreign = [d for d in _all_data() if d is not None and type(d) is not type(data)]
    report = check_model(model, data, theta, foreign=foreign, **case.check_kwargs)
    assert isinstance(report, ModelReport)
    assert [c.id for c in report.checks] == list(CHECKS)
    assert "theta" in report.points and len(report.gradient_checks) >= 3


# ------------------------------------------------------------------------------- a tiny model


@dataclass(frozen=True)
class LogisticData:
    X: np.ndarray  # (n, d)
    y: np.ndarray  # (n,) labels ±1


def make_data(n: int = 8, d: int = 3, rng: int = 0) -> LogisticData:
    gen = np.random.default_rng(rng)
    return LogisticData(gen.standard_normal((n, d)), gen.choice([-1.0, 1.0], n))


class Logistic(gradflow.Model):
    """Logistic regression ℓ_n = log(1 + exp(−y_n(x_nᵀw + b))): blocks ``w`` (d,), ``b`` ()."""

    data_type = LogisticData

    def __init__(self, d: int = 3):
        self.d = d

    @property
    def layout(self):
        return gradflow.Layout({"w": (self.d,), "b": ()})

    def init(self, rng=None, preset="normal"):
        return 0.1 * np.random.default_rng(rng).standard_normal(self.layout.size)

    def check_data(self, data):
        self.check_data_type(data)
        if data.X.shape[1:] != (self.d,) or data.y.shape != data.X.shape[:1]:
            raise gradflow.ArgumentError(f"data.X must be (n, {self.d}) and data.y (n,)")

    def margins(self, params, data):
        return data.y * (data.X @ params["w"] + params["b"])

    def sample_losses(self, params, data):
        return logistic_loss(self.margins(params, data))

    def grad(self, params, data):
        r = -data.y * sigmoid(-self.margins(params, data)) / len(data.y)
        return {"w": data.X.T @ r, "b": np.sum(r)}

    def observables(self, data):
        return {"loss": lambda th: float(self.loss(self.layout.unpack(th), data)),
                "w": lambda th: self.layout.unpack(th)["w"].copy()}


def _failure(model, data=None, **kwargs) -> str:
    """check_model's report on a model expected to fail."""
    with pytest.raises(AssertionError) as info:
        check_model(model, make_data() if data is None else data, **kwargs)
    return str(info.value)


def test_the_tiny_model_passes_and_the_report_lists_every_check():
    report = check_model(Logistic(), make_data())
    assert report.ok and all(c.passed for c in report.checks)
    assert list(report.points) == ["theta", "random(seed=0)", "random(seed=1)",
                                   "10*random(seed=0)", "100*random(seed=0)"]
    text = str(report)
    assert "all 14 contract checks passed" in text
    for check_id in CHECKS:
        assert check_id in text


# ------------------------------------------------------------------------------- broken models


class WrongBias(Logistic):
    def grad(self, params, data):
        out = super().grad(params, data)
        return {**out, "b": 3.0 * out["b"]}  # the bias gradient off by a factor 3


def test_a_wrong_factor_on_one_block_is_a_mismatch_naming_the_block():
    text = _failure(WrongBias())
    assert "FAILED  [rule 6] 6.gradient" in text
    assert "b: mismatch" in text
    assert "w: mismatch" not in text  # the other block is fine
    assert "the closed form disagrees with both references" in text


class MutatingGrad(Logistic):
    def grad(self, params, data):
        out = super().grad(params, data)
        params["w"] *= 0.5  # writes into θ through the view
        return out


def test_a_grad_that_writes_into_params_is_reported():
    text = _failure(MutatingGrad())
    assert "FAILED  [no mutation] no_mutation" in text
    assert "grad wrote into params" in text


class MutatingData(Logistic):
    def sample_losses(self, params, data):
        data.X[0, 0] += 1.0  # a frozen dataclass does not freeze its arrays
        return super().sample_losses(params, data)


def test_a_loss_that_modifies_the_data_in_place_is_reported():
    text = _failure(MutatingData())
    assert "FAILED  [no mutation]" in text
    assert "sample_losses modified data.X in place" in text


class AcceptsAnything(Logistic):
    def check_data(self, data):
        pass


def test_a_check_data_accepting_anything_is_reported():
    text = _failure(AcceptsAnything())
    assert "FAILED  [rule 9] 9.check_data" in text
    assert "check_data accepted object()" in text
    assert "check_data accepted None" in text
    assert "check_data accepted a ForeignLogisticData" in text


class DuckTyped(Logistic):
    def check_data(self, data):  # fields only: an AttributeError for object(), duck copies pass
        if data.X.shape[1] != self.d:
            raise gradflow.ArgumentError("data.X has the wrong width")


def test_a_check_data_that_raises_attribute_error_or_skips_the_type_is_reported():
    text = _failure(DuckTyped())
    assert "check_data(object()) raised AttributeError" in text
    assert "not ArgumentError" in text
    assert "check_data accepted a ForeignLogisticData" in text


def test_foreign_data_given_by_the_caller_must_be_refused():
    @dataclass(frozen=True)
    class Other:
        X: np.ndarray
        y: np.ndarray

    data = make_data()
    check_model(Logistic(), data, foreign=[Other(data.X, data.y)])
    text = _failure(DuckTyped(), foreign=[Other(data.X, data.y)])
    assert "check_data accepted a Other" in text


class InconsistentScaled(Logistic):
    def scaled_grad(self, params, data):
        return self.grad(params, data), {"w": 0.0, "b": 1.0}  # e¹·grad["b"] ≠ grad["b"]


def test_a_scaled_grad_inconsistent_with_grad_is_reported():
    text = _failure(InconsistentScaled())
    assert "FAILED  [rule 7] 7.scaled_grad" in text
    assert "block 'b'" in text and "block 'w'" not in text
    assert "= 6.321e-01 > 1e-08" in text  # (e − 1)/e, measured


class BadLogScales(Logistic):
    def scaled_grad(self, params, data):
        return self.grad(params, data), {"w": -np.inf, "b": np.nan}


def test_minus_inf_log_scale_on_a_nonzero_block_and_nan_are_reported():
    text = _failure(BadLogScales())
    assert "log_scales['w'] = −inf but grad['w'] has 3 non-zero entries" in text
    assert "log_scales['b'] = nan" in text


def test_overriding_loss_is_refused_at_class_creation():
    with pytest.raises(TypeError, match=r"overrides Model\.loss, which is final"):
        class Reweighted(Logistic):
            def loss(self, params, data):
                return 2.0 * super().loss(params, data)


class BadWeights(Logistic):
    def sample_weights(self, data):
        return np.full((len(data.y), 1), 1.0 / len(data.y))  # (n, 1): broadcasts to (n, n)


def test_sample_weights_of_the_wrong_shape_are_reported():
    text = _failure(BadWeights())
    assert "FAILED  [rule 5] 5.loss" in text
    assert "sample_weights has shape (8, 1)" in text


class RealPart(Logistic):
    def sample_losses(self, params, data):
        return np.real(super().sample_losses(params, data))  # drops the complex step


def test_a_loss_that_drops_the_imaginary_part_fails_rule_5_and_the_gradient_is_unresolved():
    text = _failure(RealPart())
    assert "FAILED  [rule 5] 5.complex" in text
    assert "the imaginary part (the complex step) is lost" in text
    assert "w: unresolved" in text and "mismatch" not in text
    # allowing "unresolved" accepts the gradient check, not the complex-step rule
    text = _failure(RealPart(), allow_unresolved=True)
    assert "FAILED  [rule 5] 5.complex" in text
    assert "FAILED  [rule 6] 6.gradient" not in text


class CastsToReal(Logistic):
    def sample_losses(self, params, data):
        return np.asarray(super().sample_losses(params, data), dtype=float)  # ComplexWarning


def test_a_cast_of_complex_losses_to_real_is_reported_with_the_warning():
    text = _failure(CastsToReal())
    assert "FAILED  [rule 5] 5.complex" in text
    assert "the model cast a complex value to real (ComplexWarning" in text


class WrongBlocks(Logistic):
    def grad(self, params, data):
        out = super().grad(params, data)
        return {"w": out["w"][:2], "bias": out["b"]}


def test_gradient_blocks_must_match_the_layout():
    text = _failure(WrongBlocks())
    assert "FAILED  [rule 6] 6.grad_blocks" in text
    assert "grad has blocks ['bias', 'w'], the layout ['b', 'w']" in text
    assert "grad['w'] has shape (2,), the layout (3,)" in text


class BadInit(Logistic):
    def init(self, rng=None, preset="normal"):
        return np.random.default_rng().standard_normal(self.layout.size + 1)  # unseeded, wrong


def test_init_must_have_the_layout_size_and_be_reproducible():
    model = BadInit()
    text = _failure(model)
    assert "FAILED  [rule 4] 4.init" in text
    assert "init(0) has shape (5,), expected (4,)" in text


class Unseeded(Logistic):
    def init(self, rng=None, preset="normal"):
        return np.random.default_rng().standard_normal(self.layout.size)


def test_an_init_that_ignores_its_seed_is_reported():
    assert "init(0) is not reproducible" in _failure(Unseeded())


class NoDataType(Logistic):
    data_type = object

    def check_data(self, data):
        if not isinstance(data, LogisticData):
            raise gradflow.ArgumentError("data must be a LogisticData")


def test_an_undeclared_data_type_fails_rule_1_unless_it_is_a_known_failure():
    text = _failure(NoDataType())
    assert "FAILED  [rule 1] 1.data_type" in text
    assert "NoDataType.data_type is not declared" in text
    report = check_model(NoDataType(), make_data(),
                         known_failures={"1.data_type": "not declared yet"})
    assert report.check("1.data_type").known == "not declared yet"
    assert "KNOWN FAILURE" in str(report)


def test_a_known_failure_that_passes_raises_so_the_list_is_emptied():
    text = _failure(Logistic(), known_failures={"1.data_type": "not declared yet"})
    assert "listed in known_failures ('not declared yet') but passed" in text
    with pytest.raises(gradflow.ArgumentError, match="unknown check ids"):
        check_model(Logistic(), make_data(), known_failures=["6.gradients"])


class BadObservables(Logistic):
    def observables(self, data):
        return {"boom": lambda th: 1 / 0, "text": lambda th: "high",
                "shape": lambda th: np.zeros(1 + int(np.linalg.norm(th) > 0.5)),
                "cos": lambda th: float("nan")}


def test_observables_that_raise_or_return_non_numbers_are_reported_nan_is_noted():
    text = _failure(BadObservables())
    assert "FAILED  [rule 8] 8.observables" in text
    assert "observable 'boom' at theta raised ZeroDivisionError" in text
    assert "observable 'text' at theta returned dtype <U4" in text
    assert "observable 'shape' has shape (2,) at random(seed=0) but (1,)" in text
    assert "note: non-finite observables (allowed): cos = [nan]" in text
    with pytest.raises(AssertionError) as info:
        check_model(BadObservables(), make_data())
    assert not any("'cos'" in line for line in info.value.report.check("8.observables").details)


class CachedInHash(Logistic):
    def grad(self, params, data):
        self.calls = getattr(self, "calls", 0) + 1  # a hand-kept counter, hashed by default
        return super().grad(params, data)


def test_an_attribute_filled_during_evaluation_changes_the_hash_and_is_reported():
    text = _failure(CachedInHash())
    assert "FAILED  [rule 10] 10.content_hash" in text
    assert "content_hash(data) changed after evaluating" in text
    CachedInHash.hash_exclude = ("calls",)
    try:
        check_model(CachedInHash(), make_data())
    finally:
        del CachedInHash.hash_exclude


class Overflowing(Logistic):
    def sample_losses(self, params, data):
        return np.log(1.0 + np.exp(-self.margins(params, data)))  # overflows for margins < −709


def test_a_point_where_the_loss_is_not_finite_is_skipped_and_listed():
    report = check_model(Overflowing(), make_data(), scales=(10.0, 1e4))
    assert list(report.skipped) == ["10000*random(seed=0)"]
    assert "per-sample losses are not finite" in report.skipped["10000*random(seed=0)"]
    assert "10000*random(seed=0)" not in report.points
    assert "skipped 10000*random(seed=0)" in str(report)


def test_a_non_finite_loss_at_theta_fails():
    text = _failure(Overflowing(), theta=np.full(4, 1000.0))
    assert "FAILED  [rule 5] 5.sample_losses" in text
    assert "at theta:" in text and "are not finite" in text


def test_every_failure_is_listed_with_its_rule():
    class Everything(WrongBias, MutatingGrad, AcceptsAnything, InconsistentScaled):
        pass

    with pytest.raises(AssertionError) as info:
        check_model(Everything(), make_data())
    report = info.value.report
    assert {c.id for c in report.failures} == {"6.gradient", "7.scaled_grad", "9.check_data",
                                              "no_mutation"}
    text = str(info.value)
    assert text.index("FAILED") < text.index("ok  [rule 1]")  # failures first
    assert "4 of 14 contract checks failed" in text


def test_a_model_without_data_passes_with_none():
    class Constant(gradflow.Model):
        data_type = type(None)

        @property
        def layout(self):
            return gradflow.Layout({"x": (2,)})

        def init(self, rng=None, preset="zero"):
            return np.zeros(2)

        def check_data(self, data):
            self.check_data_type(data)

        def sample_losses(self, params, data):
            x = params["x"]
            return np.array([0.5 * (x @ x) + np.sum(x)])

        def grad(self, params, data):
            return {"x": params["x"] + 1.0}

        def observables(self, data):
            return {}

    report = check_model(Constant(), None, foreign=[make_data()])
    assert report.check("9.check_data").details == (
        "own data accepted; refused with ArgumentError: object(); a LogisticData",)

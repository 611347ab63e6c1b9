"""Checkpoint folders resume only their own run: the objective's identity, the validation of
every file against the run resuming from it, decade segments, and never a pickle."""

import json
import subprocess
import sys
from dataclasses import replace
from functools import cached_property

import numpy as np
import pytest
from conftest import HalfSquaredNorm, LeastSquares
from numpy.testing import assert_array_equal

import gradflow
from gradflow import ArgumentError, CheckpointError, Event, Layout, Trajectory, simulate
from gradflow.checkpoint import content_hash, load_npz
from gradflow.papers import cooccurrence as cooc
from gradflow.papers import linear_icl as li
from gradflow.papers import ntp
from gradflow.papers import regular as rg
from gradflow.papers import representation_icl as rp
from gradflow.papers import softmax_icl as sm

# --------------------------------------------------------------------------- identity (B1)


def _cooccurrence(rng=0, data_rng=0):
    model = cooc.CooccurrenceTransformer(d=16, m=8, m1=16, rng=rng)
    return model, cooc.make_dataset(d=16, L=5, counts=(6, 2, 2, 2), rng=data_rng)


MODELS = {
    # name: () -> (model, data); each built twice must hash equal
    "cooccurrence": _cooccurrence,
    "cooccurrence_reduced": lambda: (cooc.CooccurrenceTransformer(16, 8, 16, rng=0, reduced=True),
                                     _cooccurrence()[1]),
    "ntp": lambda: (ntp.NTPTransformer(16), ntp.random_instance(rng=3, K=16)),
    "even_pairs": lambda: (rg.RegularTransformer(rg.even_pairs(4).d), rg.even_pairs(4)),
    "parity_cot": lambda: (rg.RegularTransformer(rg.parity_cot(3).d, lam=1.5), rg.parity_cot(3)),
    "linear_icl": lambda: (li.LinearICLReduced(3), li.make_task(3, 10, "random", rng=3)),
    "linear_icl_full": lambda: (li.LinearICLFull(2, 4),
                                li.sample_prompts(li.make_task(2, 4, rng=1), 8, rng=2)),
    "feature_icl": lambda: (sm.FeatureICL(3), sm.make_task(3, 6, [0.5, 0.3, 0.2])),
    "balanced_icl": lambda: (sm.BalancedICL(3, 12), None),
    "representation_icl": lambda: (rp.RepresentationTransformer(4, 6, 2),
                                   rp.make_task(4, 6, 3, 3, rng=1)),
}


def _touch_caches(model, data):
    """Evaluate everything a run evaluates, filling every cached_property of model and data."""
    objective = model.objective(data)
    theta = 0.1 * np.random.default_rng(5).standard_normal(model.layout.size)
    objective.value(theta)
    objective.gradient(theta)
    for fn in model.observables(data).values():
        fn(theta)
    return objective


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_hashes_stably_and_caches_do_not_count(name):
    model, data = MODELS[name]()
    before = model.objective(data).checkpoint_key
    after = _touch_caches(model, data).checkpoint_key
    assert before == after  # cached_property values filled in meanwhile are not hashed
    rebuilt = MODELS[name]()
    assert rebuilt[0].objective(rebuilt[1]).checkpoint_key == before
    assert len(before) == 64


def test_model_hash_is_the_same_in_another_process():
    """No id(), no Python hash randomisation, no repr with addresses: another interpreter with
    another PYTHONHASHSEED computes the same keys."""
    here = {name: (lambda m, d: m.objective(d).checkpoint_key)(*build())
            for name, build in MODELS.items()}
    code = ("import json, sys; sys.path.insert(0, 'tests'); import test_checkpoint as t; "
            "print(json.dumps({n: (lambda m, d: m.objective(d).checkpoint_key)(*b()) "
            "for n, b in t.MODELS.items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345",
                                          "PYTHONPATH": ":".join(sys.path)})
    assert json.loads(out.stdout) == here


def test_fixed_quantities_and_data_change_the_hash():
    model, data = _cooccurrence()
    key = model.objective(data).checkpoint_key
    other_signs, _ = _cooccurrence(rng=7)  # other output signs a
    _, other_data = _cooccurrence(data_rng=5)
    assert other_signs.objective(data).checkpoint_key != key
    assert model.objective(other_data).checkpoint_key != key
    X = data.X.copy()
    X[0, 0, 0] += 1e-300
    assert model.objective(replace(data, X=X)).checkpoint_key != key  # one bit of one entry
    assert model.objective(replace(data, X=np.asfortranarray(data.X))).checkpoint_key == key
    dense = cooc.CooccurrenceTransformer(d=16, m=8, m1=16, rng=0, path="dense")
    assert dense.objective(data).checkpoint_key != key  # another code path: other rounding


def test_content_hash_by_value_and_type():
    assert content_hash({"a": 1, "b": [1.0, "x"]}) == content_hash({"b": (1.0, "x"), "a": 1})
    distinct = [1, 1.0, True, "1", np.int64(1), np.float64(1.0), np.array([1]), np.array([1.0]),
                np.array([[1.0]]), np.array([1.0], np.float32), None, 0.0, -0.0, float("nan"),
                [1], {1: 1}]
    assert len({content_hash(v) for v in distinct}) == len(distinct)
    assert content_hash(np.int64(1)) == content_hash(np.array(1))  # a NumPy scalar is 0-d


class _Opaque:
    pass


class _Cached(gradflow.Model):
    hash_exclude = ("scratch",)

    def __init__(self, extra=None):
        self.d = 2
        self.scratch = {}  # a hand-kept cache
        if extra is not None:
            self.extra = extra

    @cached_property
    def layout(self):
        return Layout({"w": (self.d,)})

    @cached_property
    def derived(self):
        return np.ones(self.d)

    def init(self, rng=None, preset="default"):
        return np.zeros(2)

    def sample_losses(self, params, data):
        return np.array([params["w"] @ params["w"]])

    def grad(self, params, data):
        return {"w": 2 * params["w"]}

    def observables(self, data):
        return {}

    def check_data(self, data):
        pass


def test_caches_are_left_out_and_unhashable_attributes_are_named():
    model = _Cached()
    key = model.content_hash(None)
    model.scratch["x"] = _Opaque()
    _ = model.derived, model.layout
    assert model.content_hash(None) == key
    with pytest.raises(ArgumentError, match=r"_Cached\.extra is a .*_Opaque"):
        _Cached(extra=_Opaque()).content_hash(None)
    with pytest.raises(ArgumentError, match=r"_Cached\.extra\[0\] is a .*function"):
        _Cached(extra=[lambda x: x]).content_hash(None)
    with pytest.raises(ArgumentError, match=r"data\['X'\] is an array of Python objects"):
        model.content_hash({"X": np.array([None, 1], dtype=object)})
    with pytest.raises(ArgumentError, match=r"_Cached\.extra is a .*_Opaque"):
        simulate(_Cached(extra=_Opaque()).objective(None), np.zeros(2), 1.0,
                 checkpoint="never-created")


def test_other_data_or_signs_in_the_same_folder_are_refused(tmp_path):
    """B1: another dataset or other output signs with the same θ0 used to read back the first
    run's trajectory."""
    model, data = _cooccurrence()
    theta0 = model.init(rng=1, preset="theory", s1_mult=0.1)
    folder = tmp_path / "ck"
    run = dict(method="RK45", checkpoint=folder)
    first = simulate(model.objective(data), theta0, 10.0, **run)
    for objective in (model.objective(_cooccurrence(data_rng=5)[1]),
                      _cooccurrence(rng=7)[0].objective(data)):
        with pytest.raises(CheckpointError, match=r"different run: the objective .* differs"):
            simulate(objective, theta0, 10.0, **run)
    with pytest.raises(CheckpointError, match=r"theta0 differs"):
        simulate(model.objective(data), 2 * theta0, 10.0, **run)
    with pytest.raises(CheckpointError, match=r"settings .* differs"):
        simulate(model.objective(data), theta0, 10.0, rtol=1e-7, **run)
    again = simulate(model.objective(data), theta0, 10.0, **run)
    assert_array_equal(again.theta, first.theta)
    assert again.stats["resumed"] == 1


def test_objective_without_key_needs_checkpoint_key(tmp_path):
    with pytest.raises(ArgumentError, match=r"HalfSquaredNorm has no checkpoint_key.*"
                                            r"checkpoint_key='\.\.\.'"):
        simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
    traj = simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint=tmp_path / "ck",
                    checkpoint_key="half-squared-norm at 0")
    with pytest.raises(CheckpointError, match=r"objective"):
        simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint=tmp_path / "ck",
                 checkpoint_key="another key")
    again = simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint=tmp_path / "ck",
                     checkpoint_key="half-squared-norm at 0")
    assert_array_equal(again.theta, traj.theta)
    # a hand-written objective's own key: another instance's folder is refused
    simulate(LeastSquares(rng=0), np.ones(5), 1.0, checkpoint=tmp_path / "ls")
    with pytest.raises(CheckpointError, match=r"objective"):
        simulate(LeastSquares(rng=1), np.ones(5), 1.0, checkpoint=tmp_path / "ls")
    for bad in ("", 3, b"x"):
        with pytest.raises(ArgumentError, match=r"checkpoint_key must be a non-empty string"):
            simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint=tmp_path / "x",
                     checkpoint_key=bad)
    with pytest.raises(ArgumentError, match=r"without checkpoint="):
        simulate(HalfSquaredNorm(), np.ones(5), 1.0, checkpoint_key="k")


def test_budgets_are_not_part_of_the_fingerprint(tmp_path):
    """A rerun with a larger budget resumes (the budget stop saved the last accepted state)."""
    kwargs = dict(method="RK45", record_at=gradflow.log_grid(30.0), checkpoint=tmp_path / "ck")
    with pytest.raises(gradflow.BudgetExceededError):
        simulate(LeastSquares(), np.ones(5), 30.0, max_nfev=200, **kwargs)
    done = simulate(LeastSquares(), np.ones(5), 30.0, max_nfev=None, max_wall_time=None, **kwargs)
    assert done.stats["resumed"] == 1 and done.stats["status"] == "finished"


# --------------------------------------------------------------------------- resumes


class Interrupt(Exception):
    pass


def _observables(stop_at=-1):
    """An observable that raises at its ``stop_at``-th call: a kill at a record time."""
    calls = {"n": 0}

    def sq(theta):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise Interrupt
        return float(theta @ theta)

    return {"sq": sq, "w": lambda th: th[:2]}


SETUPS = {
    "plain": dict(method="RK45", rtol=1e-9, atol=1e-12),
    "log clock, rates, events": dict(
        method="DOP853", clock="log", rates={"w": [(0.0, 1.0), (3.0, 0.5), (50.0, 2.0)]},
        events=[Event("e", lambda th: th[0] - 0.0), Event("f", lambda th: th @ th - 1.0)]),
    "terminal event": dict(method="RK23", events=[Event("stop", lambda th: th @ th - 1.0,
                                                        terminal=True, direction=1)]),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_interrupted_anywhere_resumes_bitwise(tmp_path, setup):
    """Interrupted at every 4th record, then resumed (and interrupted again 5 records later):
    every checkpoint the loop writes passes validation, and the result is bitwise the
    uninterrupted run's."""
    kwargs = dict(record_at=gradflow.log_grid(100.0, per_decade=5), **SETUPS[setup])
    theta0 = np.random.default_rng(3).standard_normal(5)
    whole = simulate(LeastSquares(), theta0, 100.0, observables=_observables(), **kwargs)
    for k in range(2, whole.t.size, 4):
        folder = tmp_path / f"ck{k}"
        with pytest.raises(gradflow.ObservableError):
            simulate(LeastSquares(), theta0, 100.0, observables=_observables(k),
                     checkpoint=folder, **kwargs)
        try:  # interrupted again while resuming, unless fewer than 5 records were left
            simulate(LeastSquares(), theta0, 100.0, observables=_observables(5),
                     checkpoint=folder, **kwargs)
        except gradflow.ObservableError:
            pass
        resumed = simulate(LeastSquares(), theta0, 100.0, observables=_observables(),
                           checkpoint=folder, **kwargs)
        assert_array_equal(resumed.t, whole.t)
        assert_array_equal(resumed.theta, whole.theta)
        assert_array_equal(resumed.observables["w"], whole.observables["w"])
        assert {k: v.tolist() for k, v in resumed.events.items()} == {
            k: v.tolist() for k, v in whole.events.items()}
        assert resumed.stats["status"] == whole.stats["status"]
    if setup == "terminal event":
        assert whole.stats["status"] == "terminated by event 'stop'" and whole.t[-1] < 10


def test_state_saved_at_the_end_of_a_rate_piece_resumes_with_the_next(tmp_path):
    """The loop saves after the last step of a piece (piece unchanged, τ at its end) and again
    once the piece count moved on; a kill between the two leaves the first form."""
    kwargs = dict(method="RK45", rates={"w": [(0.0, 1.0), (5.0, 0.5)]},
                  record_at=np.linspace(0, 10, 11))
    whole = simulate(LeastSquares(), np.ones(5), 10.0, observables=_observables(), **kwargs)
    folder = tmp_path / "ck"
    with pytest.raises(gradflow.ObservableError):  # the first record of piece 1 (t = 6)
        simulate(LeastSquares(), np.ones(5), 10.0, observables=_observables(7),
                 checkpoint=folder, **kwargs)
    meta = _state_meta(folder)
    assert (meta["piece"], meta["tau"], meta["h"]) == (1, 5.0, None)
    _edit_state(folder, piece=0, h=0.25)
    resumed = simulate(LeastSquares(), np.ones(5), 10.0, observables=_observables(),
                       checkpoint=folder, **kwargs)
    assert_array_equal(resumed.theta, whole.theta)


# --------------------------------------------------------------------------- validation


REMOVE = object()


def _state_meta(folder):
    return json.loads(str(load_npz(folder / "state.npz", "state")["meta"]))


def _edit_state(folder, arrays=None, **changes):
    """Rewrite state.npz with fields changed (REMOVE deletes one) and arrays replaced."""
    saved = load_npz(folder / "state.npz", "state")
    meta = json.loads(str(saved["meta"]))
    for key, value in changes.items():
        if value is REMOVE:
            del meta[key]
        else:
            meta[key] = value
    saved.update(arrays or {}, meta=np.array(json.dumps(meta)))
    np.savez(folder / "state.npz", **saved)


RUN = dict(method="RK45", record_at=gradflow.log_grid(1e3),
           events=[Event("e", lambda th: th[0] - 0.5)])  # crosses at t = 0.184


@pytest.fixture
def mid_run(tmp_path):
    """A checkpoint folder of a run interrupted at record 45 of 62 (segments 0-3 saved, the
    state at t = 8.47), and the call that resumes it."""
    folder = tmp_path / "ck"
    with pytest.raises(gradflow.ObservableError):
        simulate(LeastSquares(), np.ones(5), 1e3, observables=_observables(45),
                 checkpoint=folder, **RUN)
    assert _state_meta(folder)["n_segments"] == 4

    def resume():
        return simulate(LeastSquares(), np.ones(5), 1e3, observables=_observables(),
                        checkpoint=folder, **RUN)

    return folder, resume


STATE_EDITS = [
    # the review's table (B7), then the other fields
    ({"tau": REMOVE}, "'tau' is missing"),
    ({"piece": "x"}, "'piece' = 'x' must be an integer"),
    ({"h": -5}, "'h' = -5 must be None or a positive finite"),
    ({"h": "nan"}, "'h' = 'nan' must be None"),
    ({"tau": 1e12}, "'tau' = 1000000000000.0 must be a finite number in \\[0, 1000\\]"),
    ({"n_segments": -1}, "'n_segments' = -1"),
    ({"status": "finished"}, "'status' = 'finished', but the state is at record"),
    ({"status": "finished", "stop_reason": "finished"}, "'status' = 'finished', but"),
    ({"next": 1000000}, "'next' = 1000000 must be an integer in \\[1, 62\\]"),
    ({"next": 20}, "'next' = 20 leaves the record"),
    ({"next": 61}, "'next' = 61 counts the record"),
    ({"piece": 2}, "'piece' = 2 must be an integer in \\[0, 1\\]"),
    ({"h": None, "tau": -1.0}, "'tau' = -1"),
    ({"h": True}, "'h' = True"),
    ({"status": "failed: budget"}, "'status' = 'failed: budget' is not one of"),
    ({"status": "terminated by event 'e'", "stop_reason": "event"},
     "'status' = .terminated by event 'e'. is not one of"),  # 'e' is not terminal
    ({"stop_reason": "event"}, "'stop_reason' = 'event' contradicts"),
    ({"method": "Euler"}, "'method' = 'Euler'"),
    ({"switches": [{"t": 1.0, "from": "RK45", "to": "BDF", "why": "x"}]}, "'method' = 'RK45'"),
    ({"switches": "none"}, "'switches'"),
    ({"counters": {"nfev": 3}}, "'counters'"),
    ({"counters": {"nfev": -3, "njev": 0, "nlu": 0, "steps": 0, "wall_time": 0.1}},
     "'counters\\['nfev'\\]' = -3"),
    ({"crossings": {}}, "'crossings' must list the events \\['e'\\]"),
    ({"crossings": {"e": [50.0]}}, "'crossings\\['e'\\]' = \\[50.0\\] must be increasing"),
    ({"crossings": {"e": [0.2, 0.1]}}, "'crossings\\['e'\\]' = \\[0.2, 0.1\\] must be"),
    ({"resumed": -1}, "'resumed' = -1"),
    ({"segments": [[1, 0.0, 0.0]]}, "'segments' must list"),
    ({"format": "gradflow-checkpoint-1"}, "'format'"),
    ({"fingerprint": "0" * 64}, "'fingerprint' belongs to another run"),
    ({"extra": 1}, "'extra' is not a field"),
]


@pytest.mark.parametrize(("changes", "match"), STATE_EDITS,
                         ids=[",".join(c) + "=" + str(next(iter(c.values())))[:12]
                              for c, _ in STATE_EDITS])
def test_edited_state_fields_are_named(mid_run, changes, match):
    folder, resume = mid_run
    _edit_state(folder, **changes)
    with pytest.raises(CheckpointError, match=rf"state\.npz: field {match}"):
        resume()


@pytest.mark.parametrize(("arrays", "match"), [
    ({"theta": np.ones(4)}, "'theta' has shape \\(4,\\)"),
    ({"theta": np.full(5, np.nan)}, "'theta' is not finite"),
    ({"theta": np.ones(5, dtype=np.float32)}, "'theta' has shape .* dtype float32"),
    ({"event_values": np.ones(2)}, "'event_values' must be 1 real number"),
    ({"event_values": np.array([np.nan])}, "'event_values'"),
    ({"extra": np.ones(1)}, "'arrays' must be meta, theta and event_values"),
])
def test_edited_state_arrays_are_named(mid_run, arrays, match):
    folder, resume = mid_run
    _edit_state(folder, arrays=arrays)
    with pytest.raises(CheckpointError, match=rf"state\.npz: field {match}"):
        resume()


def test_valid_edits_leave_the_resume_exact(mid_run):
    """The validation is not a checksum: the mid-run folder resumes, bitwise."""
    _, resume = mid_run
    whole = simulate(LeastSquares(), np.ones(5), 1e3, observables=_observables(), **RUN)
    assert_array_equal(resume().theta, whole.theta)


def _swap(a, b):
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_swapped_or_foreign_segments_are_refused(mid_run, tmp_path):
    """B6: two swapped segment files used to resume into a non-monotone trajectory."""
    folder, resume = mid_run
    seg = [folder / f"segment_{i:05d}.npz" for i in range(4)]
    _swap(seg[1], seg[2])
    with pytest.raises(CheckpointError, match=r"segment_00001\.npz: field 'index' = 2, but"):
        resume()
    _swap(seg[1], seg[2])
    # swapped with their records rewritten to agree: the times no longer increase
    for path, index in ((seg[1], 2), (seg[2], 1)):
        arrays = load_npz(path, "segment")
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "index": index}))
        np.savez(path, **arrays)
    _swap(seg[1], seg[2])
    summaries = _state_meta(folder)["segments"]
    summaries[1], summaries[2] = summaries[2], summaries[1]
    _edit_state(folder, segments=summaries)
    with pytest.raises(CheckpointError, match=r"state\.npz: field 'segments' hold times that "
                                              r"do not increase"):
        resume()


def test_segments_of_another_run_missing_or_damaged_are_refused(mid_run, tmp_path):
    folder, resume = mid_run
    other = tmp_path / "other"
    with pytest.raises(gradflow.ObservableError):
        simulate(LeastSquares(), 2 * np.ones(5), 1e3, observables=_observables(45),
                 checkpoint=other, **RUN)
    segment = folder / "segment_00003.npz"
    segment.write_bytes((other / "segment_00003.npz").read_bytes())
    with pytest.raises(CheckpointError, match=r"segment_00003.npz: field 'fingerprint'"):
        resume()
    segment.unlink()
    with pytest.raises(CheckpointError, match=r"segment_00003.npz is missing"):
        resume()
    segment.write_bytes((other / "segment_00003.npz").read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"segment_00003.npz is damaged"):
        resume()
    (folder / "state.npz").write_bytes((other / "state.npz").read_bytes())
    with pytest.raises(CheckpointError, match=r"state.npz: field 'fingerprint'"):
        resume()


@pytest.mark.parametrize("name", ["state.npz", "segment_00002.npz"])
def test_segment_contents_are_checked(mid_run, name):
    folder, resume = mid_run
    path = folder / name
    arrays = load_npz(path, "file")
    if name == "state.npz":
        del arrays["meta"]
        match = "has no 'meta' record"
    else:
        arrays["obs/sq"] = arrays["obs/sq"][:-1]
        match = r"segment_00002\.npz: field 'obs/sq' has shape"
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=match):
        resume()


def test_garbage_files_are_not_gradflow_npz_files(mid_run, tmp_path):
    """W1: NumPy's message for a non-zip file suggests allow_pickle=True; gradflow's does not."""
    folder, resume = mid_run
    garbage = np.random.default_rng(0).bytes(5000)
    (folder / "state.npz").write_bytes(garbage)
    with pytest.raises(CheckpointError, match=r"is not a gradflow .npz file") as info:
        resume()
    assert "pickle" not in str(info.value)
    (tmp_path / "t.npz").write_bytes(garbage)
    with pytest.raises(CheckpointError, match=r"is not a gradflow .npz file") as info:
        Trajectory.load(tmp_path / "t.npz")
    assert "pickle" not in str(info.value)
    np.savez(tmp_path / "objects.npz", x=np.array([None, {}], dtype=object))
    with pytest.raises(CheckpointError, match=r"holds an array of Python objects"):
        Trajectory.load(tmp_path / "objects.npz")
    with pytest.raises(CheckpointError, match=r"cannot be read"):
        Trajectory.load(tmp_path)


def test_object_arrays_are_never_written(tmp_path):
    """B10: np.savez pickles object arrays by default; gradflow refuses them, naming them."""
    traj = simulate(LeastSquares(), np.ones(5), 1.0)
    traj.observables["x"] = np.array([None] * traj.t.size, dtype=object)
    with pytest.raises(ArgumentError, match=r"'obs/x'.*Python objects"):
        traj.save(tmp_path / "t.npz")
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_folders_of_an_older_gradflow_or_foreign_folders_are_refused(tmp_path):
    """Format 1 (run.json holding the fingerprint, segments without an index) cannot be
    validated, so it is refused rather than read."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"fingerprint": "ab" * 32}))
    np.savez(old / "state.npz", info=np.array("{}"), theta=np.ones(5))
    with pytest.raises(CheckpointError, match=r"written by an older gradflow.*start a new"):
        simulate(LeastSquares(), np.ones(5), 1.0, checkpoint=old)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"not empty and holds no checkpoint.json"):
        simulate(LeastSquares(), np.ones(5), 1.0, checkpoint=foreign)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "checkpoint.json.123.tmp").write_text("{")  # killed mid-write
    simulate(LeastSquares(), np.ones(5), 1.0, checkpoint=tmp_path / "torn")
    (tmp_path / "torn" / "checkpoint.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"checkpoint.json is damaged"):
        simulate(LeastSquares(), np.ones(5), 1.0, checkpoint=tmp_path / "torn")


# --------------------------------------------------------------------------- segments (W2)


class Logistic:
    """L(w) = log(1 + e^{−w}): w(t) ~ log t, so adaptive steps grow ∝ t, as in the papers'
    late phases; RK45 at rtol 1e-10 takes ~15 steps a decade."""

    layout = Layout({"w": (1,)})
    checkpoint_key = "logistic"

    def value(self, theta):
        return np.log1p(np.exp(-theta[0]))

    def gradient(self, theta):
        return -1.0 / (1.0 + np.exp(theta))

    def sample_losses(self, theta):
        return np.array([self.value(theta)])


def test_one_segment_per_decade_of_the_record_grid(tmp_path):
    """W2: at 20 records a decade and ~12 steps a decade, steps straddle the decade
    boundaries; each boundary a step crosses closes a segment. (The old rule, a segment only
    when a step ends between a decade's last record and the next one's first, saved 3
    segments here, one spanning t = 100 ... 89125.)"""
    grid = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 121)])
    traj = simulate(Logistic(), np.zeros(1), 1e6, method="RK45", rtol=1e-7, atol=1e-12,
                    record_at=grid, checkpoint=tmp_path / "ck")
    assert 60 < traj.stats["steps"] < 100  # fewer steps than records: steps straddle
    times = [np.load(path)["t"] for path in sorted((tmp_path / "ck").glob("segment_*.npz"))]
    segments = [(t.size, t[0], t[-1]) for t in times]
    assert 6 <= len(segments) <= 7, segments  # decades 0-5 (t = 1e6 may close its own)
    for _, t0, t1 in segments[1:]:
        assert np.log10(t1 / t0) <= 1 + 1e-9, segments  # no segment spans more than a decade
    assert sum(n for n, _, _ in segments) == grid.size

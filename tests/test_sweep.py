"""Sweeps through executors, interrupted sweeps and runs, and config fuzzing."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from gradflow import ArgumentError, GradflowError, NonFiniteError, Trajectory, simulate
from gradflow import sweep as sweep_module
from gradflow.cli import main
from gradflow.folders import FolderOwnedError, locked, write_json_atomic
from gradflow.registry import REGISTRY
from gradflow.sweep import (
    ClusterError,
    SweepSpec,
    SweepWarning,
    connect_dask,
    dask_health,
    load_results,
    load_sweep,
    run_sweep,
)
from gradflow.sweep_plot import aggregate

SWEEP = {
    "experiment": "cooccurrence",
    "seed_key": "init_seed",
    "seeds": [0, 1],
    "fixed": {"t_end": 100.0, "d": 16, "m1": 8, "counts": [6, 2, 2, 2], "per_decade": 3},
    "grid": {"m": [4, 8, 16, 32]},
}


def summaries(records):
    """Summaries by task key, without wall-clock times (the only thing allowed to differ)."""
    return {r["key"]: {k: v for k, v in r["summary"].items() if not k.endswith("wall_time")}
            for r in records if r["status"] == "ok"}


def test_process_pool_and_dask_give_identical_summaries(tmp_path):
    """8 tasks on a local process pool and on a dask.distributed LocalCluster (in-process)."""
    from dask.distributed import Client, LocalCluster

    spec = load_sweep(SWEEP)
    assert len(spec.tasks) == 8
    local = run_sweep(spec, tmp_path / "local", workers=2)
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = run_sweep(spec, tmp_path / "dask", executor=client.get_executor())
    assert len(local) == len(remote) == 8
    assert summaries(local) == summaries(remote)
    # re-running skips every finished task
    again = run_sweep(spec, tmp_path / "local", workers=2)
    assert summaries(again) == summaries(local)
    for key in summaries(local):
        assert (tmp_path / "local" / "tasks" / key / "runs.log").read_text().count("\n") == 1
    data = aggregate(tmp_path / "local", "m", "phase1_end")
    assert data["x"] == [4, 8, 16, 32] and data["n"] == [2, 2, 2, 2]


def test_failed_task_is_recorded_and_the_sweep_goes_on(tmp_path):
    """N = 60 with K = 6 needs 8.2e6 count vectors: that task fails at run time with its
    error recorded, the other finishes; a re-run tries the failed one again."""
    sweep = {"experiment": "icl_imbalanced", "fixed": {"K": 6, "T": 5.0},
             "grid": {"N": [8, 60]}}
    records = run_sweep(load_sweep(sweep), tmp_path, workers=1)
    status = {r["config"]["N"]: r for r in records}
    assert status[8]["status"] == "ok"
    assert status[60]["status"] == "error" and "count vectors" in status[60]["error"]
    again = run_sweep(load_sweep(sweep), tmp_path, workers=1)
    assert len([r for r in again if r["status"] == "ok"]) == 1


def test_killed_sweep_resumes_without_rerunning_or_losing_tasks(tmp_path):
    """Kill the sweep process (and its workers) after 2 results, re-run: all 8 tasks have
    exactly one line, and every task finished before the kill ran exactly once."""
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        'experiment = "cooccurrence"\nseed_key = "init_seed"\nseeds = [0, 1]\n'
        "[fixed]\nt_end = 1e5\nd = 64\nper_decade = 5\n[grid]\nm = [32, 64, 128, 256]\n"
    )
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "gradflow.cli", "sweep", str(sweep_file), "--out", str(out),
         "--workers", "1", "--no-progress"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(load_results(out)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {r["key"] for r in load_results(out) if r["status"] == "ok"}
    assert 2 <= len(finished_before) < 8
    records = run_sweep(load_sweep(sweep_file), out, workers=2)
    lines = load_results(out)
    assert len(records) == len(lines) == 8
    assert len({r["key"] for r in lines}) == 8 and all(r["status"] == "ok" for r in lines)
    for key in finished_before:
        assert (out / "tasks" / key / "runs.log").read_text().count("\n") == 1


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """`gradflow run --checkpoint` killed after a few checkpointed segments, then `gradflow
    resume`: the resumed trajectory equals an uninterrupted run (bitwise, RK45)."""
    settings_ = ["m=512", "m1=1024", "rtol=1e-8", "atol=1e-11", "per_decade=5"]
    args = [sys.executable, "-m", "gradflow.cli", "run", "cooccurrence", "--no-progress"]
    for item in settings_:
        args += ["--set", item]
    killed = tmp_path / "killed"
    process = subprocess.Popen([*args, "--out", str(killed), "--checkpoint"],
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint" / "segment_00003.npz").exists() and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it was killed"
    # review B4: a refused run into the interrupted run's folder leaves its run.json alone
    saved = (killed / "run.json").read_bytes()
    assert main([*args[3:], "--out", str(killed), "--checkpoint", "--set", "t_end=1e3"]) == 2
    assert (killed / "run.json").read_bytes() == saved
    # the SIGKILLed run's lock file is still there, but its lock died with it
    subprocess.run([sys.executable, "-m", "gradflow.cli", "resume", str(killed),
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    whole = tmp_path / "whole"
    subprocess.run([*args, "--out", str(whole)], check=True, stdout=subprocess.DEVNULL)
    resumed, reference = (Trajectory.load(p / "trajectory.npz") for p in (killed, whole))
    assert resumed.stats["resumed"] == 1
    assert_array_equal(resumed.t, reference.t)
    for name in ("loss", "KQ", "u_norm_sq"):
        assert_array_equal(resumed.observables[name], reference.observables[name])


# ------------------------------------------------------------------------ config fuzzing

VALUES = st.one_of(st.integers(-5, 10**3), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=6), st.booleans(), st.lists(st.integers(-2, 50), max_size=5),
                   st.sampled_from(["1e3", "nan", "inf", "-1", "0", "true", "4,4,4,4", "theory",
                                    "RK45", "log", "fixture"]))


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_config_fuzzing_raises_argument_errors_naming_the_key(name, data):
    """Random mixes of valid and invalid keys, values and types either validate or raise
    ArgumentError naming the key; never another exception type, never a silent default."""
    experiment = REGISTRY[name]
    keys = [p.name for p in experiment.parameters]
    chosen = data.draw(st.lists(st.one_of(st.sampled_from(keys), st.text(min_size=1,
                                                                         max_size=8)),
                                max_size=4, unique=True))
    overrides = {k: data.draw(VALUES) for k in chosen}
    try:
        config = experiment.config(overrides)
    except ArgumentError as exc:
        named = [k for k in [*chosen, *keys] if repr(k) in str(exc)]
        assert named, f"{exc} names no key of {chosen}"
        return
    assert all(key in config for key in overrides)  # nothing accepted is silently dropped


def test_non_finite_gradient_at_start_raises_with_partial_trajectory(tmp_path):
    class NaNGradient:
        from gradflow import Layout

        layout = Layout({"x": (2,)})

        def value(self, theta):
            return float(theta @ theta)

        def gradient(self, theta):
            return np.full(2, np.nan)

        def sample_losses(self, theta):
            return np.array([self.value(theta)])

    with pytest.raises(NonFiniteError) as info:
        simulate(NaNGradient(), np.ones(2), 1.0, checkpoint=tmp_path / "ck",
                 checkpoint_key="nan-gradient")
    assert info.value.t == 0.0
    assert info.value.trajectory.t.tolist() == [0.0]
    assert (tmp_path / "ck" / "partial.npz").exists()


def test_resume_of_a_foreign_folder_is_refused(tmp_path):
    from gradflow.cli import main

    assert main(["resume", str(tmp_path)]) == 2
    (tmp_path / "run.json").write_text("{not json")
    assert main(["resume", str(tmp_path)]) == 2
    other = tmp_path / "sweep"
    other.mkdir()
    (other / "sweep.json").write_text(json.dumps({"experiment": "ntp", "keys": []}))
    with pytest.raises(GradflowError, match="sweep of 'ntp'"):
        run_sweep(load_sweep(SWEEP), other, workers=1)


def test_bad_sweep_files(tmp_path):
    with pytest.raises(ArgumentError, match="experiment"):
        load_sweep({"grid": {"m": [1]}})
    with pytest.raises(ArgumentError, match="seed_key"):
        load_sweep({"experiment": "ntp", "seeds": [1, 2]})
    with pytest.raises(ArgumentError, match="'mm'"):
        load_sweep({"experiment": "cooccurrence", "grid": {"mm": [1, 2]}})
    with pytest.raises(ArgumentError, match="non-empty list"):
        load_sweep({"experiment": "cooccurrence", "grid": {"m": 3}})
    bad = tmp_path / "bad.toml"
    bad.write_text("experiment = ")
    with pytest.raises(ArgumentError, match="TOML"):
        load_sweep(bad)
    with pytest.raises(ArgumentError, match="does not exist"):
        load_sweep(Path(tmp_path / "missing.toml"))


# ------------------------------------------------ reliability review: sweeps (B2–B3, B14–B25)

TINY = {"experiment": "cooccurrence", "grid": {"m": [4, 8]},
        "fixed": {"d": 16, "m1": 8, "counts": [6, 2, 2, 2], "per_decade": 2, "t_end": 0.01}}


def sweep_file(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text('experiment = "cooccurrence"\n' + text)
    return path


def test_sweep_folder_identity_damaged_files_and_force(tmp_path, capsys):
    """B3: another sweep into a sweep folder is refused, nothing touched; B23: damaged lines
    are skipped with a warning naming them, a damaged sweep.json is a clear error; B24: no
    numeric phase1_end (t_end = 0.01) is a clear message; --force starts the other sweep
    clean."""
    out = tmp_path / "s"
    spec = load_sweep(TINY)
    assert [r["status"] for r in run_sweep(spec, out, workers=1)] == ["ok", "ok"]
    with pytest.raises(ArgumentError, match="no finished task has a numeric 'phase1_end' "
                                            r"\(values: None\)"):
        aggregate(out, "m", "phase1_end")
    assert main(["sweep-plot", str(out), "--x", "m", "--y", "phase1_end"]) == 2
    assert "phase 1 did not end before t_end" in capsys.readouterr().err

    other = load_sweep({**TINY, "fixed": {**TINY["fixed"], "t_end": 0.02}})
    before = {p: (out / p).read_bytes() for p in ("sweep.json", "results.jsonl")}
    with pytest.raises(FolderOwnedError, match=r"holds another sweep of 'cooccurrence' \(2 "
                                               "tasks, 0 of them in this one's 2"):
        run_sweep(other, out, workers=1)
    assert {p: (out / p).read_bytes() for p in before} == before

    with (out / "results.jsonl").open("ab") as fh:
        fh.write(b'42\n\xff\xfe\n{"status": "ok", "config": {}, "summary": {}}\n')
    with pytest.warns(SweepWarning, match="line 3: not a JSON object.*line 4: not UTF-8.*"
                                          "line 5: no task key"):
        again = run_sweep(spec, out, workers=1)
    assert [r["status"] for r in again] == ["ok", "ok"]
    assert len(load_results(out)) == 2  # compacted under the lock
    for key in spec.keys():  # nothing was run again
        assert (out / "tasks" / key / "runs.log").read_text().count("\n") == 1

    for text, why in (('{"experiment": "cooc', "unreadable"), ("[1]", "not a gradflow sweep")):
        (out / "sweep.json").write_text(text)
        with pytest.raises(FolderOwnedError, match=f"cannot be identified: its sweep.json is "
                                                   f"{why}"):
            run_sweep(spec, out, workers=1)
        assert main(["sweep-plot", str(out), "--x", "m", "--y", "final.loss"]) == 2
        assert "sweep.json" in capsys.readouterr().err

    run_sweep(other, out, workers=1, force=True)
    assert {r["key"] for r in load_results(out)} == set(other.keys())
    assert sorted(p.name for p in (out / "tasks").iterdir()) == sorted(other.keys())


def write_sweep_folder(out, records, seed_key="init_seed"):
    out.mkdir()
    keys = [r["key"] for r in records if not r.get("foreign")]
    write_json_atomic(out / "sweep.json", {"experiment": "cooccurrence", "seed_key": seed_key,
                                           "keys": keys})
    (out / "results.jsonl").write_text("".join(
        json.dumps({"status": "ok", **{k: v for k, v in r.items() if k != "foreign"}}) + "\n"
        for r in records))


def test_sweep_plot_averages_seeds_only_and_only_the_sweeps_own_tasks(tmp_path):
    """B3 (a folder mixed before folders had owners): results lines of tasks that are not in
    sweep.json are left out; a second grid key varying inside a group is refused, not
    averaged as if it were a seed; tasks without a number are counted and warned about."""
    def rec(key, m, seed, y, L=5, **extra):
        return {"key": key, "config": {"m": m, "init_seed": seed, "L": L},
                "summary": {"y": y}, **extra}

    out = tmp_path / "mixed"
    write_sweep_folder(out, [rec("a", 4, 0, 1.0), rec("b", 4, 1, 3.0), rec("c", 8, 0, None),
                             rec("d", 8, 1, 5.0), rec("z", 4, 2, 100.0, foreign=True)])
    with pytest.warns(SweepWarning, match="1 of 4 tasks have no numeric 'y'.*m = 8"):
        data = aggregate(out, "m", "y")
    assert data["x"] == [4, 8] and data["mean"] == [2.0, 5.0] and data["n"] == [2, 1]
    assert data["skipped"] == {8: 1}
    two = tmp_path / "two_keys"
    write_sweep_folder(two, [rec("a", 4, 0, 1.0, L=5), rec("b", 4, 0, 3.0, L=7)])
    with pytest.raises(ArgumentError, match=r"tasks with m = 4 also differ in \['L'\]"):
        aggregate(two, "m", "y")


@pytest.mark.parametrize(
    ("sweep", "match"),
    [
        ({"fixed": 3}, "'fixed' must be a table"),
        ({"fixed": "abc"}, "'fixed' must be a table"),
        ({"grid": [1, 2]}, "'grid' must be a table"),
        ({"experiment": ["cooccurrence"]}, "'experiment' must be a string"),
        ({"seed_key": ["a"], "seeds": [1]}, "'seed_key' must be a parameter name"),
        ({"fixed": {"m": 4}, "grid": {"m": [8]}}, r"\['m'\] set both in \[fixed\] and in"),
        ({"seed_key": "init_seed", "seeds": [0, 1], "fixed": {"init_seed": 7}},
         r"seed_key 'init_seed' is also a \[fixed\] key; the seeds would override its fixed "
         "value 7"),
        ({"seed_key": "init_seed", "seeds": [0, 1], "grid": {"init_seed": [0, 1]}},
         r"seed_key 'init_seed' is also a \[grid\] key"),
        ({"grid": {"m": [4, 4.0]}}, r"same configuration \(\{'m': 4\} and \{'m': 4.0\}\)"),
    ],
)
def test_wrong_typed_or_colliding_sweep_tables(sweep, match):
    """B18, B19, W10: named errors, not tracebacks or silently overridden values."""
    with pytest.raises(ArgumentError, match=match):
        load_sweep({"experiment": "cooccurrence", **sweep})


def test_bad_sweep_files_and_workers_at_the_cli(tmp_path, capsys):
    """B19 (files that are not UTF-8, a folder, `fixed = 3`) and B20 (`--workers 0`/`-1`):
    `gradflow: error:` naming the file and key, exit 2, before anything is written."""
    bad = tmp_path / "b.toml"
    bad.write_bytes(b"\xff\xfe garbage")
    fixed = sweep_file(tmp_path, "fixed = 3\n", "f.toml")
    good = sweep_file(tmp_path, "[grid]\nm = [4]\n", "g.toml")
    out = tmp_path / "never"
    for args, match in (([str(bad)], f"sweep file {bad} is not UTF-8"),
                        ([str(tmp_path)], f"sweep file {tmp_path} is a folder"),
                        ([str(fixed)], f"sweep file {fixed}: 'fixed' must be a table"),
                        ([str(good), "--workers", "0"], "workers must be a positive integer"),
                        ([str(good), "--workers", "-1"], "workers must be a positive integer")):
        assert main(["sweep", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gradflow: error:") and match in err, err
    assert not out.exists()


def test_dask_bad_addresses_and_a_cluster_without_workers(tmp_path, capsys, monkeypatch):
    """B25: an address that is not one, or where nothing listens, is `gradflow: error:` naming
    it (exit 2 and 1), within the short connect timeout; W9: a scheduler without workers gives
    a warning, then a ClusterError after the timeout, not a silent wait."""
    from dask.distributed import Client, LocalCluster

    with pytest.raises(ArgumentError, match="scheduler address 'not a url' is not usable"):
        connect_dask("not a url")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(sweep_module, "SCHEDULER_CONNECT_TIMEOUT", 1.0)
    good = sweep_file(tmp_path, "[grid]\nm = [4]\n")
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert f"no dask scheduler answered at '{address}' within 1 s" in err
    assert not (tmp_path / "o").exists()

    monkeypatch.setattr(sweep_module, "HEALTH_POLL", 0.1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.warns(SweepWarning, match=r"has no workers; waiting up to 0\.5 s"), \
                pytest.raises(ClusterError, match=r"has no workers for 0\.5 s; gave up with 2 "
                                                  "of 2 tasks unfinished"):
            run_sweep(load_sweep(TINY), tmp_path / "d", executor=client.get_executor(),
                      health=dask_health(client), health_timeout=0.5)


def alive(pid):
    """Running (a zombie waiting for a reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def attempts(out, key=None):
    """The worker pids of the tasks' attempts (runs.log lines), of one task or all."""
    logs = [out / "tasks" / key / "runs.log"] if key else (out / "tasks").glob("*/runs.log")
    return [int(line.split()[0]) for log in logs if log.exists()
            for line in log.read_text().splitlines()]


@contextlib.contextmanager
def sweep_process(path, out, workers, **kwargs):
    process = subprocess.Popen(
        [sys.executable, "-m", "gradflow.cli", "sweep", str(path), "--out", str(out),
         "--workers", str(workers), "--no-progress"], start_new_session=True, **kwargs)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_killed_sweep_ends_its_workers_and_a_second_sweep_meanwhile_is_refused(
        tmp_path, capsys):
    """B2: a second sweep on a folder in use exits 1 naming the holder, before it touches
    results.jsonl; B14: SIGKILL of the sweep process alone ends its workers within a second
    or so (they used to finish their tasks, then wait for ever); its lock died with it."""
    # tasks of several seconds (the paper's sizes to t = 1e10), so that neither can finish
    # before the kill even on a loaded machine (at t_end = 1e6 one sometimes did); they are
    # killed, so their length costs nothing
    path = sweep_file(tmp_path, 'seed_key = "init_seed"\nseeds = [0, 1]\n'
                                "[fixed]\nt_end = 1e10\nper_decade = 5\n")
    out = tmp_path / "out"
    with sweep_process(path, out, 2, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + 60
        while len(attempts(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = attempts(out)
        assert len(workers) == 2 and all(alive(p) for p in workers)
        assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 1
        assert f"in use by another gradflow process: pid {process.pid}" in \
            capsys.readouterr().err
        process.kill()  # the sweep process only, not its process group
        process.wait()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in workers)
        assert not list(out.glob("tasks/*/summary.json"))  # they ended mid-task
        with locked(out):
            pass


def test_a_worker_that_dies_costs_only_its_task(tmp_path):
    """B15: SIGKILL of the worker running one task breaks the pool; the sweep rebuilds it and
    goes on. That task, killed again when it runs alone, is recorded as failed (retried by
    the next run); the other tasks finish; exit 1, '2/3 tasks finished'."""
    path = sweep_file(tmp_path, "[fixed]\nd = 16\nm = 8\nm1 = 8\ncounts = [6, 2, 2, 2]\n"
                                "per_decade = 2\n[grid]\nt_end = [1e5, 10.0, 20.0]\n")
    out = tmp_path / "out"
    target = load_sweep(path).keys()[0]
    with sweep_process(path, out, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True) as process:
        killed = []
        deadline = time.monotonic() + 90
        while len(killed) < 2 and time.monotonic() < deadline:
            pids = attempts(out, target)
            if len(pids) > len(killed):
                os.kill(pids[len(killed)], signal.SIGKILL)
                killed.append(pids[len(killed)])
            time.sleep(0.005)
        stdout, stderr = process.communicate(timeout=120)
    assert len(killed) == 2
    assert process.returncode == 1 and "2/3 tasks finished" in stdout and "1 failed" in stdout
    assert "gradflow: warning: a worker process of the sweep died" in stderr
    records = {r["key"]: r for r in load_results(out)}
    assert len(records) == 3 and "WorkerDied" in records[target]["error"]
    assert [r["status"] for k, r in records.items() if k != target] == ["ok", "ok"]
    assert SweepSpec.key(records[target]["config"]) == target

"""A researcher's own experiments in the CLI and sweeps: entry-point plugins and
``package.module:OBJECT`` specs.

The plugin is "installed into the test environment" the way an installer would: its package
(copied from ``tests/plugin_template/tinyplugin``) and a ``tinyplugin-0.1.dist-info`` folder
(``METADATA``, ``entry_points.txt``) in a folder on ``sys.path``, which is all
``importlib.metadata`` reads. Spawned sweep workers get the parent's ``sys.path``, so they find
it too.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gradflow import ArgumentError, registry
from gradflow.cli import main
from gradflow.sweep import load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("plugin_template")
SPEC = "tinyplugin.experiment:EXPERIMENT"
PACKAGES = ("tinyplugin", "brokenplugin", "seqplugin", "clashplugin")
"""Top-level modules the tests create; forgotten after each test (each has its own copy)."""


def install(site: Path, distribution: str, entry_points: dict[str, str],
            modules: dict[str, str] | None = None) -> None:
    """Write a distribution's dist-info (and top-level modules) into ``site``, as pip would."""
    for name, text in (modules or {}).items():
        (site / f"{name}.py").write_text(text)
    info = site / f"{distribution}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\n"
                                   "Version: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gradflow.experiments]\n{lines}")
    importlib.invalidate_caches()  # files written after the folder was put on sys.path
    registry.clear_cache()


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A folder on sys.path holding the tinyplugin package, not registered."""
    site = tmp_path / "site"
    shutil.copytree(TEMPLATE / "tinyplugin", site / "tinyplugin")
    monkeypatch.syspath_prepend(str(site))
    registry.clear_cache()
    yield site
    for name in [m for m in sys.modules if m.partition(".")[0] in PACKAGES]:
        del sys.modules[name]
    registry.clear_cache()  # reloaded lazily, after monkeypatch restores sys.path


@pytest.fixture
def site(package):
    """The same folder with tinyplugin installed: its entry point registers ``tiny``."""
    install(package, "tinyplugin", {"tiny": SPEC})
    return package


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradflow: error: ") and "\n" not in err, err
    return err


def test_list_shows_the_plugin_beside_the_built_ins(site, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny: logistic regression on four points in 2D [plugin: tinyplugin 0.1]" in out
    assert "    t_end = 10.0: horizon of the flow" in out
    assert "cooccurrence: " in out and "unavailable" not in out
    assert "tiny" in registry.available() and "tiny" not in registry.REGISTRY
    assert main(["list", "tiny"]) == 0
    assert capsys.readouterr().out.startswith("tiny: ")


def test_run_check_grad_plot_and_resume_a_registered_plugin(site, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "tiny", "--out", str(out), "--no-progress", "--set", "seed=3"]) == 0
    assert "final loss" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"] == {"seed": 3, "t_end": 10.0}
    assert summary["final_loss"] < summary["initial_loss"]
    assert json.loads((out / "run.json").read_text())["experiment"] == "tiny"
    assert main(["plot", str(out)]) == 0 and (out / "loss.txt").is_file()
    assert main(["resume", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["check-grad", "tiny"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": ok")


def test_sweep_over_two_seeds_in_worker_processes(site, tmp_path, capsys):
    sweep = tmp_path / "seeds.toml"
    sweep.write_text('experiment = "tiny"\nseed_key = "seed"\nseeds = [0, 1]\n\n'
                     '[fixed]\nt_end = 10.0\n')
    out = tmp_path / "sweep"
    for _ in range(2):  # the second run finds both tasks done
        assert main(["sweep", str(sweep), "--out", str(out), "--workers", "2",
                     "--no-progress"]) == 0
        assert "2/2 tasks finished" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert {r["config"]["seed"] for r in records} == {0, 1}
    for r in records:
        assert Path(r["path"], "runs.log").read_text().count("\n") == 1  # ran once
        assert r["summary"]["final_loss"] < r["summary"]["initial_loss"]


def test_an_unregistered_experiment_by_its_spec(package, tmp_path, capsys):
    """Run, list, check-grad, plot and resume by spec; run.json keeps the spec, so resume and
    plot find the experiment again, although its own name 'tiny' is registered nowhere."""
    with pytest.raises(ArgumentError, match="unknown experiment 'tiny'"):
        registry.get("tiny")
    out = tmp_path / "run"
    assert main(["run", SPEC, "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["experiment"] == SPEC
    assert (out / "summary.json").is_file()
    assert main(["plot", str(out)]) == 0 and (out / "loss.txt").is_file()
    assert main(["resume", str(out), "--no-progress"]) == 0
    assert main(["check-grad", SPEC]) == 0
    assert main(["list", SPEC]) == 0
    assert f"{SPEC}: logistic regression" in capsys.readouterr().out
    assert registry.get(SPEC) is registry.get(SPEC)  # the module's object, imported once


def test_a_sweep_by_spec_records_it_and_resumes(package, tmp_path, capsys):
    """The spec, not the name 'tiny', goes to the workers (a process pool at the CLI, any
    executor through the API, as dask's) and into sweep.json, so a re-run resumes."""
    sweep = tmp_path / "spec.toml"
    sweep.write_text(f'experiment = "{SPEC}"\nseed_key = "seed"\nseeds = [0, 1]\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    identity = json.loads((out / "sweep.json").read_text())
    assert identity["experiment"] == SPEC and len(identity["keys"]) == 2
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0  # resumed: nothing re-run
    assert "2/2 tasks finished" in capsys.readouterr().out
    task = out / "tasks" / identity["keys"][0]
    assert (task / "runs.log").read_text().count("\n") == 1
    assert main(["plot", str(task)]) == 0 and (task / "loss.txt").is_file()  # via sweep.json
    spec = load_sweep({"experiment": SPEC, "seed_key": "seed", "seeds": [2, 3]})
    assert spec.experiment == SPEC
    with ThreadPoolExecutor(2) as executor:
        records = run_sweep(spec, tmp_path / "threads", executor=executor)
    assert [r["status"] for r in records] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [("nosuchpkg.mod:EXPERIMENT", "no module named 'nosuchpkg' "),
     ("tinyplugin.nothere:EXPERIMENT", "no module named 'tinyplugin.nothere' "),
     ("tinyplugin.experiment:NOPE", re.escape(
         "module tinyplugin.experiment has no attribute 'NOPE' (its experiments: "
         "['EXPERIMENT'])")),
     ("tinyplugin.experiment:EXPERIMENT.nope", "has no attribute 'EXPERIMENT.nope'"),
     ("tinyplugin.experiment:train", "names the function tinyplugin.experiment.train, not a "
      "gradflow Experiment"),
     ("tinyplugin.experiment:Path", "names the class pathlib.Path, not a gradflow"),
     ("tinyplugin.experiment:PARAMETERS", "of type tuple, not a gradflow Experiment"),
     ("tinyplugin:", "expected package.module:OBJECT"),
     (":EXPERIMENT", "expected package.module:OBJECT"),
     ("brokenplugin:EXPERIMENT", r"importing brokenplugin failed: ModuleNotFoundError: No "
      r"module named 'numpyy' \(at .*brokenplugin.py:2\)"),
     ("clashplugin:EXPERIMENT", r"importing clashplugin failed: ZeroDivisionError: division "
      r"by zero \(at .*clashplugin.py:1\)")],
)
def test_bad_specs_are_errors_naming_the_spec(package, spec, match, capsys):
    (package / "brokenplugin.py").write_text('"""Imports a module that does not exist."""\n'
                                             "import numpyy  # noqa\n")
    (package / "clashplugin.py").write_text("1 / 0\n")
    importlib.invalidate_caches()
    with pytest.raises(ArgumentError, match=match):
        registry.get(spec)
    assert main(["run", spec, "--no-progress"]) == 2
    assert f"experiment spec {spec!r}" in error_line(capsys)


SEQUENCE = '''"""Two experiments by one entry point; a plugin may look a built-in up as it loads."""
import dataclasses

from gradflow.registry import get
from tinyplugin.experiment import EXPERIMENT

BASE = get("cooccurrence")
EXPERIMENTS = [EXPERIMENT, dataclasses.replace(EXPERIMENT, name="tiny_b")]
'''
CLASH = '''"""Experiments named like a built-in and like another plugin's."""
import dataclasses

from tinyplugin.experiment import EXPERIMENT

COOCCURRENCE = dataclasses.replace(EXPERIMENT, name="cooccurrence")
TINY = dataclasses.replace(EXPERIMENT)
'''


def test_a_sequence_entry_point_and_the_same_experiment_reached_twice(site):
    install(site, "seqplugin", {"both": "seqplugin:EXPERIMENTS"}, {"seqplugin": SEQUENCE})
    assert registry.problems() == []  # 'tiny' twice, but one object: no collision
    assert registry.get("tiny_b").name == "tiny_b"
    assert registry.get("tiny") is sys.modules["tinyplugin.experiment"].EXPERIMENT
    assert [p.name for p in registry.plugins()] == ["both", "tiny"]  # by distribution


def test_collisions_are_errors_naming_both_sources(site, capsys):
    install(site, "clashplugin", {"cooccurrence": "clashplugin:COOCCURRENCE",
                                  "tiny": "clashplugin:TINY"}, {"clashplugin": CLASH})
    with pytest.raises(ArgumentError, match=(
            r"experiment name 'cooccurrence' is defined more than once: built in \(gradflow\) "
            r"and entry point 'cooccurrence = clashplugin:COOCCURRENCE' of distribution "
            r"clashplugin 0.1")):
        registry.get("cooccurrence")
    with pytest.raises(ArgumentError, match=(
            r"'tiny' is defined more than once: entry point 'tiny = clashplugin:TINY' of "
            r"distribution clashplugin 0.1 and entry point 'tiny = tinyplugin.experiment:"
            r"EXPERIMENT' of distribution tinyplugin 0.1")):
        registry.get("tiny")
    assert main(["run", "tiny", "--no-progress"]) == 2
    assert "defined more than once" in error_line(capsys)
    assert registry.get("ntp") is registry.REGISTRY["ntp"]  # other names are unaffected
    assert registry.get(SPEC).name == "tiny"  # the way out the message gives
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "\ncooccurrence: " not in out and "\ntiny: " not in out and "ntp: " in out
    unavailable = [line for line in out.splitlines() if line.startswith("unavailable: ")]
    assert len(unavailable) == 2 and all("defined more than once" in u for u in unavailable)


BROKEN = {"broken": "brokenplugin:EXPERIMENT", "gone": "nosuchmodule:EXPERIMENT",
          "misnamed": SPEC, "notone": "tinyplugin.experiment:train",
          "ntp": "brokenplugin:NTP"}  # fails too: so it must not leave the built-in 'ntp' usable


def test_broken_entry_points_break_only_themselves(site, tmp_path, capsys):
    install(site, "brokenplugin", BROKEN,
            {"brokenplugin": '"""Fails as it is imported."""\nimport numpyy  # noqa\n'})
    assert main(["run", "tiny", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert registry.get("cooccurrence") is registry.REGISTRY["cooccurrence"]
    source = "entry point 'broken = brokenplugin:EXPERIMENT' of distribution brokenplugin 0.1"
    with pytest.raises(ArgumentError, match=(
            rf"experiment 'broken': {source} failed to load: ModuleNotFoundError: No module "
            r"named 'numpyy' \(at .*brokenplugin.py:2\)")):
        registry.get("broken")
    for name, match in [("gone", "No module named 'nosuchmodule'"),
                        ("ntp", r"'ntp = brokenplugin:NTP' .* failed to load: .*numpyy.* "
                         r"\(another experiment has the name 'ntp': built in \(gradflow\); "
                         "the name is unusable until the entry point loads or is renamed"),
                        ("misnamed", "is the experiment 'tiny', but the entry point is named "
                         "'misnamed': name the entry point after the experiment"),
                        ("notone", "is the function tinyplugin.experiment.train; expected a "
                         "gradflow Experiment")]:
        with pytest.raises(ArgumentError, match=match):
            registry.get(name)
    with pytest.raises(ArgumentError, match=r"unknown experiment 'other'.*plugins that failed "
                       r"to load: entry point 'broken = "):
        registry.get("other")
    assert main(["run", "broken", "--no-progress"]) == 2
    assert f"{source} failed to load" in error_line(capsys)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "tiny: logistic regression on four points in 2D [plugin: tinyplugin 0.1]" in lines
    unavailable = [line for line in lines if line.startswith("unavailable: ")]
    assert len(unavailable) == 5 and not any(line.startswith("ntp: ") for line in lines)
    assert unavailable[0].startswith(f"unavailable: {source} failed to load: "
                                     "ModuleNotFoundError: No module named 'numpyy' (at ")


def test_plugins_load_lazily_and_once(site, monkeypatch):
    calls = []
    real = registry.entry_points

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry.clear_cache()
    assert "tinyplugin.experiment" not in sys.modules and calls == []
    registry.get("tiny")
    registry.get("cooccurrence")
    registry.available()
    assert calls == [{"group": "gradflow.experiments"}]
    registry.get(SPEC)  # a spec is imported directly, without the entry points
    assert len(calls) == 1


def test_a_fresh_interpreter_finds_the_plugin(site, tmp_path):
    """The installed command's path: a new process, the plugin found on PYTHONPATH only."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from gradflow.cli import main; sys.exit(main())",
         "run", "tiny", "--out", str(out), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "final loss" in done.stdout
    assert json.loads((out / "summary.json").read_text())["experiment"] == "tiny"

"""Named experiments: the built-in ones (one per paper figure; a paper registers its
experiments with one line in :data:`REGISTRY`), a researcher's own declared by
installed distributions, and any ``package.module:OBJECT`` spec. The CLI, sweeps, scripts and
tests look experiments up here, through :func:`get` and :func:`available`.

A name with a colon is a spec: ``get("mypkg.experiments:EXPERIMENT")`` imports
``mypkg.experiments`` and takes its attribute ``EXPERIMENT`` (dotted attributes allowed), which
must be an :class:`Experiment`; it need not be registered anywhere.

Any other name is a built-in (:data:`REGISTRY`) or a plugin: an experiment declared in the
entry-point group :data:`ENTRY_POINT_GROUP` of an installed distribution, each entry point's
value being ``"package.module:OBJECT"`` with OBJECT an :class:`Experiment` (the entry point
named after it) or a sequence of them (the entry point named at will)::

    [project.entry-points."gradflow.experiments"]
    tiny = "tinyplugin.experiment:EXPERIMENT"

Plugins are loaded on the first lookup, once per process (:func:`clear_cache` forgets them).
A plugin never breaks the others nor the built-ins: an entry point that fails to load makes
only its own experiments (and its own name) unavailable, and a name defined twice (by a plugin
and a built-in, or by two plugins) makes only that name unavailable. Both are
:class:`~gradflow.errors.ArgumentError` when the name is requested, naming the sources, and
:func:`problems` lists them all.
"""

from __future__ import annotations

import importlib
import os
import reprlib
import threading
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from gradflow.claims import Ledger
from gradflow.errors import ArgumentError
from gradflow.experiment import Experiment
from gradflow.papers.attention_svm import experiment as attention_svm
from gradflow.papers.cooccurrence import experiment as cooccurrence
from gradflow.papers.masked import experiment as masked
from gradflow.papers.ntp import experiment as ntp
from gradflow.papers.regular import experiment as regular
from gradflow.papers.representation_icl import experiment as representation_icl
from gradflow.papers.softmax_icl import experiment as softmax_icl

__all__ = ["ENTRY_POINT_GROUP", "REGISTRY", "Plugin", "available", "clear_cache", "get",
           "ledger", "ledger_papers", "plugins", "problems"]

REGISTRY: dict[str, Experiment] = {
    e.name: e
    for e in (
        cooccurrence.EXPERIMENT,
        ntp.EXPERIMENT,
        *(regular.EVEN_PAIRS, regular.PARITY_COT),
        *(softmax_icl.ICL_BALANCED, softmax_icl.ICL_IMBALANCED),
        representation_icl.ICL_REPRESENTATIONS,
        *(attention_svm.LOCAL, attention_svm.GLOBAL),
        *(masked.RING, masked.IMBALANCED, masked.SCALING),
    )
}
"""The built-in experiments by name (plugins are not in it: see :func:`available`)."""

# ------------------------------------------------------------------------------ plugins

ENTRY_POINT_GROUP = "gradflow.experiments"
"""The entry-point group in which distributions declare their experiments."""

BUILT_IN = "built in (gradflow)"
"""The source of a built-in experiment, in messages."""


@dataclass(frozen=True)
class Plugin:
    """One entry point of :data:`ENTRY_POINT_GROUP`, loaded (or not).

    Attributes
    ----------
    name : str
        The entry point's name.
    value : str
        Its value, ``"package.module:OBJECT"``.
    distribution : str
        The distribution declaring it, ``"name version"``.
    experiments : tuple of Experiment
        What it gave; empty if it failed to load.
    error : str or None
        Why it failed to load: the exception, and where it was raised.
    """

    name: str
    value: str
    distribution: str
    experiments: tuple[Experiment, ...] = ()
    error: str | None = None

    @property
    def source(self) -> str:
        """Where its experiments come from, in messages."""
        return f"entry point '{self.name} = {self.value}' of distribution {self.distribution}"


@dataclass(frozen=True)
class _Index:
    """What names reach: the usable experiments, every name's sources (more than one: a
    collision), the entry points as loaded, and those that failed by entry-point name."""

    experiments: dict[str, Experiment]
    sources: dict[str, tuple[str, ...]]  # every name defined -> the sources defining it
    plugins: tuple[Plugin, ...]
    failed: dict[str, Plugin]  # entry point name -> the entry point, which failed to load

    @property
    def collisions(self) -> dict[str, tuple[str, ...]]:
        return {name: found for name, found in self.sources.items() if len(found) > 1}


_lock = threading.RLock()  # dask runs tasks in threads: load the plugins once, not per thread
_index_cache: _Index | None = None
_building = False


def clear_cache() -> None:
    """Forget the loaded plugins: the next lookup reads the entry points again (after
    installing a distribution, or changing ``sys.path``, in a running process)."""
    global _index_cache
    with _lock:
        _index_cache = None


def _index() -> _Index:
    global _index_cache, _building
    with _lock:
        if _building:
            # a plugin that looks up an experiment while it is imported (to build on a
            # built-in) sees the built-ins only, instead of loading itself again
            return _Index(dict(REGISTRY), dict.fromkeys(REGISTRY, (BUILT_IN,)), (), {})
        if _index_cache is None:
            _building = True
            try:
                _index_cache = _build(entry_points(group=ENTRY_POINT_GROUP))
            finally:
                _building = False
        return _index_cache


def _build(points: Sequence[EntryPoint]) -> _Index:
    def order(ep: EntryPoint) -> tuple[str, str]:
        return (ep.dist.name if ep.dist is not None else "", ep.name)

    loaded = tuple(_load(ep) for ep in sorted(points, key=order))  # stable, whatever sys.path
    defined: dict[str, list[tuple[Experiment, str]]] = {
        name: [(experiment, BUILT_IN)] for name, experiment in REGISTRY.items()}
    for plugin in loaded:
        for experiment in plugin.experiments:
            sources = defined.setdefault(experiment.name, [])
            # the same object reached twice (an entry point for one experiment and another for
            # a list holding it) is one experiment, not a collision
            if not any(experiment is other for other, _ in sources):
                sources.append((experiment, plugin.source))
    # an entry point that failed to load claims its own name: had it loaded, that name would
    # (for a single experiment) be its experiment's, so another experiment of that name (a
    # built-in) must not run in its place
    failed = {p.name: p for p in loaded if p.error is not None}
    return _Index(
        experiments={name: found[0][0] for name, found in defined.items()
                     if len(found) == 1 and name not in failed},
        sources={name: tuple(source for _, source in found) for name, found in defined.items()},
        plugins=loaded, failed=failed)


def _load(ep: EntryPoint) -> Plugin:
    """Import one entry point; any failure is recorded in the :class:`Plugin`, not raised, so
    that one broken plugin leaves every other experiment usable."""
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "(unknown)"
    try:
        found = _experiments_of(ep.load(), ep.name, ep.value)
    except ArgumentError as exc:
        return Plugin(ep.name, ep.value, dist, error=str(exc))
    except Exception as exc:  # the plugin's own import: whatever it raises is its failure
        return Plugin(ep.name, ep.value, dist, error=_failure(exc))
    return Plugin(ep.name, ep.value, dist, found)


def _experiments_of(obj: Any, name: str, value: str) -> tuple[Experiment, ...]:
    """The experiments an entry point's object declares, checked."""
    if isinstance(obj, Experiment):
        if obj.name != name:
            # `gradflow run NAME` finds an experiment by its own name; an entry point named
            # otherwise would send users after a name that does not exist
            raise ArgumentError(
                f"{value} is the experiment {obj.name!r}, but the entry point is named "
                f"{name!r}: name the entry point after the experiment ({obj.name} = {value})")
        found: tuple[Experiment, ...] = (obj,)
    elif (isinstance(obj, Sequence) and not isinstance(obj, str) and obj
          and all(isinstance(e, Experiment) for e in obj)):
        found = tuple(obj)
    else:
        raise ArgumentError(f"{value} is {_what(obj)}; expected a gradflow Experiment or a "
                            "non-empty sequence of them")
    for experiment in found:
        if (not isinstance(experiment.name, str) or ":" in experiment.name
                or not experiment.name.strip()):
            raise ArgumentError(f"{value}: experiment name {experiment.name!r} is not usable "
                                "(not a string, empty, or with a ':', which marks a "
                                "module:OBJECT spec)")
    return found


def _failure(exc: BaseException) -> str:
    """``Type: message (at file:line)``: the innermost frame outside the import machinery, so
    that a plugin's author can find the line that failed without a traceback."""
    machinery = os.path.dirname(importlib.__file__)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not (f.filename.startswith("<") or f.filename.startswith(machinery))]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _what(obj: Any) -> str:
    """What an object is, for a message that says it is not an experiment."""
    if (isinstance(obj, Sequence) and not isinstance(obj, str) and obj
            and all(isinstance(e, Experiment) for e in obj)):
        names = ", ".join(e.name for e in obj)
        return f"a {type(obj).__name__} of {len(obj)} experiments ({names}), not one experiment"
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    if callable(obj) and hasattr(obj, "__qualname__"):  # a class or function, by its name
        kind = "class" if isinstance(obj, type) else "function"
        return f"the {kind} {getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return f"{reprlib.repr(obj)}, of type {type(obj).__qualname__}"


def _failed(index: _Index, plugin: Plugin) -> str:
    message = f"{plugin.source} failed to load: {plugin.error}"
    others = index.sources.get(plugin.name)
    if others:  # e.g. a broken plugin entry point named like a built-in
        message += (f" (another experiment has the name {plugin.name!r}: "
                    f"{' and '.join(others)}; the name is unusable until the entry point loads "
                    "or is renamed)")
    return message


def _collision(name: str, sources: Sequence[str]) -> str:
    listed = " and ".join(sources)
    return (f"experiment name {name!r} is defined more than once: {listed}; the name is "
            "unusable until all but one are renamed or uninstalled (meanwhile run one by its "
            "module:OBJECT spec)")


# ------------------------------------------------------------------------------ specs


def _from_spec(spec: str) -> Experiment:
    """The experiment ``package.module:OBJECT`` names, imported now.

    Raises
    ------
    ArgumentError
        Naming the spec: malformed, no such module, its import failed, no such attribute, or
        an attribute that is not an :class:`Experiment`.
    """
    module_name, _, attribute = spec.partition(":")
    parts = attribute.split(".")
    if not all(p.isidentifier() for p in [*module_name.split("."), *parts]):
        raise ArgumentError(f"experiment spec {spec!r}: expected package.module:OBJECT with "
                            "Python names on both sides (e.g. mypkg.experiments:EXPERIMENT)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise ArgumentError(
                f"experiment spec {spec!r}: no module named {exc.name!r} (is its package "
                "installed, or its folder on PYTHONPATH?)") from None
        raise ArgumentError(f"experiment spec {spec!r}: importing {module_name} failed: "
                            f"{_failure(exc)}") from exc
    except Exception as exc:  # the researcher's module raised on import: report, not crash
        raise ArgumentError(f"experiment spec {spec!r}: importing {module_name} failed: "
                            f"{_failure(exc)}") from exc
    obj: Any = module
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            held = sorted(k for k, v in vars(module).items() if isinstance(v, Experiment))
            raise ArgumentError(
                f"experiment spec {spec!r}: module {module_name} has no attribute "
                f"{'.'.join(parts[:i + 1])!r} (its experiments: {held or 'none'})") from None
    if not isinstance(obj, Experiment):
        raise ArgumentError(f"experiment spec {spec!r} names {_what(obj)}, not a gradflow "
                            "Experiment (gradflow.Experiment)")
    return obj


# ------------------------------------------------------------------------------ lookup


def get(name: str) -> Experiment:
    """The experiment ``name``: a built-in, a plugin's, or a ``package.module:OBJECT`` spec.

    Parameters
    ----------
    name : str
        An experiment name (``gradflow list``), or a spec (with a colon), imported now.

    Raises
    ------
    ArgumentError
        Unknown name (the available ones are listed, and the plugins that failed to load); a
        name defined twice (naming both sources); a name whose plugin failed to load (naming
        the entry point and the exception); a spec that does not lead to an experiment.
    """
    if not isinstance(name, str):
        raise ArgumentError(f"an experiment is named by a string, got {name!r}")
    if ":" in name:
        return _from_spec(name)
    index = _index()
    if name in index.experiments:
        return index.experiments[name]
    if name in index.collisions:
        raise ArgumentError(_collision(name, index.collisions[name]))
    if name in index.failed:
        raise ArgumentError(f"experiment {name!r}: {_failed(index, index.failed[name])}")
    failed = index.failed.values()
    message = f"unknown experiment {name!r}; available: {sorted(index.experiments)}"
    if failed:
        message += "; plugins that failed to load: " + "; ".join(
            f"{p.source} ({p.error})" for p in failed)
    raise ArgumentError(message + " (an experiment of your own: package.module:OBJECT)")


def available() -> dict[str, Experiment]:
    """Every experiment reachable by name: the built-ins, then the plugins' (a name defined
    twice is left out: see :func:`problems`)."""
    return dict(_index().experiments)


def plugins() -> tuple[Plugin, ...]:
    """The entry points of :data:`ENTRY_POINT_GROUP`, loaded, ordered by distribution."""
    return _index().plugins


def problems() -> list[str]:
    """Why some plugin experiments are unavailable, one message each: entry points that failed
    to load, then names defined more than once. Empty when every plugin is usable."""
    index = _index()
    return ([_failed(index, p) for p in index.plugins if p.error]
            + [_collision(name, sources) for name, sources in index.collisions.items()])


# ------------------------------------------------------------------------------ claims ledgers


def ledger_papers() -> list[str]:
    """The papers of ``gradflow.papers`` that declare a claims ledger (``claims.py``)."""
    root = Path(__file__).parent / "papers"
    return sorted(p.name for p in root.iterdir() if (p / "claims.py").is_file())


def ledger(paper: str) -> Ledger:
    """The claims ledger of ``paper`` (``gradflow.papers.<paper>.claims.LEDGER``).

    Raises
    ------
    ArgumentError
        No such paper, or it has no ledger; the papers with one are listed.
    """
    papers = ledger_papers()
    if paper not in papers:
        raise ArgumentError(f"no claims ledger for paper {paper!r}; papers with one: {papers}")
    found = importlib.import_module(f"gradflow.papers.{paper}.claims").LEDGER
    if not isinstance(found, Ledger) or found.paper != paper:
        raise ArgumentError(f"gradflow.papers.{paper}.claims.LEDGER is not the Ledger of "
                            f"{paper!r}")
    return found

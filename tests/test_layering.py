"""The import rules of the layout (``gradflow/papers/__init__.py``), checked on the source.

Each rule is checked on the syntax tree of every module, function-local imports included, so a
new file cannot break a rule silently; each test also checks that its rule is not vacuous (the
files it speaks about exist).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradflow"
PAPERS = PACKAGE / "papers"
ROLES = ("data", "theory", "model", "protocol", "claims", "experiment", "figures")
"""The file roles of a paper, in the only order in which they may import each other."""
NOT_ENGINE = {"registry", "cli", "sweep"}
"""The modules directly under gradflow/ that may import the papers (they list and run them)."""
LAZY_ALLOWED = ("matplotlib", "tqdm", "dask", "distributed")
"""Optional heavy dependencies: the only imports allowed inside functions."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of ``path``; ``from a import
    b`` yields ``a.b`` as well as ``a`` (b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
    local = {id(node) for f in functions for node in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in local) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in local))
            found += [(f"{node.module}.{alias.name}", node.lineno, id(node) in local)
                      for alias in node.names]
    return found


def _papers() -> list[Path]:
    return sorted(p for p in PAPERS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def _paper_files() -> list[tuple[str, str, Path]]:
    return [(paper.name, path.stem, path) for paper in _papers()
            for path in sorted(paper.glob("*.py")) if path.stem != "__init__"]


def test_the_rules_are_not_vacuous():
    names = {p.name for p in _papers()}
    assert {"cooccurrence", "ntp", "regular", "linear_icl", "softmax_icl",
            "representation_icl"} <= names
    for paper in _papers():
        roles = {p.stem for p in paper.glob("*.py")} - {"__init__"}
        assert {"data", "model"} <= roles, f"{paper.name} lacks data.py or model.py"
        assert roles <= set(ROLES), f"{paper.name} has files outside the roles: {roles}"


@pytest.mark.parametrize(("paper", "role", "path"), _paper_files(),
                         ids=[f"{p}/{r}" for p, r, _ in _paper_files()])
def test_a_paper_file_imports_only_earlier_roles_of_its_own_paper(paper, role, path):
    allowed = set(ROLES[: ROLES.index(role)])
    bad = []
    for module, line, _ in _imports(path):
        parts = module.split(".")
        if parts[:2] != ["gradflow", "papers"] or len(parts) < 3:
            continue
        if parts[2] != paper:
            bad.append(f"line {line}: {module} (another paper)")
        elif len(parts) == 3:
            continue  # `from gradflow.papers.<paper> import theory`: checked as <paper>.theory
        elif parts[3] in ROLES and parts[3] not in allowed:
            bad.append(f"line {line}: {module} ({parts[3]} comes after {role})")
    assert not bad, f"{paper}/{role}.py breaks the import order {' → '.join(ROLES)}: {bad}"


@pytest.mark.parametrize("path", sorted(PAPERS.glob("*/model.py")), ids=lambda p: p.parent.name)
def test_a_model_never_imports_the_integrator(path):
    bad = [(m, line) for m, line, _ in _imports(path)
           if m in ("gradflow.flow", "gradflow.simulate") or m.startswith("gradflow.flow.")]
    assert not bad, f"{path.parent.name}/model.py imports the integrator: {bad}"


@pytest.mark.parametrize("path", sorted([*PAPERS.glob("*/experiment.py"),
                                         *PAPERS.glob("*/claims.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_experiment_never_calls_simulate(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "simulate")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "simulate"))]
    imports = [line for m, line, _ in _imports(path) if m in ("gradflow.flow",
                                                              "gradflow.flow.simulate")]
    assert not calls and not imports, (
        f"{path.parent.name}/{path.name} integrates itself (lines {calls + imports}); "
        "flows belong in protocol.py")


@pytest.mark.parametrize("path", sorted(PAPERS.glob("*/figures.py")), ids=lambda p: p.parent.name)
def test_figures_read_run_folders_only(path):
    computing = [f"gradflow.papers.{path.parent.name}.{role}"
                 for role in ("model", "protocol", "claims", "experiment")]
    bad = [(m, line) for m, line, _ in _imports(path)
           if m == "gradflow.flow" or m.startswith(tuple(computing))]
    assert not bad, f"{path.parent.name}/figures.py imports what computes: {bad}"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    public = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
              and node.name.startswith("draw")}
    assert public, f"{path.parent.name}/figures.py defines no draw(out)"


ENGINE = sorted(p for p in PACKAGE.glob("*.py") if p.stem not in NOT_ENGINE)


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_the_engine_never_imports_a_paper(path):
    bad = [(m, line) for m, line, _ in _imports(path)
           if m.startswith("gradflow.papers") or m.startswith("gradflow.registry")]
    assert not bad, f"engine module {path.name} imports a paper (or the registry): {bad}"


def test_the_papers_package_imports_nothing():
    assert not _imports(PAPERS / "__init__.py")


ALL_MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: _module_name(p))
def test_function_local_imports_are_only_for_optional_heavy_dependencies(path):
    bad = [(m, line) for m, line, local in _imports(path)
           if local and not m.startswith(LAZY_ALLOWED)]
    assert not bad, (f"{_module_name(path)} imports inside functions {bad}; only "
                     f"{LAZY_ALLOWED} may be imported lazily (move the rest to the top, or "
                     "break the cycle that made it local)")

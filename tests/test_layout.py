"""The package's layout keeps what the design says (docs/design.md): no import circle between
modules, imports inside functions included; no private name imported across modules; modules of
a readable size; no lab notebook in the package (paths under /tmp, files outside the
repository); and the layers contract that CI's `lint-imports` checks fails on a circle like the
one this layout removed."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastmlp"
MAX_LINES = 400


def modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name, path, known):
    """The package modules `name` imports, anywhere in its file (functions included), each
    with the names it takes: {module: {names}}."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:  # `from package import module`
                    found.setdefault(f"{target}.{alias.name}", set())
                elif target in known:
                    found.setdefault(target, set()).add(alias.name)
    return found


def graph():
    mods = modules()
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back_through_others():
    edges = {name: [m for m in targets if m != name and not name.startswith(m + ".")
                    and not m.startswith(name + ".")]
             for name, targets in graph().items()}
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_across_modules():
    private = [f"{importer} imports {name} from {module}"
               for importer, targets in graph().items()
               for module, names in targets.items() for name in names
               if name.startswith("_") and not name.startswith("__")]
    assert private == []


@pytest.mark.parametrize("name, path", sorted(modules().items()))
def test_modules_stay_readable(name, path):
    assert len(path.read_text().splitlines()) <= MAX_LINES, name


def test_no_lab_notebook_in_the_package():
    """Measurements belong in docs/performance.md with their command, not in docstrings that
    cite scratch paths or files outside the repository."""
    pattern = re.compile(r"/tmp/|PERF-NOTES|locked command|this session")
    found = [f"{path.relative_to(ROOT)}:{n}" for path in modules().values()
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_the_layers_contract_catches_an_import_inside_a_function(tmp_path):
    """lint-imports sees imports inside functions: a package whose engine imports its trainer
    inside a function breaks a layers contract like the project's."""
    pytest.importorskip("importlinter")
    package = tmp_path / "toy"
    (package / "engine").mkdir(parents=True)
    (package / "training").mkdir()
    for init in ("__init__.py", "engine/__init__.py", "training/__init__.py"):
        (package / init).write_text("")
    (package / "training" / "trainer.py").write_text("from ..engine import step\n")
    (package / "engine" / "step.py").write_text(
        "def later():\n    from ..training import trainer\n    return trainer\n")
    (tmp_path / "contract.toml").write_text(
        '[tool.importlinter]\nroot_package = "toy"\n\n[[tool.importlinter.contracts]]\n'
        'name = "layers"\ntype = "layers"\nlayers = ["toy.training", "toy.engine"]\n')
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache", "contract.toml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "toy.engine.step -> toy.training.trainer" in proc.stdout

"""The house keeps its shape: imports run one way (docs/architecture.md), with no circle.

Every module's imports are read with `ast` (also those inside functions and under
TYPE_CHECKING, and `importlib.import_module("...")` with a literal name), mapped to their
package, and to their room inside `cds_service`; the arrows must follow the allowed direction:

    her2cds_cli (top floor) -> cds_service -> fhir_mappers -> engine <- cards
    her2cds_cli -> synthetic -> engine

`tests/` and `bench/` sit beside the house and may import anything; nothing imports them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Which packages each package may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "engine": frozenset(),
    "fhir_mappers": frozenset({"engine"}),
    "cards": frozenset({"engine"}),
    "cds_service": frozenset({"fhir_mappers", "engine", "cards"}),
    "synthetic": frozenset({"engine"}),
    "her2cds_cli": frozenset({"cds_service", "fhir_mappers", "engine", "cards", "synthetic"}),
}
BESIDE = frozenset({"tests", "bench"})  # may import anything; never imported by the house
SERVICE = "cds_service"
ASSEMBLY = frozenset({"cds_service", "cds_service.app", "cds_service.server"})
MAX_SERVICE_TOP = 10

Graph = dict[str, set[str]]


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the given top-level packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _literal_import(node: ast.Call) -> str | None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in {"import_module", "__import__"} or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules `name` imports: `from a import b` names a.b when that is a module."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")
                parent = parent[: len(parent) - node.level + (1 if is_package else 0)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
        elif isinstance(node, ast.Call) and (literal := _literal_import(node)):
            found.add(literal)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Module -> the modules of the given packages (and tests/bench) it imports."""
    known = modules(root, packages)
    tops = {n.split(".")[0] for n in known} | BESIDE
    return {
        name: {i for i in imports_of(name, path, known) if i.split(".")[0] in tops}
        for name, path in known.items()
    }


def package_of(module: str) -> str:
    return module.split(".")[0]


def room_of(module: str) -> str:
    """cds_service.api.hooks -> api; a module at the service's top is its own room."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def collapse(
    graph: Graph, node_of: Callable[[str], str], keep: Callable[[str], bool] = lambda _: True
) -> Graph:
    """The graph between groups of modules (no self-arrows)."""
    out: Graph = {}
    for src, targets in graph.items():
        if not keep(src):
            continue
        a = node_of(src)
        out.setdefault(a, set())
        out[a].update(b for t in targets if keep(t) and (b := node_of(t)) != a)
    return out


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: Graph) -> list[str]:
    """Every import that breaks ALLOWED, as 'module -> module'."""
    bad = []
    for src, targets in sorted(graph.items()):
        for t in sorted(targets):
            a, b = package_of(src), package_of(t)
            if a != b and b not in ALLOWED.get(a, frozenset()):
                bad.append(f"{src} -> {t}")
    return bad


def service_circles(graph: Graph) -> list[list[str]]:
    rooms = collapse(graph, room_of, keep=lambda m: package_of(m) == SERVICE)
    return circles(rooms)


def violations(root: Path) -> list[str]:
    """Everything this file checks, for the tree at `root` (empty when the house is in order)."""
    graph = import_graph(root, [p for p in ALLOWED if (root / p).is_dir()])
    found = upward(graph)
    found += [f"package circle {c}" for c in circles(collapse(graph, package_of))]
    found += [f"cds_service room circle {c}" for c in service_circles(graph)]
    modules_only = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    found += [f"module circle {c}" for c in circles(modules_only)]
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(ROOT, ALLOWED)


def test_every_package_of_the_house_has_a_rule() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - BESIDE == set(ALLOWED), "a new top-level package needs its row in ALLOWED"


def test_imports_point_down(graph: Graph) -> None:
    assert upward(graph) == []


def test_nothing_imports_tests_or_bench(graph: Graph) -> None:
    assert [f"{s} -> {t}" for s, ts in graph.items() for t in ts if package_of(t) in BESIDE] == []


def test_no_circle_between_packages(graph: Graph) -> None:
    assert circles(collapse(graph, package_of)) == []


def test_no_circle_between_service_rooms(graph: Graph) -> None:
    rooms = collapse(graph, room_of, keep=lambda m: package_of(m) == SERVICE)
    assert {"api", "prefetch", "security", "storage", "observability"} <= set(rooms)
    assert circles(rooms) == []


def test_security_does_not_reach_into_the_api(graph: Graph) -> None:
    """Authentication answers before any endpoint runs; it answers with the helpers of
    cds_service.responses, never with an endpoint module's."""
    rooms = collapse(graph, room_of, keep=lambda m: package_of(m) == SERVICE)
    assert "api" not in rooms["security"]


def test_each_code_system_url_is_written_once() -> None:
    """SNOMED, LOINC, RxNorm, ... and the override-reason system: named in engine.code_systems,
    imported everywhere else (two spellings of one system would split its codes)."""
    import engine.code_systems as systems

    urls = {v for k, v in vars(systems).items() if k.isupper() and isinstance(v, str)}
    assert urls
    again = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value}"
        for package in (*ALLOWED, "bench")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != Path(systems.__file__)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in urls
    ]
    assert again == []


def test_no_circle_between_modules(graph: Graph) -> None:
    """Not even inside a package (a TYPE_CHECKING import counts: it is an arrow for a reader)."""
    assert circles({m: {t for t in ts if t in graph} for m, ts in graph.items()}) == []


def test_rooms_do_not_import_the_assembly(graph: Graph) -> None:
    """The app factory and the process server assemble the rooms; no room reaches back to them."""
    bad = [
        f"{s} -> {t}"
        for s, ts in graph.items()
        if package_of(s) == SERVICE and s.count(".") >= 2
        for t in ts
        if t in ASSEMBLY
    ]
    assert bad == []


def test_the_service_top_stays_small() -> None:
    top = [p.name for p in (ROOT / SERVICE).glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_SERVICE_TOP, sorted(top)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_the_check_sees_imports_hidden_in_functions(tmp_path: Path) -> None:
    """The circle main had (cli -> synthetic -> cds_service, inside functions) is caught."""
    _write(
        tmp_path,
        {
            "engine/__init__.py": "",
            "synthetic/__init__.py": "",
            "synthetic/demo.py": "def run():\n    from cds_service.app import create_app\n",
            "cds_service/__init__.py": "",
            "cds_service/app.py": "",
            "cds_service/cli.py": "def main():\n    import synthetic.demo\n",
        },
    )
    assert violations(tmp_path) == [
        "cds_service.cli -> synthetic.demo",
        "synthetic.demo -> cds_service.app",
        "package circle ['cds_service', 'synthetic']",
    ]


def test_the_check_sees_room_circles_and_relative_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "cds_service/__init__.py": "",
            "cds_service/api/__init__.py": "",
            "cds_service/api/hooks.py": "from ..storage import db\n",
            "cds_service/storage/__init__.py": "",
            "cds_service/storage/db.py": (
                "import importlib\ndef f():\n    importlib.import_module('cds_service.api.hooks')\n"
            ),
        },
    )
    assert violations(tmp_path) == [
        "cds_service room circle ['api', 'storage']",
        "module circle ['cds_service.api.hooks', 'cds_service.storage.db']",
    ]


def test_the_house_is_in_order() -> None:
    assert violations(ROOT) == []
